"""Detection heads edgekit decodes: which output is what, dequantize, decode, NMS (numpy only).

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
- ``edgekit-anchor-free``: edgekit's own detector head [1, N, 4 + nc] (docs/DESIGN.md "edgekit
  detector head"): N = sum over ``strides`` of (H / s) * (W / s) cells (strides ascending, each
  grid row-major), columns l, t, r, b from the cell centre ((x + 0.5) s, (y + 0.5) s) as
  fractions of the input width/height, then nc sigmoid class scores; all values in 0..1.

Quantized scores are thresholded in the integer domain ((q - zp) * scale >= t <=> q >= t / scale
+ zp for scale > 0), so only the candidates that pass are dequantized.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from edgekit.detect.nms import batched_nms
from edgekit.errors import EdgekitError

POSTPROCESS_OP = "TFLite_Detection_PostProcess"
MAX_DETECTIONS = 10_000
_HINT = "pass --decoder (ssd-postprocess, yolov8, yolov5, edgekit-anchor-free) if you know the head"


@dataclass(frozen=True)
class OutputTensor:
    """One model output as a decoder sees it (``index`` is the interpreter's tensor index)."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float = 0.0
    zero_point: int = 0

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        if np.dtype(self.dtype).kind == "f" or not self.scale:
            return q.astype(np.float32)
        return (q.astype(np.float32) - np.float32(self.zero_point)) * np.float32(self.scale)

    def q_threshold(self, value: float) -> float:
        """The raw value that dequantizes to ``value`` (compare raw >= it)."""
        if np.dtype(self.dtype).kind == "f" or not self.scale:
            return value
        return value / self.scale + self.zero_point

    def max_value(self) -> float:
        """The largest value this tensor can represent (inf for float)."""
        dt = np.dtype(self.dtype)
        if dt.kind == "f" or not self.scale:
            return math.inf
        return (np.iinfo(dt).max - self.zero_point) * self.scale


@dataclass(frozen=True)
class HeadIO:
    """What a decoder binds to: the input size (height, width), the detection outputs (state
    outputs excluded) and, from the graph, the TFLite_Detection_PostProcess op's output tensor
    indices in the op's order (boxes, classes, scores, count), or None."""

    input_size: tuple[int, int]
    outputs: tuple[OutputTensor, ...]
    postprocess: tuple[int, ...] | None = None


# -- params ---------------------------------------------------------------------------------------
def _number(lo: float, hi: float, integer: bool = False) -> Callable[[str, Any], Any]:
    def check(name: str, v: Any) -> Any:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        if ok and integer:
            ok = float(v).is_integer()
        if not ok or not lo <= v <= hi:
            kind = "an integer" if integer else "a number"
            raise EdgekitError(
                f"detection param {name} = {v!r} is not {kind} in {lo:g}..{hi:g}",
                "fix it in edgekit.json (detection.params) or the option",
            )
        return int(v) if integer else float(v)

    return check


def _choice(*options: str) -> Callable[[str, Any], Any]:
    def check(name: str, v: Any) -> Any:
        if v not in options:
            raise EdgekitError(
                f"detection param {name} = {v!r} is not one of {', '.join(options)}",
                "fix it in edgekit.json (detection.params)",
            )
        return v

    return check


def _flag(name: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise EdgekitError(f"detection param {name} = {v!r} is not true or false", "fix it")
    return v


def _strides(name: str, v: Any) -> tuple[int, ...]:
    ok = isinstance(v, (list, tuple)) and 0 < len(v) <= 8
    ok = ok and all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= 1024 for s in v)
    if not ok or list(v) != sorted(set(v)):
        raise EdgekitError(
            f"detection param {name} = {v!r} is not a list of ascending strides",
            'e.g. "strides": [8, 16, 32]',
        )
    return tuple(v)


COMMON_PARAMS: dict[str, Callable[[str, Any], Any]] = {
    "score_threshold": _number(0, 1),
    "iou": _number(0, 1),
    "max_detections": _number(1, MAX_DETECTIONS, integer=True),
    "letterbox": _flag,
    "fill": _number(0, 255, integer=True),
}


class Decoder:
    """Base: ``params`` are validated against ``PARAMS`` (unknown names are refused)."""

    name = ""
    PARAMS: dict[str, Callable[[str, Any], Any]] = {}
    letterbox = True  # how the input is fitted unless params say otherwise
    value_range: tuple[float, float] | None = (0.0, 1.0)  # None: read off the input tensor

    def __init__(self, io: HeadIO, params: dict[str, Any] | None = None):
        self.io = io
        self.params = check_params(self.name, params or {}, self.PARAMS)
        self.input_h, self.input_w = io.input_size
        for o in io.outputs:
            if not (math.isfinite(o.scale) and o.scale >= 0) or any(d < 0 for d in o.shape):
                raise self.refuse(f"output {o.name!r} has a broken shape or quantization")

    def decode(
        self, raw: dict[int, np.ndarray], threshold: float, iou: float, max_detections: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(boxes (K, 4) input pixels, scores (K,), class ids (K,)), best first. NaN/inf in a
        float head are dropped silently (no numpy warnings on stderr)."""
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            return self._decode(raw, threshold, iou, max_detections)

    def _decode(self, raw, threshold, iou, max_detections):
        raise NotImplementedError

    def refuse(self, what: str) -> EdgekitError:
        return EdgekitError(f"{self.name} decoder: {what}", _HINT)


def _finite_rows(xyxy: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """Drop candidates whose box is not finite (a float head can hold NaN or inf)."""
    ok = np.isfinite(xyxy).all(axis=1)
    if ok.all():
        return (xyxy, *others)
    return (xyxy[ok], *(o[ok] for o in others))


def check_params(decoder: str, params: dict[str, Any], extra: dict) -> dict[str, Any]:
    known = {**COMMON_PARAMS, **extra}
    if not isinstance(params, dict):
        raise EdgekitError("detection params must be an object", "fix edgekit.json")
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise EdgekitError(
            f"unknown {decoder} detection param(s): {', '.join(unknown)}",
            f"known: {', '.join(sorted(known))}",
        )
    return {k: known[k](k, v) for k, v in params.items()}


# -- SSD with TFLite_Detection_PostProcess --------------------------------------------------------
_SSD_ROLES = ("boxes", "classes", "scores", "count")


class SsdPostprocess(Decoder):
    name = "ssd-postprocess"
    letterbox = False  # Coral's and TF's SSD pipelines resize without keeping the aspect
    value_range = None

    def __init__(self, io: HeadIO, params: dict[str, Any] | None = None):
        super().__init__(io, params)
        by_index = {o.index: o for o in io.outputs}
        if io.postprocess and all(i in by_index for i in io.postprocess[:4]):
            roles = dict(zip(_SSD_ROLES, io.postprocess))
        else:
            roles = _ssd_roles_by_name(io.outputs)
            if roles is None:
                raise self.refuse(
                    "no TFLite_Detection_PostProcess op feeds the outputs and their names do not "
                    "say which is boxes, classes, scores and count"
                )
        shapes = {r: by_index[i].shape for r, i in roles.items()}
        n = shapes["boxes"][1] if len(shapes["boxes"]) == 3 else -1
        if (
            shapes["boxes"] != (1, n, 4)
            or shapes["classes"] != (1, n)
            or shapes["scores"] != (1, n)
            or math.prod(shapes["count"]) != 1
        ):
            raise self.refuse(f"unexpected output shapes {shapes}")
        self.roles = roles
        self.tensors = {r: by_index[i] for r, i in roles.items()}

    def _decode(self, raw, threshold, iou, max_detections):
        t = self.tensors
        boxes = t["boxes"].dequantize(raw[self.roles["boxes"]]).reshape(-1, 4)
        classes = t["classes"].dequantize(raw[self.roles["classes"]]).reshape(-1)
        scores = t["scores"].dequantize(raw[self.roles["scores"]]).reshape(-1)
        count = float(t["count"].dequantize(raw[self.roles["count"]]).reshape(-1)[0])
        n = int(min(max(count, 0), boxes.shape[0])) if math.isfinite(count) else 0
        ok = np.isfinite(scores[:n]) & (scores[:n] >= threshold) & np.isfinite(classes[:n])
        ok &= np.isfinite(boxes[:n]).all(axis=1) & (np.abs(classes[:n]) < 2**31)
        keep = np.nonzero(ok)[0]
        keep = keep[np.argsort(-scores[keep], kind="stable")][:max_detections]
        b = boxes[keep].astype(np.float64)  # ymin, xmin, ymax, xmax in 0..1
        h, w = self.input_h, self.input_w
        xyxy = np.stack([b[:, 1] * w, b[:, 0] * h, b[:, 3] * w, b[:, 2] * h], axis=1)
        return xyxy, scores[keep].astype(np.float64), classes[keep].astype(np.int64)


def _ssd_roles_by_name(outputs: tuple[OutputTensor, ...]) -> dict[str, int] | None:
    """TF1 names (``TFLite_Detection_PostProcess``, ``:1``, ``:2``, ``:3``) or descriptive names
    (``detection_boxes``...); never the position in the output list alone."""
    roles: dict[str, int] = {}
    for o in outputs:
        name = o.name.lower()
        if name.startswith(POSTPROCESS_OP.lower()):
            suffix = name.rsplit(":", 1)[1] if ":" in name else "0"
            if suffix in ("0", "1", "2", "3"):
                roles[_SSD_ROLES[int(suffix)]] = o.index
            continue
        for role, words in (
            ("boxes", ("box",)), ("classes", ("class",)), ("scores", ("score",)),
            ("count", ("num_detections", "count")),
        ):  # fmt: skip
            if any(w in name for w in words):
                roles[role] = o.index
    return roles if len(roles) == 4 and len(set(roles.values())) == 4 else None


# -- Ultralytics YOLO -----------------------------------------------------------------------------
_YOLO_PARAMS = {
    "box_units": _choice("auto", "normalized", "pixels"),
    "max_candidates": _number(1, 1_000_000, integer=True),
}


class _Yolo(Decoder):
    PARAMS = _YOLO_PARAMS
    has_objectness = False
    channels_first = True  # [1, C, N] (v8) vs [1, N, C] (v5)

    def __init__(self, io: HeadIO, params: dict[str, Any] | None = None):
        super().__init__(io, params)
        outs = io.outputs
        if not outs:
            raise self.refuse("the model has no outputs")
        extra = 5 if self.has_objectness else 4
        layout = "[1, 5+nc, N]" if self.has_objectness else "[1, 4+nc, N]"
        if not self.channels_first:
            layout = "[1, N, 5+nc]"
        chans = set()
        for o in outs:
            if len(o.shape) != 3 or o.shape[0] != 1:
                raise self.refuse(f"output {o.name!r} has shape {list(o.shape)}, expected {layout}")
            chans.add(o.shape[1] if self.channels_first else o.shape[2])
        if len(chans) != 1 or min(chans) <= extra:
            shapes = [list(o.shape) for o in outs]
            raise self.refuse(f"outputs {shapes} are not one {layout} head (split per stride)")
        self.num_classes = chans.pop() - extra
        units = self.params.get("box_units", "auto")
        if units == "auto" and all(o.max_value() <= 2.0 for o in outs):
            units = "normalized"  # the tensor cannot even represent a pixel coordinate
        self.box_units = units
        self.max_candidates = int(self.params.get("max_candidates", 30_000))

    def _head(self, o: OutputTensor, q: np.ndarray) -> np.ndarray:
        """(C, N) view of one raw output."""
        q = q.reshape(o.shape[1:])
        return q if self.channels_first else q.T

    def _decode(self, raw, threshold, iou, max_detections):
        boxes, scores, classes = [], [], []
        for o in self.io.outputs:
            b, s, c = self._candidates(o, self._head(o, raw[o.index]), threshold)
            boxes.append(b), scores.append(s), classes.append(c)
        b, s, c = np.concatenate(boxes), np.concatenate(scores), np.concatenate(classes)
        if s.size > self.max_candidates:
            top = np.argpartition(-s, self.max_candidates - 1)[: self.max_candidates]
            b, s, c = b[top], s[top], c[top]
        b = self._to_pixels(b)
        xyxy = np.concatenate([b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2], axis=1)
        xyxy, s, c = _finite_rows(xyxy, s, c)
        keep = batched_nms(xyxy, s, c, iou, max_detections)
        return xyxy[keep], s[keep], c[keep]

    def _candidates(self, o: OutputTensor, head: np.ndarray, threshold: float):
        first = 5 if self.has_objectness else 4
        gate = head[4] if self.has_objectness else head[first:].max(axis=0)
        idx = np.nonzero(gate >= o.q_threshold(threshold))[0]
        cols = o.dequantize(head[:, idx])  # (C, k) float32
        cls = cols[first:]
        if self.has_objectness:
            cls = cls * cols[4]
        best = cls.argmax(axis=0)
        score = cls[best, np.arange(idx.size)].astype(np.float64)
        ok = np.isfinite(score) & (score >= threshold)
        return cols[:4, ok].T.astype(np.float64), score[ok], best[ok].astype(np.int64)

    def _to_pixels(self, cxcywh: np.ndarray) -> np.ndarray:
        units = self.box_units
        if units == "auto":  # a float head: normalized boxes stay within ~0..1
            units = "normalized" if cxcywh.size == 0 or np.abs(cxcywh).max() <= 2.0 else "pixels"
        if units == "normalized":
            w, h = self.input_w, self.input_h
            return cxcywh * np.array([w, h, w, h], dtype=np.float64)
        return cxcywh


class YoloV8(_Yolo):
    name = "yolov8"


class YoloV5(_Yolo):
    name = "yolov5"
    has_objectness = True
    channels_first = False


# -- edgekit's own anchor-free head ---------------------------------------------------------------
class AnchorFree(Decoder):
    """The zoo detector's head (layout in docs/DESIGN.md "edgekit detector head"): every value
    is a sigmoid output in 0..1; l, t, r, b are fractions of the input width/height."""

    name = "edgekit-anchor-free"
    PARAMS = {"strides": _strides, "max_candidates": _number(1, 1_000_000, integer=True)}

    def __init__(self, io: HeadIO, params: dict[str, Any] | None = None):
        super().__init__(io, params)
        if len(io.outputs) != 1 or len(io.outputs[0].shape) != 3 or io.outputs[0].shape[0] != 1:
            raise self.refuse(f"expected one [1, N, 4+nc] output, got {_shapes(io)}")
        self.out = io.outputs[0]
        h, w = io.input_size
        strides = self.params.get("strides", (8, 16))
        if any(h % s or w % s for s in strides):
            raise self.refuse(f"input {h}x{w} is not a multiple of every stride {list(strides)}")
        xs, ys = [], []
        for s in strides:
            gy, gx = np.mgrid[0 : h // s, 0 : w // s]
            xs.append((gx.reshape(-1) + 0.5) * s), ys.append((gy.reshape(-1) + 0.5) * s)
        self.centres = np.stack([np.concatenate(xs), np.concatenate(ys)], axis=1)
        n, c = self.out.shape[1], self.out.shape[2]
        if n != self.centres.shape[0] or c <= 4:
            raise self.refuse(
                f"output {list(self.out.shape)} does not fit strides {list(strides)} on "
                f"{h}x{w} (expected [1, {self.centres.shape[0]}, 4+nc])"
            )
        self.num_classes = c - 4
        self.max_candidates = int(self.params.get("max_candidates", 30_000))
        self._size = np.array([w, h, w, h], dtype=np.float64)

    def _decode(self, raw, threshold, iou, max_detections):
        o = self.out
        head = raw[o.index].reshape(o.shape[1:])  # (N, 4 + nc)
        idx = np.nonzero(head[:, 4:].max(axis=1) >= o.q_threshold(threshold))[0]
        rows = o.dequantize(head[idx]).astype(np.float64)
        best = rows[:, 4:].argmax(axis=1)
        score = rows[np.arange(idx.size), 4 + best]
        ok = np.isfinite(score) & (score >= threshold)
        idx, rows, score, best = idx[ok], rows[ok], score[ok], best[ok]
        if score.size > self.max_candidates:
            top = np.argpartition(-score, self.max_candidates - 1)[: self.max_candidates]
            idx, rows, score, best = idx[top], rows[top], score[top], best[top]
        ltrb = rows[:, :4] * self._size
        c = self.centres[idx]
        xyxy = np.concatenate([c - ltrb[:, :2], c + ltrb[:, 2:]], axis=1)
        xyxy, score, best = _finite_rows(xyxy, score, best)
        keep = batched_nms(xyxy, score, best, iou, max_detections)
        return xyxy[keep], score[keep], best[keep].astype(np.int64)


def _shapes(io: HeadIO) -> list[list[int]]:
    return [list(o.shape) for o in io.outputs]


# -- registry -------------------------------------------------------------------------------------
_DECODERS: dict[str, type[Decoder]] = {}


def register_decoder(cls: type[Decoder]) -> type[Decoder]:
    _DECODERS[cls.name] = cls
    return cls


for _cls in (SsdPostprocess, YoloV8, YoloV5, AnchorFree):
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
    if not outs or any(len(t.shape) != 3 or t.shape[0] != 1 for t in outs):
        return None
    if len({t.shape[1] for t in outs}) == 1 and all(t.shape[1] < t.shape[2] for t in outs):
        return "yolov8" if outs[0].shape[1] > 4 else None
    if len({t.shape[2] for t in outs}) == 1 and all(t.shape[1] > t.shape[2] for t in outs):
        return "yolov5" if outs[0].shape[2] > 5 else None
    return None
