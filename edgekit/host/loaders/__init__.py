"""Model loaders, one module per format family, and the record they all return.

``LoadedModel`` is what every loader hands to the converter: a batch-1 ``keras.Model`` plus what
the file says about itself (which format and loader, fix-ups applied, the preprocessing it
expects, its label names). ``PreprocessingHint`` is the preprocessing a model's own structure or
origin implies (a Teachable Machine export, a Rescaling layer at the input...); the converter
weighs it against labelled calibration data (see ``edgekit.host.convert``).

Importing this package is cheap: TensorFlow is imported by the loaders' functions only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np


@dataclass(frozen=True)
class PreprocessingHint:
    """What the model expects as input pixels, as far as the file tells.

    ``input_range``: (low, high) float range the model was trained on: (0, 1), (-1, 1) or
    (0, 255) (raw pixels, the model normalises itself).
    ``resize``: ``"crop"`` (centre crop to the aspect, then resize), ``"stretch"``, ``"pad"`` or
    None (no opinion). ``size``: (height, width) in pixels or None.
    ``reason``: why, in a few words for the user ("Teachable Machine export", "Rescaling(1/255)
    at the input").
    """

    input_range: tuple[float, float]
    resize: Optional[str]
    size: Optional[tuple[int, int]]
    reason: str

    def to_dict(self) -> dict:
        return {
            "input_range": [float(self.input_range[0]), float(self.input_range[1])],
            "resize": self.resize,
            "size": list(self.size) if self.size else None,
            "reason": self.reason,
        }


@dataclass
class LoadedModel:
    """A model ready to convert.

    ``model``: batch-1 static-shape ``keras.Model``, input (1, H, W, C), C in {1, 3}.
    ``batched``: float inference on a (N, H, W, C) float32 batch -> (N, ...) float32 scores.
    ``kind``: the container, ``h5``, ``keras`` or ``savedmodel`` (the bundle's ``source.format``).
    ``format``: what the file is, finer: ``keras3`` (zip), ``keras3-h5``, ``keras2-h5``,
    ``keras2-zip`` (a v3 archive only tf_keras reads), ``teachable-machine``,
    ``savedmodel-keras`` (tf.keras ``model.save(dir)``), ``savedmodel`` (a signature).
    ``loader``: ``keras`` (Keras 3), ``tf_keras`` (the legacy Keras 2 package) or
    ``savedmodel`` (tf.saved_model signature).
    ``fixups``: what was patched while loading, one line each.
    ``preprocessing``: what the model's structure or origin says about its input, or None.
    ``labels``: class names the file came with (Teachable Machine's labels.txt, index removed).
    ``output_shapes``: every output's shape in the model's order (several only for a
    detector's grid heads, :func:`edgekit.host.loaders.batch1.check_grid_heads`; ``batched``
    then returns one array per output); ``output_shape`` is the first.
    """

    model: Any
    batched: Callable[[np.ndarray], np.ndarray]
    path: Path
    kind: str
    input_shape: tuple[int, int, int, int]
    output_shape: tuple[int, ...]
    fixups: tuple[str, ...] = ()
    format: str = ""
    loader: str = "keras"
    preprocessing: Optional[PreprocessingHint] = None
    labels: Optional[list[str]] = None
    output_shapes: tuple[tuple[int, ...], ...] = ()
