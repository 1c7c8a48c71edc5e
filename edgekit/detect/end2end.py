"""``yolo-end2end``: NMS-free YOLO heads (YOLOv10, and YOLO11 / YOLO26 ``end2end`` exports).

One output [1, N, 6]: N rows (usually 300, best first) of x0, y0, x1, y1, score, class id.
The model already picked one box per object, so there is no NMS here; rows below the threshold
(the padding of an image with few objects) are dropped. Boxes are normalized to the input size
(Ultralytics' TFLite exports) or in input pixels: decided from the range the tensor can
represent (<= 2: normalized), else from the values (a box with every coordinate <= 2 pixels does
not exist), ``box_units`` overrides.

Quantization: when one int8 tensor carries boxes, scores and class ids together, its scale
must reach the largest class id (79 for COCO), so one step is ~0.31: boxes move by a third of
the image and scores take 4 values. The decoder still reads it (class ids are rounded to the
nearest integer, scores clipped to 1 within one step) and says so once (:attr:`notes`).
Values no such head can hold (a class id far from an integer or negative, a score above 1 by
more than one step, x1 < x0) are refused with one line: the model is not this layout.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.detect.heads import Decoder, HeadIO, _choice, _finite_rows, _shapes

# A box step above this fraction of the input is worth a warning (1/50: a 640 px frame moves
# by 13 px per step, already coarse for small objects).
_COARSE_STEP = 0.02


class YoloEnd2End(Decoder):
    name = "yolo-end2end"
    PARAMS = {"box_units": _choice("auto", "normalized", "pixels")}

    def __init__(self, io: HeadIO, params: dict[str, Any] | None = None):
        super().__init__(io, params)
        if len(io.outputs) != 1:
            raise self.refuse(f"expected one [1, N, 6] output, got {_shapes(io)}")
        o = self.out = io.outputs[0]
        if len(o.shape) != 3 or o.shape[0] != 1 or o.shape[2] != 6 or o.shape[1] < 1:
            raise self.refuse(f"output {o.name!r} has shape {list(o.shape)}, expected [1, N, 6]")
        self.quantized = np.dtype(o.dtype).kind != "f" and o.scale > 0
        if self.quantized and o.scale > 1.0:
            raise self.refuse(
                f"output {o.name!r} has scale {o.scale:g}: class ids 1 apart cannot be told "
                "apart; export it with a float output"
            )
        units = self.params.get("box_units", "auto")
        if units == "auto" and o.max_value() <= 2.0:
            units = "normalized"
        self.box_units = units
        # one quantization step (0 for a float head): the tolerance for the range checks
        self.step = float(o.scale) if self.quantized else 0.0
        self.notes: tuple[str, ...] = ()
        if self.quantized:
            frac = self.step if units != "pixels" else self.step / min(io.input_size)
            if frac > _COARSE_STEP:
                self.notes = (
                    f"output {o.name!r} carries boxes, scores and class ids in one "
                    f"{o.dtype} tensor with scale {o.scale:.3g}: boxes move in steps of "
                    f"{frac:.0%} of the image and scores in steps of {o.scale:.2g}; export it "
                    "with a float output (e.g. *_integer_quant.tflite instead of "
                    "*_full_integer_quant.tflite) or with boxes, scores and classes as "
                    "separate outputs",
                )

    def _decode(self, raw, threshold, iou, max_detections):
        o = self.out
        head = raw[o.index].reshape(o.shape[1:])  # (N, 6)
        # keep 0 out: a score of exactly 0 is padding even at threshold 0
        gate = max(o.q_threshold(threshold), o.q_threshold(1e-9))
        rows = o.dequantize(head[head[:, 4] >= gate]).astype(np.float64)
        rows = rows[np.isfinite(rows).all(axis=1)]
        score, cls, box = rows[:, 4], rows[:, 5], rows[:, :4]
        tol = self.step + 1e-6
        if score.size and score.max() > 1.0 + tol:
            raise self.refuse(f"scores up to {score.max():.3f} are not 0..1: not this layout")
        ids = np.rint(cls)
        off = max(self.step / 2, 0.01) + 1e-6  # a class id is an integer, up to half a step off
        if ids.size and (ids.min() < 0 or np.abs(cls - ids).max() > off):
            bad = cls[np.argmax(np.abs(cls - ids) + (ids < 0))]
            raise self.refuse(f"column 6 holds {bad:.3f}, not a class id: not this layout")
        if box.size and (box[:, 2:] < box[:, :2] - tol).any():
            raise self.refuse("boxes with x1 < x0 or y1 < y0: not x0, y0, x1, y1 rows")
        score = np.clip(score, 0.0, 1.0)  # within one quantization step of 1
        units = self.box_units
        if units == "auto":
            units = "normalized" if box.size == 0 or np.abs(box).max() <= 2.0 else "pixels"
        if units == "normalized":
            box = box * np.array([self.input_w, self.input_h] * 2, dtype=np.float64)
        box, score, ids = _finite_rows(box, score, ids)
        order = np.argsort(-score, kind="stable")[:max_detections]
        return box[order], score[order], ids[order].astype(np.int64)
