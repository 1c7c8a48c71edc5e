"""``edgekit-anchor-free``: the zoo detector's head (docs/DESIGN.md "edgekit detector head")."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.detect.heads import (
    Decoder,
    HeadIO,
    _finite_rows,
    _number,
    _shapes,
    _strides,
)
from edgekit.detect.nms import batched_nms


def _infer_strides(h: int, w: int, n: int) -> tuple[int, ...]:
    """Strides for a bare .tflite (no manifest): the one ascending run of 4, 8, 16, 32, 64 whose
    grids add up to ``n`` rows, else the zoo's default (8, 16) (then refused as not fitting)."""
    found = []
    cands = [s for s in (4, 8, 16, 32, 64) if h % s == 0 and w % s == 0]
    for i in range(len(cands)):
        for j in range(i + 1, len(cands) + 1):
            run = tuple(cands[i:j])
            if sum((h // s) * (w // s) for s in run) == n:
                found.append(run)
    return found[0] if len(found) == 1 else (8, 16)


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
        strides = self.params.get("strides") or _infer_strides(h, w, self.out.shape[1])
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
