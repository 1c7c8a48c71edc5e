"""Teachable Machine's own TensorFlow Lite exports, run as they are (no bundle, no convert).

TM's "Tensorflow Lite" tab writes a folder with ``labels.txt`` (``0 Name`` per line) and one of
``model_edgetpu.tflite`` (Edge TPU), ``model.tflite`` (quantized) or ``model_unquant.tflite``
(float). Such a model is recognised by that name with an indexed ``labels.txt`` beside it, whose
ids run 0..N-1; then:

- the labels are read from that file, the index dropped (Coral's ``N label`` rule,
  :func:`edgekit.labels.parse_labels`);
- the image is centre-cropped to the input's aspect before resizing, as TM's own sample code
  does (``ImageOps.fit``) and as TM cropped its training images;
- the float range comes from the quantized input tensor, as for every bare model: TM's quantized
  exports take raw uint8 pixels for its -1..1 range (scale ~1/128, zero point ~128).

Pure Python, no TensorFlow: the device path uses it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

TFLITE_NAMES = ("model_edgetpu.tflite", "model.tflite", "model_unquant.tflite")
_INDEXED = re.compile(r"^(\d+)[ \t]+\S")


@dataclass(frozen=True)
class TeachableExport:
    """A TM TFLite export: its ``labels.txt`` and the resize TM's code uses."""

    labels_path: Path
    resize: str = "crop"
    reason: str = "Teachable Machine export"


def tflite_export(model: str | os.PathLike) -> Optional[TeachableExport]:
    """The TM export ``model`` belongs to, or None for any other model."""
    p = Path(model)
    if p.name not in TFLITE_NAMES:
        return None
    labels = p.parent / "labels.txt"
    try:
        if not labels.is_file() or labels.stat().st_size > 1 << 20:
            return None
        lines = [ln.strip() for ln in labels.read_text("utf-8-sig").splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError):
        return None
    ids = [m.group(1) for m in map(_INDEXED.match, lines) if m]
    if not lines or len(ids) != len(lines) or [int(i) for i in ids] != list(range(len(ids))):
        return None
    return TeachableExport(labels)
