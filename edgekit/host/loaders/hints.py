"""The input range a model's own layers imply, for models that are not Teachable Machine exports.

- A ``Rescaling`` first (scale < 1, e.g. 1/255 or 1/127.5 with offset -1): the model normalises
  itself, so it takes raw pixels 0..255.
- A ``Normalization`` first: raw 0..255 when its mean is above 2 (adapted on pixels), else 0..1.
- keras.applications bodies identified by their layer names, with the convention of their
  ``preprocess_input``: MobileNet v1/v2, InceptionV3, Xception, NASNet -> "tf" mode, -1..1.
  (EfficientNet, MobileNetV3, ConvNeXt carry their own Rescaling: caught by the first rule.
  ResNet/VGG ("caffe": BGR minus ImageNet means) and DenseNet ("torch": mean/std) are not a plain
  range: no hint, the converter decides from data.)
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from edgekit.host.loaders import PreprocessingHint

APPLICATIONS = (  # (layer names that identify the body, what to call it)
    ({"Conv1", "expanded_conv_depthwise", "block_1_expand"}, "MobileNetV2"),
    ({"conv1", "conv_dw_1", "conv_pw_1"}, "MobileNet"),
    ({"mixed0", "mixed10"}, "InceptionV3"),
    ({"block1_conv1", "block14_sepconv2"}, "Xception"),
)


def range_hint(model: Any) -> Optional[PreprocessingHint]:
    """What the loaded model's first layers say about its input range, or None."""
    first = _first_layer(model)
    if first is not None:
        cls = type(first).__name__
        if cls == "Rescaling":
            scale = float(np.asarray(getattr(first, "scale", 1.0)).mean())
            offset = float(np.asarray(getattr(first, "offset", 0.0)).mean())
            if 0 < scale < 0.1:
                return PreprocessingHint(
                    (0.0, 255.0), None, None,
                    f"Rescaling(scale={scale:.6g}, offset={offset:g}) at the input",
                )  # fmt: skip
        if cls == "Normalization":
            mean = _normalization_mean(first)
            if mean is not None:
                rng = (0.0, 255.0) if mean > 2 else (0.0, 1.0)
                return PreprocessingHint(
                    rng, None, None, f"Normalization (mean {mean:.3g}) at the input"
                )
    names = {layer.name for layer in _all_layers(model)}
    for needles, what in APPLICATIONS:
        if needles <= names:
            return PreprocessingHint(
                (-1.0, 1.0), None, None, f"keras.applications {what} body (x / 127.5 - 1)"
            )
    return None


def _first_layer(model: Any):
    """The first computing layer after the input, looking inside nested models."""
    layers = [x for x in getattr(model, "layers", []) if type(x).__name__ != "InputLayer"]
    if not layers:
        return None
    first = layers[0]
    if getattr(first, "layers", None) is not None and hasattr(first, "inputs"):
        return _first_layer(first)
    return first


def _normalization_mean(layer) -> Optional[float]:
    mean = getattr(layer, "mean", None)
    if mean is None:
        return None
    try:
        return float(np.asarray(mean).mean())
    except (TypeError, ValueError):
        return None


def _all_layers(model: Any) -> list:
    out = []
    for layer in getattr(model, "layers", []):
        out.append(layer)
        if getattr(layer, "layers", None) is not None:
            out.extend(_all_layers(layer))
    return out
