"""``yolov3``: darknet YOLOv3 / YOLOv3-Tiny anchor heads, one output per stride
[1, H, W, A * (5 + nc)] (A anchors per cell, usually 3; channels per anchor tx, ty, tw, th,
objectness, nc class logits; raw values, the model has no sigmoid).

Decoding (Redmon & Farhadi 2018, arXiv:1804.02767, section 2.1): for the cell (col, row) of an
output with stride s = input height / H and its anchor (aw, ah) in input pixels,
cx = (sigmoid(tx) + col) * s, cy = (sigmoid(ty) + row) * s, w = aw * exp(tw), h = ah * exp(th),
score = sigmoid(objectness) * sigmoid(class logit); then class-aware NMS.

Anchors: the ``anchors`` param ([[w, h], ...] in input pixels, small first, A per output: the
smallest stride takes the first A, as darknet's masks do), from the bundle or ``--anchors FILE``
(darknet's ``10,14, 23,27, ...``); without it darknet's defaults for 2 outputs (yolov3-tiny) or 3
(yolov3).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.detect.heads import Decoder, HeadIO, _finite_rows, _shapes, _strides
from edgekit.detect.nms import batched_nms
from edgekit.errors import EdgekitError

TINY_ANCHORS = ((10, 14), (23, 27), (37, 58), (81, 82), (135, 169), (344, 319))
YOLOV3_ANCHORS = ((10, 13), (16, 30), (33, 23), (30, 61), (62, 45), (59, 119), (116, 90),
                  (156, 198), (373, 326))  # fmt: skip
_DEFAULTS = {2: TINY_ANCHORS, 3: YOLOV3_ANCHORS}
_STRIDES = (8, 16, 32, 64)


def check_anchors(name: str, v: Any) -> tuple[tuple[float, float], ...]:
    """[[w, h], ...] (or a flat [w, h, w, h, ...]) of positive finite pixels, at most 64 pairs."""
    flat = v
    if isinstance(v, (list, tuple)) and v and all(isinstance(p, (list, tuple)) for p in v):
        flat = [x for p in v if len(p) == 2 for x in p] if all(len(p) == 2 for p in v) else None
    ok = isinstance(flat, (list, tuple)) and 0 < len(flat) <= 128 and len(flat) % 2 == 0
    ok = ok and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x) and 0 < x < 1e5
        for x in flat
    )
    if not ok:
        raise EdgekitError(
            f"detection param {name} = {v!r} is not a list of anchor (w, h) pairs in pixels",
            'e.g. "anchors": [[10, 14], [23, 27], [37, 58], [81, 82], [135, 169], [344, 319]]',
        )
    return tuple((float(flat[i]), float(flat[i + 1])) for i in range(0, len(flat), 2))


def read_anchors(path: str | Path) -> list[list[float]]:
    """Anchors from a file in darknet's format (``10,14, 23,27, 37,58`` on one or more lines,
    ``#`` comments; an ``anchors = ...`` line of a .cfg works too) as [[w, h], ...]."""
    from edgekit.safeio import read_text

    p = Path(path)
    text = read_text(p, "anchors", limit=1 << 20)  # regular files only (a FIFO hung), BOM dropped
    lines = [ln.split("#", 1)[0] for ln in text.splitlines()]
    cfg = [ln.split("=", 1)[1] for ln in lines if re.match(r"\s*anchors\s*=", ln)]
    body = cfg[-1] if cfg else " ".join(ln for ln in lines if "=" not in ln and "[" not in ln)
    tokens = [t for t in re.split(r"[\s,]+", body.strip()) if t]
    try:
        values = [float(t) for t in tokens]
    except ValueError:
        raise EdgekitError(
            f"{p}: not darknet anchors", "write them as: 10,14, 23,27, 37,58, 81,82, ..."
        ) from None
    if not (0 < len(values) <= 128 and len(values) % 2 == 0
            and all(0 < v < 1e5 for v in values)):  # fmt: skip  (NaN fails too)
        raise EdgekitError(
            f"{p}: {len(values)} numbers, not 1 to 64 anchor pairs (w, h) of positive pixels",
            "write them as: 10,14, 23,27, 37,58, 81,82, ...",
        )
    pairs = check_anchors(f"anchors ({p.name})", values)
    return [list(a) for a in pairs]


def check_heads(name: str, v: Any) -> tuple[dict[str, Any], ...]:
    """The bundle's grid heads: [{"stride": s, "grid": [rows, cols], "anchors": [[w, h], ...]},
    ...], smallest stride first, at most 8."""
    ok = isinstance(v, (list, tuple)) and 0 < len(v) <= 8
    heads = []
    for h in v if ok else ():
        ok = ok and isinstance(h, dict) and set(h) == {"stride", "grid", "anchors"}
        if not ok:
            break
        s, g = h["stride"], h["grid"]
        ok = isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= 1024
        ok = ok and isinstance(g, (list, tuple)) and len(g) == 2
        ok = ok and all(type(x) is int and 0 < x <= 65536 for x in g)
        if ok:
            heads.append({"stride": s, "grid": (g[0], g[1]),
                          "anchors": check_anchors(f"{name}.anchors", h["anchors"])})  # fmt: skip
    if not ok or [h["stride"] for h in heads] != sorted({h["stride"] for h in heads}):
        raise EdgekitError(
            f"detection param {name} is not a list of heads by ascending stride",
            'e.g. "heads": [{"stride": 16, "grid": [26, 26], "anchors": [[10, 14], ...]}, ...]',
        )
    return tuple(heads)


