"""What every detection decoder shares: the output tensors it binds to (:class:`HeadIO`), the
params checks, and the :class:`Decoder` base (layouts in :mod:`edgekit.detect.decoders`).

Quantized scores are thresholded in the integer domain ((q - zp) * scale >= t <=> q >= t / scale
+ zp for scale > 0), so only the candidates that pass are dequantized.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from edgekit.errors import EdgekitError

POSTPROCESS_OP = "TFLite_Detection_PostProcess"
MAX_DETECTIONS = 10_000
_NUMERIC = ("int8", "uint8", "int16", "uint16", "int32", "float16", "float32", "float64")
_HINT = (
    "pass --decoder (ssd-postprocess, yolov8, yolov5, yolo-end2end, yolov3, edgekit-anchor-free)"
    " if you know the head"
)


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
    notes: tuple[str, ...] = ()  # one-line warnings about this head (said once by the caller)

    def __init__(self, io: HeadIO, params: dict[str, Any] | None = None):
        self.io = io
        self.params = check_params(self.name, params or {}, self.PARAMS)
        self.input_h, self.input_w = io.input_size
        for o in io.outputs:
            if not (math.isfinite(o.scale) and o.scale >= 0) or any(d < 0 for d in o.shape):
                raise self.refuse(f"output {o.name!r} has a broken shape or quantization")
            if o.dtype not in _NUMERIC:
                raise self.refuse(f"output {o.name!r} holds {o.dtype}, not numbers it can decode")

    def decode(
        self, raw: dict[int, np.ndarray], threshold: float, iou: float, max_detections: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(boxes (K, 4) input pixels, scores (K,), class ids (K,)), best first. NaN/inf in a
        float head are dropped silently (no numpy warnings on stderr).

        Every decoder's scores are checked here: a score outside 0..1 is never reported, the
        head is refused in one line (a model guessed as the wrong layout reads logits, class ids
        or coordinates as scores: ``person 8.651`` on a parrot)."""
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            boxes, scores, classes = self._decode(raw, threshold, iou, max_detections)
        if scores.size and not (scores.min() >= 0.0 and scores.max() <= 1.0):
            # within one quantization step of 0..1 is rounding (a coarse output scale): clipped
            step = max((o.scale for o in self.io.outputs if np.dtype(o.dtype).kind != "f"),
                       default=0.0)  # fmt: skip
            if -step - 1e-6 <= scores.min() and scores.max() <= 1.0 + step + 1e-6:
                return boxes, np.clip(scores, 0.0, 1.0), classes
            bad = scores[np.argmax(np.abs(scores - 0.5))]
            raise self.refuse(
                f"a score of {bad:.4g} is not 0..1: outputs {_shapes(self.io)} are not a "
                f"{self.name} head"
            )
        return boxes, scores, classes

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


def _shapes(io: HeadIO) -> list[list[int]]:
    return [list(o.shape) for o in io.outputs]
