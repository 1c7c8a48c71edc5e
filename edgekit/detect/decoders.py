"""Detection heads edgekit decodes: which output is what, dequantize, decode, NMS (numpy only).
This module is the registry (``--decoder`` names, :func:`guess_decoder`); the layouts live in
ssd.py, yolo.py and anchor_free.py on the base of heads.py, all re-exported here.

A decoder is bound to one model's outputs (:class:`HeadIO`) and its params, refusing with one
:class:`EdgekitError` line a layout it cannot decode. ``decode(raw)`` takes the raw output
arrays (quantized dtype as the interpreter gives them) and returns ``(boxes, scores, classes)``:
(K, 4) x0, y0, x1, y1 in MODEL INPUT pixels, best first, at most ``max_detections``.

Registered layouts (``--decoder`` names; params in docs/DESIGN.md "Detection"):

- ``ssd-postprocess``: the ``TFLite_Detection_PostProcess`` custom op (TF1/TF2 Object Detection
  API, Coral's SSDs). Outputs boxes [1, N, 4] (ymin, xmin, ymax, xmax normalized to the input),
  classes [1, N], scores [1, N], count [1], all float32; NMS is already done. TF1 and TF2
  exporters order the four model outputs differently, so they are identified through the graph:
  the op's own output list is always (boxes, classes, scores, count); without the op, by names.
- ``yolov8``: Ultralytics v8/v11 raw head [1, 4 + nc, N] (cx, cy, w, h then nc class scores, no
  objectness), possibly split per stride into several [1, 4 + nc, N_i] outputs.
- ``yolov5``: Ultralytics v5 head [1, N, 5 + nc] (cx, cy, w, h, objectness, nc class scores;
  score = objectness * class score), possibly split per stride.
  YOLO boxes are in input pixels or normalized to the input size: decided from the range the
  output tensor's quantization can represent (<= 2: normalized), or from the values for a float
  head; ``box_units`` overrides.
- ``yolo-end2end``: NMS-free heads (YOLOv10; YOLO11 / YOLO26 ``end2end`` exports): one
  [1, N, 6] output of x0, y0, x1, y1, score, class id rows; no NMS (the model picked the boxes).
- ``yolov3``: darknet YOLOv3 / YOLOv3-Tiny anchor heads, one [1, H, W, A * (5 + nc)] output
  per stride (raw logits; ``anchors`` param, darknet's defaults otherwise), see yolov3.py.
- ``edgekit-anchor-free``: edgekit's own detector head [1, N, 4 + nc] (docs/DESIGN.md "edgekit
  detector head"): N = sum over ``strides`` of (H / s) * (W / s) cells (strides ascending, each
  grid row-major), columns l, t, r, b from the cell centre ((x + 0.5) s, (y + 0.5) s) as
  fractions of the input width/height, then nc sigmoid class scores; all values in 0..1.

Quantized scores are thresholded in the integer domain ((q - zp) * scale >= t <=> q >= t / scale
+ zp for scale > 0), so only the candidates that pass are dequantized.
"""

from __future__ import annotations

from edgekit.detect.anchor_free import AnchorFree
from edgekit.detect.end2end import YoloEnd2End
from edgekit.detect.heads import (
    COMMON_PARAMS,
    MAX_DETECTIONS,
    POSTPROCESS_OP,
    Decoder,
    HeadIO,
    OutputTensor,
    check_params,
)
from edgekit.detect.ssd import SsdPostprocess
from edgekit.detect.yolo import YoloV5, YoloV8
from edgekit.detect.yolov3 import YoloV3
from edgekit.errors import EdgekitError

__all__ = [
    "COMMON_PARAMS", "MAX_DETECTIONS", "POSTPROCESS_OP", "AnchorFree", "Decoder", "HeadIO",
    "OutputTensor", "SsdPostprocess", "YoloEnd2End", "YoloV3", "YoloV5", "YoloV8",
    "available_decoders", "check_params",
    "get_decoder", "guess_decoder", "register_decoder",
]  # fmt: skip

_DECODERS: dict[str, type[Decoder]] = {}


