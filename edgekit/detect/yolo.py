"""Ultralytics YOLO heads: ``yolov8`` [1, 4 + nc, N] (v8/v11: cx, cy, w, h, nc class scores, no
objectness) and ``yolov5`` [1, N, 5 + nc] (objectness x class score), one tensor or split per
stride. Boxes in input pixels or normalized to the input size: decided from the range the output
tensor's quantization can represent (<= 2: normalized), or from the values of a float head;
``box_units`` overrides.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.detect.heads import Decoder, HeadIO, OutputTensor, _choice, _finite_rows, _number
from edgekit.detect.nms import batched_nms

_YOLO_PARAMS = {
    "box_units": _choice("auto", "normalized", "pixels"),
    "max_candidates": _number(1, 1_000_000, integer=True),
}


def _channels_first(outs, default: bool) -> bool:
    """Whether the channel axis is 1 ([1, C, N]) or 2 ([1, N, C]): the axis every split output
    shares, else the shorter one (a head has far more candidates than channels), else
    ``default``."""
    ones, twos = {o.shape[1] for o in outs}, {o.shape[2] for o in outs}
    if len(ones) == 1 and len(twos) > 1:
        return True
    if len(twos) == 1 and len(ones) > 1:
        return False
    a, b = outs[0].shape[1], outs[0].shape[2]
    return default if a == b else a < b


class _Yolo(Decoder):
    """Shared by v8 and v5. A transposed head (v8 channels last, v5 channels first, as some
    exporters write them) is read too: see :func:`_channels_first`."""

    PARAMS = _YOLO_PARAMS
    has_objectness = False
    channels_first = True  # the exporter's usual layout: [1, C, N] (v8) vs [1, N, C] (v5)

    def __init__(self, io: HeadIO, params: dict[str, Any] | None = None):
        super().__init__(io, params)
        outs = io.outputs
        if not outs:
            raise self.refuse("the model has no outputs")
        extra = 5 if self.has_objectness else 4
        layout = "[1, 5+nc, N]" if self.has_objectness else "[1, 4+nc, N]"
        if not self.channels_first:
            layout = "[1, N, 5+nc]"
        for o in outs:
            if len(o.shape) != 3 or o.shape[0] != 1:
                raise self.refuse(f"output {o.name!r} has shape {list(o.shape)}, expected {layout}")
        self.channels_first = _channels_first(outs, type(self).channels_first)
        chans = {o.shape[1] if self.channels_first else o.shape[2] for o in outs}
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
