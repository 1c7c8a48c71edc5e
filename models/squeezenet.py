"""SqueezeNet v1.1 with fire modules and optional simple bypass.

Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model
size", 2016, arXiv:1602.07360; v1.1 layout from the authors' repository (forresti/SqueezeNet:
3x3/64 first conv, pooling after conv1, fire3 and fire5; 2.4x less computation than v1.0).

Fire module (s, e): squeeze 1x1 conv (s) -> ReLU, then expand 1x1 (e) and expand 3x3 (e) in
parallel, each -> ReLU, concatenated to 2e channels. Simple bypass (paper section 6) adds the
module's input to its output where both have the same channel count (fire3, 5, 7, 9): an ADD,
which the Edge TPU runs.

Layout::

    conv 3x3/2, 64 -> ReLU -> maxpool 3x3/2
    fire2 (16, 64)  fire3 (16, 64)  -> maxpool 3x3/2
    fire4 (32, 128) fire5 (32, 128) -> maxpool 3x3/2
    fire6 (48, 192) fire7 (48, 192) fire8 (64, 256) fire9 (64, 256)
    dropout 0.5 -> conv10 1x1 (N) -> [ReLU] -> global average pool -> softmax

The paper puts a ReLU after conv10. Trained from scratch on a few hundred images with few
classes, that ReLU often starts (or falls) dead for every class: all logits 0, loss stuck at
ln(N), chance accuracy. So it is off by default (``final_relu=True`` restores the paper's
layout; parameters and multiply-adds are the same either way).

1,235,496 parameters at 1000 classes, the v1.1 reference count. Convolutions and pools use
``same`` padding so that any input >= 32 builds; at 224 the maps are 112/56/28/14 wide instead of
Caffe's 111/55/27/13 (unpadded conv1, ceil-mode pools), hence ~387 M multiply-adds where the
reference has ~350 M; the parameters are identical.
"""

from __future__ import annotations

from ._blocks import check_classes, check_dropout, check_min_size, image_input, keras

DEFAULT_INPUT = 224
# (squeeze, expand) filters of fire2..fire9, and the fire modules after which v1.1 max-pools.
FIRES = ((16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192), (64, 256), (64, 256))
POOL_AFTER = (3, 5)
# He initialization: without BatchNormalization, Keras' default Glorot init shrinks the signal
# through the ~26 ReLU convs until the logits are equal and training never starts.
INIT = "he_normal"


def fire(x, squeeze: int, expand: int, name: str, bypass: bool = False):
    """One fire module on a (H, W, C) map -> (H, W, 2*expand)."""
    layers = keras().layers
    s = layers.Conv2D(
        squeeze, 1, activation="relu", kernel_initializer=INIT, name=f"{name}_squeeze"
    )(x)
    e1 = layers.Conv2D(
        expand, 1, activation="relu", kernel_initializer=INIT, name=f"{name}_expand1x1"
    )(s)
    e3 = layers.Conv2D(
        expand,
        3,
        padding="same",
        activation="relu",
        kernel_initializer=INIT,
        name=f"{name}_expand3x3",
    )(s)
    out = layers.Concatenate(axis=-1, name=f"{name}_concat")([e1, e3])
    if bypass and int(x.shape[-1]) == 2 * expand:
        out = layers.Add(name=f"{name}_bypass")([x, out])
    return out


def build(
    input_size=DEFAULT_INPUT,
    classes: int = 1000,
    bypass: bool = False,
    dropout: float = 0.5,
    final_relu: bool = False,
):
    """Build SqueezeNet v1.1. Input (batch, H, W, 3) float; output (batch, classes) softmax.

    Args:
        input_size: S or (H, W), at least 32 (the map is S/16 wide before the last conv).
        classes: number of classes (conv10's filters).
        bypass: add simple bypass connections around fire3, 5, 7 and 9.
        dropout: dropout rate before conv10 (0.5 in the paper).
        final_relu: ReLU after conv10 as in the paper (see the module docstring).
    """
    classes = check_classes(classes)
    dropout = check_dropout(dropout)
    check_min_size("squeezenet", input_size, 32)
    k = keras()
    layers = k.layers
    inp = image_input(input_size)
    x = layers.Conv2D(
        64, 3, strides=2, padding="same", activation="relu", kernel_initializer=INIT, name="conv1"
    )(inp)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    for i, (s, e) in enumerate(FIRES, start=2):
        # Bypass only where input and output widths match (odd-numbered fires in v1.1).
        x = fire(x, s, e, f"fire{i}", bypass=bypass and i % 2 == 1)
        if i in POOL_AFTER:
            x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"pool{i}")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Conv2D(classes, 1, activation="relu" if final_relu else None, name="conv10")(x)
    x = layers.AveragePooling2D(pool_size=tuple(x.shape[1:3]), name="global_pool")(x)
    x = layers.Reshape((classes,), name="reshape")(x)
    out = layers.Softmax(name="predictions")(x)
    return k.Model(inp, out, name="squeezenet_v1_1" + ("_bypass" if bypass else ""))