def register_decoder(cls: type[Decoder]) -> type[Decoder]:
    _DECODERS[cls.name] = cls
    return cls


for _cls in (SsdPostprocess, YoloV8, YoloV5, YoloEnd2End, YoloV3, AnchorFree):
    register_decoder(_cls)


def available_decoders() -> tuple[str, ...]:
    return tuple(sorted(_DECODERS))


def get_decoder(name: str) -> type[Decoder]:
    try:
        return _DECODERS[name]
    except KeyError:
        raise EdgekitError(
            f"unknown decoder {name!r}", f"known: {', '.join(available_decoders())}"
        ) from None


def guess_decoder(model_info, state_outputs: frozenset[int] = frozenset()) -> str | None:
    """The decoder for a bare .tflite's head, from its graph and output shapes (a
    :class:`edgekit.tflite.ModelInfo`), or None when it does not look like a detector we know
    (e.g. a classifier's [1, classes]). ``state_outputs``: tensor indices to ignore."""
    if any(op.opcode == POSTPROCESS_OP for op in model_info.main.operators):
        return "ssd-postprocess"
    outs = [t for t in model_info.outputs if t.index not in state_outputs]
    if outs and _anchor_grids(model_info, outs):
        return "yolov3"
    if not outs or any(len(t.shape) != 3 or t.shape[0] != 1 for t in outs):
        return None
    if len({t.shape[1] for t in outs}) == 1 and all(t.shape[1] < t.shape[2] for t in outs):
        return "yolov8" if outs[0].shape[1] > 4 else None
    if len({t.shape[2] for t in outs}) == 1 and all(t.shape[1] > t.shape[2] for t in outs):
        # [1, N, C]: v5's layout, or a transposed v8 head; an Ultralytics export that names its
        # classes tells them apart (C = 4 + classes: no objectness column)
        from edgekit.detect.detector import embedded_labels

        names = embedded_labels(model_info)
        if len(outs) == 1 and outs[0].shape[2] == 6 and _end2end(model_info, outs[0], names):
            return "yolo-end2end"
        if names and outs[0].shape[2] == 4 + len(names):
            return "yolov8"
        return "yolov5" if outs[0].shape[2] > 5 else None
    return None


def _end2end(model_info, out, names: dict[int, str]) -> bool:
    """Whether a single [1, N, 6] head is an NMS-free one (x0, y0, x1, y1, score, class) rather
    than a one-class YOLOv5 head (cx, cy, w, h, objectness, score): the export says so
    (Ultralytics metadata ``end2end: True`` or a YOLOv10 description), it names more than one
    class (a v5 head's 6 columns hold one class), or N is not a v5 anchor grid (3 anchors on
    strides 8, 16, 32; end-to-end exports keep 300 rows)."""
    from edgekit.detect.detector import embedded_metadata

    meta = embedded_metadata(model_info)
    if meta.get("end2end") is True or "yolov10" in str(meta.get("description", "")).lower():
        return True
    if len(names) > 1:
        return meta.get("end2end") is not False
    if names:
        return False
    h, w = next(((t.shape[1], t.shape[2]) for t in model_info.inputs if len(t.shape) == 4), (0, 0))
    grid = 3 * sum((h // s) * (w // s) for s in (8, 16, 32))
    return out.shape[1] != grid


def _anchor_grids(model_info, outs) -> bool:
    """darknet-style heads: every output [1, H, W, C] with one C = 3 * (5 + nc) and a grid at
    stride 8, 16, 32 or 64 of the image input (a segmentation map is at stride 1)."""
    h, w = next(((t.shape[1], t.shape[2]) for t in model_info.inputs if len(t.shape) == 4), (0, 0))
    if any(len(t.shape) != 4 or t.shape[0] != 1 or not t.shape[1] for t in outs):
        return False
    if len({t.shape[3] for t in outs}) != 1 or outs[0].shape[3] % 3 or outs[0].shape[3] <= 18:
        return False
    return all(
        h % t.shape[1] == 0
        and h // t.shape[1] in (8, 16, 32, 64)
        and t.shape[2] * (h // t.shape[1]) == w
        for t in outs
    )
