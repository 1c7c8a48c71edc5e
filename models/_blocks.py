"""Building blocks shared by the zoo designs, and argument checks.

Every block uses only layers that convert to int8 TFLite ops on Coral's supported list:
CONV_2D, DEPTHWISE_CONV_2D, MAX_POOL_2D / AVERAGE_POOL_2D (no fused activation), CONCATENATION,
ADD, MUL, RELU/RELU6, RESHAPE, FULLY_CONNECTED, SOFTMAX. Inference-time BatchNormalization that
directly follows a convolution is folded into that convolution's weights by the converter; a
pre-activation BN (DenseNet) becomes a per-channel MUL + ADD, both of which the Edge TPU runs.
"""

from __future__ import annotations

from edgekit.errors import EdgekitError

ACTIVATIONS = ("relu", "relu6")


def keras():
    """Import Keras lazily (``import edgekit.zoo`` must not pull in TensorFlow)."""
    from edgekit.host.tfenv import load_tensorflow

    load_tensorflow()
    import keras as _keras

    return _keras


def image_input(input_size, channels: int = 3, name: str = "image"):
    """``keras.Input`` of shape (H, W, channels) with a free batch dimension.

    Users train with any batch size; the converter clones the model to batch 1 so that the
    TFLite graph has fully static shapes (a dynamic batch adds SHAPE/STRIDED_SLICE/PACK ops that
    stop the Edge TPU mapping). ``input_size`` is an int (square) or (height, width).
    """
    h, w = size_hw(input_size)
    return keras().Input(shape=(h, w, channels), name=name)


def size_hw(input_size) -> tuple[int, int]:
    """int or (h, w) -> (h, w), validated as positive ints."""
    if isinstance(input_size, (tuple, list)):
        if len(input_size) != 2:
            raise EdgekitError(f"input size {input_size!r} must be S or (H, W)")
        h, w = input_size
    else:
        h = w = input_size
    try:
        h, w = int(h), int(w)
    except (TypeError, ValueError):
        raise EdgekitError(f"input size {input_size!r} is not a number") from None
    if h < 1 or w < 1:
        raise EdgekitError(f"input size {input_size!r} must be positive")
    return h, w


def check_min_size(model_name: str, input_size, minimum: int) -> None:
    """Raise if the input is too small for the design's downsampling."""
    h, w = size_hw(input_size)
    if min(h, w) < minimum:
        raise EdgekitError(
            f"{model_name}: input size {h}x{w} is too small",
            f"use at least {minimum}x{minimum}",
        )


def check_classes(classes) -> int:
    try:
        n = int(classes)
    except (TypeError, ValueError):
        raise EdgekitError(f"classes {classes!r} is not a number") from None
    if n < 1 or n != classes:
        raise EdgekitError(f"classes must be a positive integer, got {classes!r}")
    return n


def check_activation(activation: str) -> str:
    if activation not in ACTIVATIONS:
        raise EdgekitError(
            f"activation {activation!r} is not supported", f"use one of: {', '.join(ACTIVATIONS)}"
        )
    return activation


def check_dropout(rate) -> float:
    rate = float(rate)
    if not 0.0 <= rate < 1.0:
        raise EdgekitError(f"dropout {rate} must be in [0, 1)")
    return rate


def act(x, activation: str, name: str):
    """ReLU or ReLU6 as its own layer (maps to RELU / RELU6, or fuses into the conv)."""
    layers = keras().layers
    if activation == "relu6":
        return layers.ReLU(max_value=6.0, name=name)(x)
    return layers.ReLU(name=name)(x)


def classifier(x, classes: int, dropout: float, name: str = "predictions"):
    """Flatten -> Dropout -> Dense(classes) -> Softmax: FULLY_CONNECTED + SOFTMAX on the TPU.

    The flatten is a RESHAPE to (1, features): rank 2, which the Edge TPU accepts.
    """
    layers = keras().layers
    x = layers.Flatten(name="flatten")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(classes, name="logits")(x)
    return layers.Softmax(name=name)(x)
