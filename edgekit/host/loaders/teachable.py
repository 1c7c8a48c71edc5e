"""Teachable Machine exports, recognised from their structure and their ``labels.txt``.

TM's "Tensorflow / Keras" image export is ``keras_model.h5`` + ``labels.txt`` (``0 Name`` per
line). The model is an outer Sequential holding exactly two Sequentials:
``[InputLayer?, Functional/Model "model1" (MobileNetV2 body), GlobalAveragePooling2D]`` and
``[Dense 100, Dense N softmax]`` (Keras 2.4 files; 2019-2020 files were written by 2.2.4-tf with
inner class ``Model``). Its sample code resizes with ``ImageOps.fit`` (centre crop to 224x224)
and feeds ``x / 127.5 - 1``: the range -1..1 of MobileNet's preprocessing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from edgekit.errors import EdgekitError
from edgekit.host.loaders import PreprocessingHint
from edgekit.host.loaders.architecture import Architecture
from edgekit.labels import labels_as_list, mismatch, read_labels

TM_SIZE = (224, 224)
TM_HINT = PreprocessingHint((-1.0, 1.0), "crop", TM_SIZE, "Teachable Machine export")


def is_teachable_machine(arch: Architecture) -> bool:
    """True for TM's nesting: Sequential[Sequential[Model, GAP], Sequential[Dense...]]."""
    if arch.config.get("class_name") != "Sequential":
        return False
    parts = [x for x in arch.top_layers() if x.get("class_name") != "InputLayer"]
    if len(parts) != 2 or any(p.get("class_name") != "Sequential" for p in parts):
        return False
    body = [x.get("class_name") for x in arch.top_layers(parts[0]) if x.get("class_name")]
    body = [c for c in body if c != "InputLayer"]
    head = [x.get("class_name") for x in arch.top_layers(parts[1])]
    head = [c for c in head if c != "InputLayer"]
    return (
        body[:1] in (["Model"], ["Functional"])
        and body[1:] == ["GlobalAveragePooling2D"]
        and bool(head)
        and all(c in ("Dense", "Dropout") for c in head)
    )


def labels_beside(path: Path, num_classes: int) -> Optional[list[str]]:
    """Label names from ``labels.txt`` next to a model file or in a SavedModel directory: TM's
    ``0 Name`` lines (index dropped, Coral's rule, :func:`edgekit.labels.parse_labels`) or one
    name per line. None if there is none, or it is unreadable or does not fit the model."""
    path = Path(path)
    txt = (path if path.is_dir() else path.parent) / "labels.txt"
    if not txt.is_file():
        return None
    try:
        found = read_labels(txt)
    except EdgekitError:
        return None
    if mismatch(found, num_classes):
        return None
    return labels_as_list(found, num_classes)
