"""densenet_lite: a compact DenseNet-BC (pre-activation, bottleneck, compression).

Huang et al., "Densely Connected Convolutional Networks", CVPR 2017, arXiv:1608.06993.

Each dense layer is pre-activation BN -> ReLU -> 1x1 conv (4k, the bottleneck "B") -> BN ->
ReLU -> 3x3 conv (k), and its k new channels are concatenated to everything before them
(growth rate k). A transition is BN -> ReLU -> 1x1 conv (compression theta = 0.5, the "C") ->
2x2 average pool. The "lite" part: a 3x3 stride-2 stem with a 2x2 max-pool instead of the 7x7
stem, and few, short blocks (default 4, 4, 4 layers, k = 16) for small inputs and small data.

Edge TPU notes: a BN that follows a conv is folded into it by the converter; the pre-activation
BN of a dense layer follows a CONCATENATION instead, so it becomes a per-channel MUL and ADD,
which the Edge TPU supports. Convolutions have no bias (the next BN has one). The global pool is
an AVERAGE_POOL_2D over the whole final map.
"""

from __future__ import annotations

from edgekit.errors import EdgekitError

from ._blocks import (
    act,
    check_activation,
    check_classes,
    check_dropout,
    check_min_size,
    image_input,
    keras,
)

DEFAULT_INPUT = 96


def _bn_act_conv(x, filters: int, size: int, activation: str, momentum: float, name: str):
    layers = keras().layers
    x = layers.BatchNormalization(momentum=momentum, epsilon=1.001e-5, name=f"{name}_bn")(x)
    x = act(x, activation, f"{name}_relu")
    return layers.Conv2D(filters, size, padding="same", use_bias=False, name=f"{name}_conv")(x)


def build(
    input_size=DEFAULT_INPUT,
    classes: int = 1000,
    growth_rate: int = 16,
    blocks=(4, 4, 4),
    compression: float = 0.5,
    bottleneck: bool = True,
    dropout: float = 0.0,
    activation: str = "relu",
    bn_momentum: float = 0.9,
):
    """Build the model. Input (batch, H, W, 3) float; output (batch, classes) softmax.

    Args:
        input_size: S or (H, W); needs S >= 4 * 2**len(blocks) (stem /4, each transition /2).
        classes: number of classes.
        growth_rate: k, channels each dense layer adds.
        blocks: dense layers per block (a tuple, or a comma-separated string "4,4,4").
        compression: theta, the fraction of channels a transition keeps (0 < theta <= 1).
        bottleneck: use the 1x1 (4k) bottleneck before each 3x3 conv (DenseNet-B).
        dropout: dropout rate before the classifier.
        activation: ``relu`` or ``relu6``.
        bn_momentum: BatchNormalization moving-average momentum. 0.9 (Keras: 0.99) lets the
            moving statistics catch up within the few hundred steps of a small data set.
    """
    classes = check_classes(classes)
    activation = check_activation(activation)
    dropout = check_dropout(dropout)
    if isinstance(blocks, str):
        try:
            blocks = tuple(int(b) for b in blocks.split(","))
        except ValueError:
            raise EdgekitError(f"densenet_lite: blocks {blocks!r}", "e.g. 4,4,4") from None
    blocks = tuple(int(b) for b in blocks)
    growth_rate = int(growth_rate)
    if not blocks or min(blocks) < 1 or growth_rate < 1:
        raise EdgekitError("densenet_lite: blocks and growth_rate must be positive integers")
    if not 0.0 < float(compression) <= 1.0:
        raise EdgekitError(f"densenet_lite: compression {compression} must be in (0, 1]")
    check_min_size("densenet_lite", input_size, 4 * 2 ** (len(blocks) - 1))
    k = keras()
    layers = k.layers
    inp = image_input(input_size)

    x = layers.Conv2D(
        2 * growth_rate, 3, strides=2, padding="same", use_bias=False, name="stem_conv"
    )(inp)
    x = layers.MaxPooling2D(2, name="stem_pool")(x)
    for b, n_layers in enumerate(blocks, start=1):
        for i in range(1, n_layers + 1):
            name = f"block{b}_layer{i}"
            y = x
            if bottleneck:
                y = _bn_act_conv(y, 4 * growth_rate, 1, activation, bn_momentum, f"{name}_1x1")
            y = _bn_act_conv(y, growth_rate, 3, activation, bn_momentum, f"{name}_3x3")
            x = layers.Concatenate(axis=-1, name=f"{name}_concat")([x, y])
        if b < len(blocks):
            keep = max(1, int(int(x.shape[-1]) * float(compression)))
            x = _bn_act_conv(x, keep, 1, activation, bn_momentum, f"transition{b}")
            x = layers.AveragePooling2D(2, name=f"transition{b}_pool")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, epsilon=1.001e-5, name="final_bn")(x)
    x = act(x, activation, "final_relu")
    x = layers.AveragePooling2D(pool_size=tuple(x.shape[1:3]), name="global_pool")(x)
    x = layers.Reshape((int(x.shape[-1]),), name="reshape")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(classes, name="logits")(x)
    out = layers.Softmax(name="predictions")(x)
    return k.Model(inp, out, name="densenet_lite")
