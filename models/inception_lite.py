"""inception_lite: one Inception module on a 28x28 RGB image (the apple-banana notebook's model).

Design (Szegedy et al., "Going Deeper with Convolutions", CVPR 2015, arXiv:1409.4842, the
"naive + dimension reduction" Inception module of its figure 2b)::

    input 28x28x3
      branch 1: 1x1 conv 64
      branch 2: 1x1 conv 96  -> 3x3 conv 128
      branch 3: 1x1 conv 16  -> 5x5 conv 32
      branch 4: 3x3 max-pool (stride 1, same) -> 1x1 conv 32
    concatenate (28x28x256) -> 2x2 max-pool (14x14x256) -> flatten (50,176)
    -> dense 64 ReLU -> (dropout) -> dense N softmax

All convolutions use ``same`` padding, a bias and ReLU. With N = 2 the model has exactly
3,335,842 parameters: 124,384 in the module, 3,211,328 in dense 64 (50,176 x 64 + 64), 130 in
the classifier. The flattened 14x14x256 map is why the dense layer holds 96% of the weights.
"""

from __future__ import annotations

from ._blocks import check_activation, check_classes, check_dropout, image_input, keras

DEFAULT_INPUT = 28


def build(
    input_size=DEFAULT_INPUT,
    classes: int = 2,
    dense_units: int = 64,
    dropout: float = 0.0,
    activation: str = "relu",
):
    """Build the model. Input (batch, H, W, 3) float; output (batch, classes) softmax.

    Args:
        input_size: S or (H, W); the published model uses 28.
        classes: number of classes N (2 for apple/banana).
        dense_units: width of the hidden dense layer (64).
        dropout: dropout rate before the classifier (training only; 0 reproduces the notebook).
        activation: ``relu`` or ``relu6``.
    """
    classes = check_classes(classes)
    activation = check_activation(activation)
    dropout = check_dropout(dropout)
    k = keras()
    layers = k.layers
    inp = image_input(input_size)

    def conv(x, filters, size, name):
        x = layers.Conv2D(filters, size, padding="same", name=name)(x)
        # A separate ReLU layer: the converter fuses it into the conv (CONV_2D with RELU).
        return layers.Activation(activation, name=f"{name}_{activation}")(x)

    b1 = conv(inp, 64, 1, "b1_1x1")
    b2 = conv(conv(inp, 96, 1, "b2_1x1"), 128, 3, "b2_3x3")
    b3 = conv(conv(inp, 16, 1, "b3_1x1"), 32, 5, "b3_5x5")
    b4 = layers.MaxPooling2D(3, strides=1, padding="same", name="b4_pool")(inp)
    b4 = conv(b4, 32, 1, "b4_1x1")
    x = layers.Concatenate(axis=-1, name="inception")([b1, b2, b3, b4])
    x = layers.MaxPooling2D(2, name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, activation=activation, name="fc")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(classes, name="logits")(x)
    out = layers.Softmax(name="predictions")(x)
    return k.Model(inp, out, name="inception_lite")
