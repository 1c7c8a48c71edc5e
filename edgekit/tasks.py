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
_ONLY = {
    "classify": {"top_k", "value_range"},
    "detect": {"iou", "max_detections", "decoder", "anchors"},
}


def model_task(model: str | os.PathLike) -> str:
    """``classify`` or ``detect`` for a bundle or a .tflite (see module docstring)."""
    from edgekit.backends.segments import segment_set

    segments = segment_set(model)  # compiled segments: the head is in the last one
    files = resolve_model(segments[-1] if segments else model)
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


def describe_task(info, manifest=None) -> dict[str, Any]:
    """What ``inspect`` says about the task of a model (a :class:`edgekit.tflite.ModelInfo`;
    ``manifest``: its bundle's, if any): ``{"task": ..., "detection": {...}}``, the detection
    part naming the decoder, classes, candidates, state inputs, or why the head is refused."""
    from edgekit.detect.decoders import (
        POSTPROCESS_OP,
        HeadIO,
        OutputTensor,
        get_decoder,
        guess_decoder,
    )

    state = _state_outputs(info)
    det = (manifest.detection or {}) if manifest is not None else {}
    name = det.get("decoder") or guess_decoder(info, state)
    task = manifest.task if manifest is not None else ("detect" if name else "classify")
    if task != "detect":
        return {"task": task}
    out: dict[str, Any] = {"decoder": name, "state_inputs": len(state)}
    image = [t for t in info.inputs if len(t.shape) == 4 and t.shape not in
             {o.shape for o in info.outputs}]  # fmt: skip
    size = tuple(image[0].shape[1:3]) if image else (0, 0)
    outputs = tuple(
        OutputTensor(t.index, t.name, tuple(t.shape), t.dtype.lower(),
                     t.quantization.scale[0] if t.quantization and t.quantization.scale else 0.0,
                     t.quantization.zero_point[0] if t.quantization and t.quantization.zero_point
                     else 0)
        for t in info.outputs if t.index not in state
    )  # fmt: skip
    post = next((op.outputs for op in info.main.operators if op.opcode == POSTPROCESS_OP), None)
    if name == "ssd-postprocess" and post:
        # the op's output shapes are only known once allocated: nothing more to check here
        return {"task": task, "detection": out}
    try:
        dec = get_decoder(name)(HeadIO(size, outputs, post), det.get("params"))
    except EdgekitError as e:
        out["error"] = str(e)
        return {"task": task, "detection": out}
    if hasattr(dec, "num_classes"):
        out["classes"] = dec.num_classes
    n = [o.shape[2] if name == "yolov8" else o.shape[1] for o in outputs]
    if name == "yolov3":  # one candidate per cell and anchor
        n = [gh * gw * dec.per_level for _o, _r, gh, gw, _s in dec.levels]
    out["candidates"] = int(sum(n))
    if getattr(dec, "box_units", None):
        out["box_units"] = dec.box_units
    if dec.notes:
        out["notes"] = list(dec.notes)
    return {"task": task, "detection": out}
