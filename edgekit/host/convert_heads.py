"""Detectors with several output heads (YOLOv3 grids, one [1, H/s, W/s, A * (5 + nc)] map per
stride s): which .tflite output is which head, what int8 does to each head's boxes, and float vs
int8 verification over all heads at once.

Heads are identified by their grid shape, never by position: the TFLite converter orders a
model's outputs by its own tensor names (``StatefulPartitionedCall:0``, ``:1``...), which need
not follow the Keras model's output order, and a third-party model's Keras order is arbitrary
too. A grid of H x W cells on an input of height IH has stride IH / H; strides are distinct
(the loader refuses anything else, :func:`edgekit.host.loaders.batch1.check_grid_heads`).

Quantization of one head (docs/DESIGN.md "Several output heads"): its int8 output carries raw
logits t with one (scale, zero point). The box centre is (sigmoid(tx) + col) * stride, and
sigmoid' <= 1/4, so one int8 step moves a centre by at most ``scale / 4 * stride`` input
pixels; the size is anchor * exp(tw), so one step changes it by a factor ``exp(scale)``. A
concatenated output shares one scale (the widest head's range) between all heads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgekit.errors import EdgekitError


@dataclass(frozen=True)
class Head:
    """One grid head: ``stride`` in input pixels, ``grid`` (rows, cols), the ``anchors`` it
    takes ((w, h) in input pixels) and its position ``keras_index`` among the model's outputs."""

    stride: int
    grid: tuple[int, int]
    anchors: tuple[tuple[float, float], ...]
    keras_index: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "stride": self.stride,
            "grid": list(self.grid),
            "anchors": [list(a) for a in self.anchors],
        }


def grid_heads(shapes, input_hw, anchors) -> tuple[Head, ...]:
    """The heads of outputs ``shapes`` ((1, H, W, C) each, the model's order) on an input of
    ``input_hw``, smallest stride first, each with its share of ``anchors`` (small first, as
    darknet's masks give the smallest stride the first A)."""
    h = int(input_hw[0])
    order = sorted(range(len(shapes)), key=lambda k: h // int(shapes[k][1]))
    per = len(anchors) // len(shapes)
    return tuple(
        Head(h // int(shapes[k][1]), (int(shapes[k][1]), int(shapes[k][2])),
             tuple(tuple(map(float, a)) for a in anchors[i * per : (i + 1) * per]), k)
        for i, k in enumerate(order)
    )  # fmt: skip


def match_outputs(heads, details) -> list[int]:
    """For each head, the position of its .tflite output among ``details`` (interpreter output
    details or :class:`edgekit.tflite` tensors with ``shape``), matched by grid size."""
    by_grid: dict[tuple[int, int], int] = {}
    for pos, d in enumerate(details):
        shape = tuple(int(x) for x in (d["shape"] if isinstance(d, dict) else d.shape))
        if len(shape) == 4:
            by_grid.setdefault((shape[1], shape[2]), pos)
    missing = [h for h in heads if h.grid not in by_grid]
    if missing or len(details) != len(heads):
        raise EdgekitError(
            f"the int8 model's outputs {[list(d['shape']) for d in details]} are not the "
            f"{len(heads)} heads' grids {[list(h.grid) for h in heads]}",
            "report this: the converter changed the model's outputs",
        )
    return [by_grid[h.grid] for h in heads]


def quant_report(head: Head, name: str, position: int, shape, dtype: str, scale: float,
                 zero_point: int) -> dict[str, Any]:  # fmt: skip
    """What one int8 output's (scale, zero point) means for the boxes decoded from it: the
    logit range it can hold, the largest centre step in input pixels and the size step."""
    info = np.iinfo(np.dtype(dtype)) if dtype in ("int8", "uint8") else None
    out: dict[str, Any] = {
        "stride": head.stride,
        "output": name,
        "output_position": position,
        "shape": [int(x) for x in shape],
        "scale": float(scale),
        "zero_point": int(zero_point),
    }
    if info is not None and scale > 0:
        out.update(
            logit_range=[(info.min - zero_point) * scale, (info.max - zero_point) * scale],
            xy_step_px=scale / 4 * head.stride,  # sigmoid' <= 1/4
            wh_step=math.expm1(scale),  # relative change of w, h per step
        )
    return out


def decoder(input_hw, heads, num_classes: int, params: dict | None = None):
    """The device's ``yolov3`` decoder bound to float outputs 0..len(heads)-1 (head order)."""
    from edgekit.detect.decoders import HeadIO, OutputTensor, get_decoder

    c = len(heads[0].anchors) * (5 + num_classes)
    outs = tuple(OutputTensor(i, f"s{h.stride}", (1, *h.grid, c), "float32")
                 for i, h in enumerate(heads))  # fmt: skip
    p = {"anchors": [list(a) for h in heads for a in h.anchors], **(params or {})}
    return get_decoder("yolov3")(HeadIO(tuple(input_hw), outs), p)


def verify(data: bytes, task, loaded, prep, imgs, labels, progress=None) -> dict[str, Any]:
    """Float (Keras, one array per output) vs int8 (.tflite, every output dequantized) on the
    held-out images, both decoded by the ``yolov3`` decoder over all heads; the mAP record of
    :func:`edgekit.host.convert_detect.compare_detections` plus per-head errors and
    quantization (``heads``)."""
    from edgekit.host.convert_detect import compare_detections
    from edgekit.host.verify import run_int8_outputs

    heads = task.heads
    n = len(imgs.verify)
    if n == 0:
        return {"task": "detect", "images": 0, "map50_int8": None, "skipped": "no held-out images"}
    x = prep.to_float(imgs.verify)
    ref_all = loaded.batched(x)
    ref = [np.asarray(ref_all[h.keras_index], np.float32) for h in heads]
    got_all, details = run_int8_outputs(data, x, progress)
    where = match_outputs(heads, details)
    got = [got_all[p] for p in where]
    dec = decoder(task.input_hw, heads, task.num_classes)
    result = compare_detections(
        [{i: r[j : j + 1] for i, r in enumerate(ref)} for j in range(n)],
        [{i: g[j : j + 1] for i, g in enumerate(got)} for j in range(n)],
        imgs, dec, task.score_threshold, task.iou, labels,
    )  # fmt: skip
    reports = []
    for h, p, r, g in zip(heads, where, ref, got):
        d = details[p]
        scale, zp = d["quantization"]
        rep = quant_report(h, d["name"], p, d["shape"], np.dtype(d["dtype"]).name, scale, zp)
        err = np.abs(r - g)
        rep.update(mean_abs_error=float(err.mean()), max_abs_error=float(err.max()))
        reports.append(rep)
    err = [np.abs(r - g) for r, g in zip(ref, got)]
    result.update(
        mean_abs_error=float(sum(e.sum() for e in err) / sum(e.size for e in err)),
        max_abs_error=float(max(e.max() for e in err)),
        heads=reports,
    )
    return result