class YoloV3(Decoder):
    """Per-stride grid outputs [1, H, W, A * (5 + nc)] (darknet, Edge TPU ports), or one
    [1, N, A * (5 + nc)] output of the grids' rows concatenated (the zoo's ``yolov3_tiny``:
    ``strides`` param, ascending, each grid row-major)."""

    name = "yolov3"
    PARAMS = {"anchors": check_anchors, "strides": _strides, "heads": check_heads}

    def __init__(self, io: HeadIO, params: dict[str, Any] | None = None):
        super().__init__(io, params)
        h, w = io.input_size
        outs = io.outputs
        # levels: (output, first row, grid height, grid width, stride), smallest stride first
        levels = []
        if len(outs) == 1 and len(outs[0].shape) == 3 and outs[0].shape[0] == 1:
            o = outs[0]
            strides = self.params.get("strides") or (16, 32)
            row = 0
            for s in strides:
                if h % s or w % s:
                    raise self.refuse(f"input {h}x{w} is not a multiple of stride {s}")
                levels.append((o, row, h // s, w // s, s))
                row += (h // s) * (w // s)
            if row != o.shape[1]:
                raise self.refuse(
                    f"output {list(o.shape)} does not hold the rows of strides {list(strides)} "
                    f"on {h}x{w} ({row})"
                )
            chans = {o.shape[2]}
        else:
            if not outs or any(len(o.shape) != 4 or o.shape[0] != 1 for o in outs):
                raise self.refuse(f"expected [1, H, W, A*(5+nc)] outputs, got {_shapes(io)}")
            for o in outs:
                s = h // o.shape[1] if o.shape[1] else 0
                if not s or o.shape[1] * s != h or o.shape[2] * s != w:
                    raise self.refuse(f"output {list(o.shape)} is not a grid of the {h}x{w} input")
                levels.append((o, None, o.shape[1], o.shape[2], s))
            levels.sort(key=lambda lv: lv[4])
            chans = {o.shape[3] for o in outs}
        self.levels = levels
        anchors = self.params.get("anchors") or _DEFAULTS.get(len(levels))
        heads = self.params.get("heads")
        if heads is not None:
            self._check_heads(heads, anchors)
        if anchors is None or len(anchors) % len(levels):
            n = "no" if anchors is None else len(anchors)
            raise self.refuse(
                f"{n} anchors for {len(levels)} grids: give A per grid (--anchors FILE)"
            )
        self.per_level = len(anchors) // len(levels)
        c = chans.pop() if len(chans) == 1 else 0
        if not c or c % self.per_level or c // self.per_level <= 5:
            raise self.refuse(
                f"{len(anchors)} anchors for {len(levels)} grids: outputs {_shapes(io)} do not "
                f"hold {self.per_level} anchors x (5 + classes) (darknet's: 3 per grid)"
            )
        self.num_classes = c // self.per_level - 5
        self.anchors = np.array(anchors, dtype=np.float64).reshape(len(levels), self.per_level, 2)
        self.grids = []
        for _o, _row, gh, gw, _s in levels:
            gy, gx = np.mgrid[0:gh, 0:gw]
            self.grids.append(np.stack([gx, gy], axis=-1).astype(np.float64)[:, :, None, :])

    def _check_heads(self, heads, anchors) -> None:
        """The bundle's heads (what convert saw) against the model's outputs and the anchors
        in use (the bundle's, or ``--anchors``): same grids, A anchors for each head."""
        grids = [(gh, gw) for _o, _row, gh, gw, _s in self.levels]
        if [tuple(h["grid"]) for h in heads] != grids:
            raise EdgekitError(
                f"yolov3 decoder: the bundle records heads of grids "
                f"{[list(h['grid']) for h in heads]}, its model's outputs are "
                f"{[list(g) for g in grids]}",
                "re-create the bundle with `edgekit convert`",
            )
        per = len(heads[0]["anchors"])
        if anchors is not None and len(anchors) != per * len(heads):
            raise EdgekitError(
                f"yolov3 decoder: {len(anchors)} anchors for this model's {len(heads)} heads "
                f"of {per} anchors each",
                f"give {per * len(heads)} (--anchors FILE: darknet's 10,14, 23,27, ..., "
                "the ones the model was trained with)",
            )

    def _decode(self, raw, threshold, iou, max_detections):
        boxes, scores, classes = [], [], []
        for (o, row, gh, gw, s), grid, anchors in zip(self.levels, self.grids, self.anchors):
            q = raw[o.index]
            q = q.reshape(o.shape[1:])[row : row + gh * gw] if row is not None else q
            t = o.dequantize(q).astype(np.float64)
            t = t.reshape(gh, gw, self.per_level, 5 + self.num_classes)
            obj = _sigmoid(t[..., 4])
            keep = obj >= threshold  # score = objectness * class score <= objectness
            if not keep.any():
                continue
            cls = _sigmoid(t[..., 5:][keep]) * obj[keep][:, None]
            best = cls.argmax(axis=1)
            score = cls[np.arange(best.size), best]
            xy = (_sigmoid(t[..., :2]) + grid)[keep] * s
            wh = np.exp(np.minimum(t[..., 2:4], 20.0))  # exp overflow guard (e^20 ~ 5e8 x)
            wh = (wh * anchors[None, None])[keep]
            ok = score >= threshold
            boxes.append(np.concatenate([xy - wh / 2, xy + wh / 2], axis=1)[ok])
            scores.append(score[ok]), classes.append(best[ok])
        if not boxes:
            return np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64)
        b, sc, c = np.concatenate(boxes), np.concatenate(scores), np.concatenate(classes)
        b, sc, c = _finite_rows(b, sc, c)
        keep = batched_nms(b, sc, c, iou, max_detections)
        return b[keep], sc[keep], c[keep].astype(np.int64)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
