"""MobileNet v1 with width multiplier alpha and resolution multiplier (input size).

Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
Applications", 2017, arXiv:1704.04861 (table 1 layout, tables 6-7 width/resolution trade-offs).

Layout (filters before the width multiplier alpha)::

    conv 3x3 stride 2, 32 -> BN -> ReLU6
    13 depthwise-separable blocks: DW 3x3 (stride s) -> BN -> ReLU6 -> PW 1x1 (f) -> BN -> ReLU6
        (f, s) = (64,1) (128,2) (128,1) (256,2) (256,1) (512,2) 5x(512,1) (1024,2) (1024,1)
    global average pool -> dropout -> dense N -> softmax

Convolutions have no bias (the BN that follows carries it; the converter folds BN into the conv
weights). Filters are ``int(f * alpha)``, the rounding ``keras.applications.MobileNet`` uses, so
parameter counts equal Keras' exactly: 4,253,864 at alpha 1 with 1000 classes (the paper's
"4.2 M"), including the BN moving statistics. The classifier is a dense layer (same weights as
Keras' 1x1 conv on a 1x1 map). Stride-2 layers use ``same`` padding, which on even inputs pads
one row/column at the bottom/right, exactly like Keras' explicit ZeroPadding2D((0,1),(0,1)).

The global average pool is an AVERAGE_POOL_2D over the whole final map (7x7 at 224), as in the
paper and Coral's compiled MobileNets: a fixed-window pool that the Edge TPU runs.
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

DEFAULT_INPUT = 224
# (pointwise filters, depthwise stride) of the 13 depthwise-separable blocks (paper table 1).
BLOCKS = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
)


def build(
    input_size=DEFAULT_INPUT,
    classes: int = 1000,
    alpha: float = 1.0,
    dropout: float = 1e-3,
    activation: str = "relu6",
    bn_momentum: float = 0.9,
):
    """Build MobileNet v1. Input (batch, H, W, 3) float; output (batch, classes) softmax.

    Args:
        input_size: S or (H, W): 224, 192, 160, 128 in the paper; any size >= 32 works (the
            final map is ceil(S / 32) wide).
        classes: number of classes.
        alpha: width multiplier (1, 0.75, 0.5, 0.25 in the paper; any value > 0).
        dropout: dropout rate before the classifier (Keras' default 1e-3).
        activation: ``relu6`` (Keras, Coral's models; quantizes well) or ``relu`` (the paper).
        bn_momentum: BatchNormalization moving-average momentum. 0.9 (Keras: 0.99) lets the
            moving statistics catch up within the few hundred steps of a small data set; with
            0.99 a model trained from scratch on ~300 images validates at chance for many epochs.
    """
    classes = check_classes(classes)
    activation = check_activation(activation)
    dropout = check_dropout(dropout)
    alpha = float(alpha)
    if not alpha > 0:
        raise EdgekitError(f"mobilenet_v1: alpha must be > 0, got {alpha}", "e.g. 1, 0.75, 0.5")
    check_min_size("mobilenet_v1", input_size, 32)
    k = keras()
    layers = k.layers
    inp = image_input(input_size)

    x = layers.Conv2D(int(32 * alpha), 3, strides=2, padding="same", use_bias=False, name="conv1")(
        inp
    )
    x = layers.BatchNormalization(momentum=bn_momentum, name="conv1_bn")(x)
    x = act(x, activation, "conv1_relu")
    for i, (filters, stride) in enumerate(BLOCKS, start=1):
        x = layers.DepthwiseConv2D(
            3, strides=stride, padding="same", use_bias=False, name=f"conv_dw_{i}"
        )(x)
        x = layers.BatchNormalization(momentum=bn_momentum, name=f"conv_dw_{i}_bn")(x)
        x = act(x, activation, f"conv_dw_{i}_relu")
        x = layers.Conv2D(int(filters * alpha), 1, use_bias=False, name=f"conv_pw_{i}")(x)
        x = layers.BatchNormalization(momentum=bn_momentum, name=f"conv_pw_{i}_bn")(x)
        x = act(x, activation, f"conv_pw_{i}_relu")
    # Global average pooling as a fixed-window pool over the whole (static) final map.
    x = layers.AveragePooling2D(pool_size=tuple(x.shape[1:3]), name="global_pool")(x)
    x = layers.Reshape((x.shape[-1],), name="reshape")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(classes, name="logits")(x)
    out = layers.Softmax(name="predictions")(x)
    name = f"mobilenet_v1_{alpha:g}_{inp.shape[1]}"
    return k.Model(inp, out, name=name)
