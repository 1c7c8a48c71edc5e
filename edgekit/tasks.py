"""One entry point for every task: ``open_task_model(model) -> Classifier | Detector``.

Both have ``.task`` (``"classify"`` / ``"detect"``) and ``.run(rgb) -> record`` with
``.to_dict()`` and ``.inference_ms`` (a Classification or a Detections), ``.reopen(device)`` and
``.close()``: the stream and the Edge TPU worker stay model-agnostic. The task comes from the
bundle's manifest (``"task"``, absent = classify); for a bare ``.tflite`` from its head: a
detector layout edgekit knows (:func:`edgekit.detect.decoders.guess_decoder`) means detect,
anything else classify.
"""

from __future__ import annotations

import os
from typing import Any

from edgekit.backends import resolve_model
from edgekit.errors import EdgekitError

TASKS = ("classify", "detect")
# Options that only one task understands; the other task ignores them (a serve config may set
# both top_k and iou, whatever model it is pointed at).
_ONLY = {"classify": {"top_k", "value_range"}, "detect": {"iou", "max_detections", "decoder"}}


def model_task(model: str | os.PathLike) -> str:
    """``classify`` or ``detect`` for a bundle or a .tflite (see module docstring)."""
    files = resolve_model(model)
    if files.bundle is not None:
        return files.bundle.manifest.task
    from edgekit.detect.decoders import guess_decoder
    from edgekit.tflite import read_model

    info = read_model(files.cpu or files.edgetpu)
    state = _state_outputs(info)
    return "detect" if guess_decoder(info, state) else "classify"


def open_task_model(model: str | os.PathLike, task: str | None = None, **kw: Any):
    """A :class:`~edgekit.classify.Classifier` or :class:`~edgekit.detect.Detector` for
    ``model``; ``task`` forces one. ``kw`` go to its constructor (labels, device, threshold,
    threads, on_warning; top_k for classify; iou, max_detections, decoder for detect), options
    of the other task are dropped. A ``threshold`` of None means the task's default."""
    if task is None:
        task = "detect" if kw.get("decoder") else model_task(model)
    if task not in TASKS:
        raise EdgekitError(f"unknown task {task!r}", f"use one of: {', '.join(TASKS)}")
    other = next(t for t in TASKS if t != task)
    kw = {k: v for k, v in kw.items() if k not in _ONLY[other]}
    if task == "detect":
        from edgekit.detect.detector import Detector

        return Detector(model, **kw)
    from edgekit.classify import Classifier

    if kw.get("threshold", 0.0) is None:
        kw["threshold"] = 0.0
    return Classifier(model, **kw)


def _state_outputs(info) -> frozenset[int]:
    """Outputs with the shape of an input: recurrent state carried between frames (the
    Detector pairs them the same way)."""
    shapes = {t.shape for t in info.inputs}
    return frozenset(t.index for t in info.outputs if t.shape in shapes)
