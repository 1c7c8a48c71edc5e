"""Decoders on synthetic raw heads: quantized v8/v5 layouts (one tensor or split per stride,
normalized or pixel boxes), SSD output roles from the graph or names, and refusals of layouts
edgekit cannot decode."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.detect.decoders import (
    AnchorFree,
    HeadIO,
    OutputTensor,
    SsdPostprocess,
    YoloV5,
    YoloV8,
    check_params,
)
from edgekit.errors import EdgekitError

SIZE = (320, 320)


def _q(x: np.ndarray, scale: float, zp: int, dtype=np.int8) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zp, info.min, info.max).astype(dtype)


def _v8_head(n=2100, nc=80, seed=0, objects=()):
    """Float [1, 4+nc, n]: background noise below 0.1 plus objects (cand, cls, cx, cy, w, h, s)
    in normalized units."""
    rng = np.random.default_rng(seed)
    head = np.zeros((1, 4 + nc, n), np.float32)
    head[0, :4] = rng.uniform(0.05, 0.5, (4, n))
    head[0, 4:] = rng.uniform(0, 0.1, (nc, n))
    for cand, cls, cx, cy, w, h, s in objects:
        head[0, :4, cand] = (cx, cy, w, h)
        head[0, 4 + cls, cand] = s
    return head


OBJECTS = [(10, 3, 0.5, 0.5, 0.2, 0.3, 0.9), (11, 3, 0.51, 0.5, 0.2, 0.3, 0.8),  # duplicate
           (12, 7, 0.5, 0.5, 0.2, 0.3, 0.7),  # same place, other class: kept
           (1500, 0, 0.1, 0.2, 0.1, 0.1, 0.6)]  # fmt: skip


def test_yolov8_quantized_head_decodes_with_nms():
    scale, zp = 1.0 / 255, -128
    raw = _q(_v8_head(objects=OBJECTS), scale, zp)
    dec = YoloV8(HeadIO(SIZE, (OutputTensor(5, "out", raw.shape, "int8", scale, zp),)))
    assert dec.box_units == "normalized" and dec.num_classes == 80
    boxes, scores, classes = dec.decode({5: raw}, 0.25, 0.45, 100)
    assert classes.tolist() == [3, 7, 0]
    np.testing.assert_allclose(scores, [0.9, 0.7, 0.6], atol=scale)
    np.testing.assert_allclose(boxes[0], [128, 112, 192, 208], atol=1.0)  # 0.5*320 -/+ w/2
    assert dec.decode({5: raw}, 0.25, 0.45, 1)[2].tolist() == [3]


def test_yolov8_split_per_stride_equals_one_tensor():
    scale, zp = 1.0 / 255, -128
    raw = _q(_v8_head(objects=OBJECTS), scale, zp)
    parts = np.split(raw, [1600, 2000], axis=2)  # 40x40, 20x20, 10x10 at 320
    outs = tuple(OutputTensor(i, f"o{i}", p.shape, "int8", scale, zp) for i, p in enumerate(parts))
    split = YoloV8(HeadIO(SIZE, outs)).decode(dict(enumerate(parts)), 0.25, 0.45, 100)
    whole = YoloV8(HeadIO(SIZE, (OutputTensor(9, "o", raw.shape, "int8", scale, zp),)))
    for a, b in zip(split, whole.decode({9: raw}, 0.25, 0.45, 100)):
        np.testing.assert_array_equal(a, b)


def test_pixel_boxes_are_detected_from_the_tensor_range():
    head = _v8_head(objects=OBJECTS)
    head[0, :4] *= 320  # boxes in input pixels: needs a wider quantization range
    scale, zp = 320.0 / 255, -128
    raw = _q(head, scale, zp)
    dec = YoloV8(HeadIO(SIZE, (OutputTensor(0, "o", raw.shape, "int8", scale, zp),)))
    assert dec.box_units == "auto"
    boxes, _, classes = dec.decode({0: raw}, 0.25, 0.45, 100)
    # the class scores lost precision in that range, but the boxes are pixels, not * 320 again
    assert boxes.max() <= 320 and 3 in classes.tolist()
    # a float head: decided from the values
    dec = YoloV8(HeadIO(SIZE, (OutputTensor(0, "o", head.shape, "float32"),)))
    boxes, _, classes = dec.decode({0: head}, 0.25, 0.45, 100)
    np.testing.assert_allclose(boxes[0], [128, 112, 192, 208], atol=1e-3)


def test_yolov5_objectness_multiplies_the_class_score():
    n, nc = 300, 3
    head = np.zeros((1, n, 5 + nc), np.float32)
    head[0, :, :4] = 0.2
    head[0, 7, :5] = (0.5, 0.5, 0.25, 0.25, 0.9)
    head[0, 7, 5 + 2] = 0.5  # 0.45 overall
    head[0, 8, :5] = (0.2, 0.2, 0.1, 0.1, 0.2)
    head[0, 8, 5] = 1.0  # 0.2 overall: below 0.25
    scale, zp = 1.0 / 255, 0
    raw = _q(head, scale, zp, np.uint8)
    dec = YoloV5(HeadIO(SIZE, (OutputTensor(0, "o", raw.shape, "uint8", scale, zp),)))
    boxes, scores, classes = dec.decode({0: raw}, 0.25, 0.45, 100)
    assert classes.tolist() == [2] and abs(scores[0] - 0.45) < 2 * scale
    np.testing.assert_allclose(boxes[0], [120, 120, 200, 200], atol=1.0)


@pytest.mark.parametrize(
    "cls, shapes, match",
    [
        (YoloV8, [(1, 2100)], "expected \\[1, 4\\+nc, N\\]"),
        (YoloV8, [(1, 84, 400), (1, 85, 100)], "not one \\[1, 4\\+nc, N\\] head"),
        (YoloV8, [(1, 4, 2100)], "not one"),
        (YoloV8, [], "no outputs"),
        (YoloV5, [(2, 100, 85)], "expected \\[1, N, 5\\+nc\\]"),
        (YoloV5, [(1, 100, 5)], "not one"),
        (AnchorFree, [(1, 2001, 84)], "does not fit strides"),
        (AnchorFree, [(1, 1600, 84), (1, 400, 84)], "expected one"),
        (SsdPostprocess, [(1, 10, 4), (1, 10), (1, 10), (1,)], "no TFLite_Detection"),
    ],
)
def test_layouts_edgekit_cannot_decode_are_refused_in_one_line(cls, shapes, match):
    outs = tuple(OutputTensor(i, f"out{i}", s, "int8", 0.1, 0) for i, s in enumerate(shapes))
    with pytest.raises(EdgekitError, match=match) as e:
        cls(HeadIO(SIZE, outs))
    assert "\n" not in str(e.value) and "--decoder" in str(e.value)


def test_anchor_free_needs_strides_that_fit_the_input():
    with pytest.raises(EdgekitError, match="not a multiple"):
        AnchorFree(HeadIO((100, 100), (OutputTensor(0, "o", (1, 10, 6), "int8", 0.1, 0),)),
                   {"strides": [8, 16]})  # fmt: skip


def _ssd_outputs(order, names):
    shapes = {"boxes": (1, 10, 4), "classes": (1, 10), "scores": (1, 10), "count": (1,)}
    return tuple(OutputTensor(100 + i, n, shapes[r], "float32") for i, (r, n) in
                 enumerate(zip(order, names)))  # fmt: skip


def _ssd_raw(outs, order):
    vals = {
        "boxes": np.array([[[0.1, 0.2, 0.5, 0.6]] * 10], np.float32),
        "classes": np.arange(10, dtype=np.float32)[None],
        "scores": np.linspace(0.9, 0.0, 10, dtype=np.float32)[None],
        "count": np.array([3], np.float32),
    }
    return {o.index: vals[r] for o, r in zip(outs, order)}


def test_ssd_roles_come_from_the_graph_not_the_output_order():
    tf2 = ("scores", "boxes", "count", "classes")  # a TF2 export's output order
    outs = _ssd_outputs(tf2, [f"StatefulPartitionedCall:{i}" for i in range(4)])
    by_role = {r: o.index for o, r in zip(outs, tf2)}
    post = tuple(by_role[r] for r in ("boxes", "classes", "scores", "count"))  # the op's order
    dec = SsdPostprocess(HeadIO(SIZE, outs, post))
    boxes, scores, classes = dec.decode(_ssd_raw(outs, tf2), 0.75, 0.5, 100)
    assert classes.tolist() == [0, 1] and scores[0] == pytest.approx(0.9)  # >= 0.75
    np.testing.assert_allclose(boxes[0], [0.2 * 320, 0.1 * 320, 0.6 * 320, 0.5 * 320])
    # the same names without the graph say nothing: refused, not guessed by position
    with pytest.raises(EdgekitError, match="names do not say"):
        SsdPostprocess(HeadIO(SIZE, outs))


def test_ssd_roles_from_tf1_names_in_any_order():
    order = ("count", "scores", "boxes", "classes")
    op = "TFLite_Detection_PostProcess"
    names = {"boxes": op, "classes": f"{op}:1", "scores": f"{op}:2", "count": f"{op}:3"}
    outs = _ssd_outputs(order, [names[r] for r in order])
    _, scores, classes = SsdPostprocess(HeadIO(SIZE, outs)).decode(
        _ssd_raw(outs, order), 0.0, 0.5, 2
    )
    assert classes.tolist() == [0, 1] and len(scores) == 2


def test_ssd_with_a_hostile_count_or_nan_scores():
    order = ("boxes", "classes", "scores", "count")
    outs = _ssd_outputs(order, ["detection_boxes", "detection_classes", "detection_scores",
                                "num_detections"])  # fmt: skip
    dec = SsdPostprocess(HeadIO(SIZE, outs))
    raw = _ssd_raw(outs, order)
    raw[103] = np.array([1e9], np.float32)
    raw[102][0, 1] = np.nan
    _, scores, classes = dec.decode(raw, 0.0, 0.5, 100)
    assert len(scores) == 9 and 1 not in classes.tolist()
    raw[103] = np.array([np.nan], np.float32)
    assert len(dec.decode(raw, 0.0, 0.5, 100)[1]) == 0


@pytest.mark.parametrize(
    "params, match",
    [
        ({"score_threshold": float("nan")}, "score_threshold"),
        ({"iou": -0.1}, "iou"),
        ({"max_detections": 10**12}, "max_detections"),
        ({"max_detections": 2.5}, "max_detections"),
        ({"letterbox": "yes"}, "letterbox"),
        ({"fill": 256}, "fill"),
        ({"strides": [16, 8]}, "ascending"),
        ({"strides": [8, float("inf")]}, "ascending"),
        ({"anchors": [1, 2]}, "unknown edgekit-anchor-free detection param"),
    ],
)
def test_params_are_checked_by_name_and_range(params, match):
    with pytest.raises(EdgekitError, match=match) as e:
        check_params("edgekit-anchor-free", params, AnchorFree.PARAMS)
    assert "\n" not in str(e.value)


def test_a_transposed_head_is_read_along_its_channel_axis():
    scale, zp = 1.0 / 255, -128
    raw = _q(_v8_head(objects=OBJECTS), scale, zp)
    flat = YoloV8(HeadIO(SIZE, (OutputTensor(0, "o", raw.shape, "int8", scale, zp),)))
    t = np.ascontiguousarray(raw.transpose(0, 2, 1))  # [1, 2100, 84]: channels last
    tr = YoloV8(HeadIO(SIZE, (OutputTensor(0, "o", t.shape, "int8", scale, zp),)))
    assert tr.num_classes == 80 and not tr.channels_first
    for a, b in zip(flat.decode({0: raw}, 0.25, 0.45, 100), tr.decode({0: t}, 0.25, 0.45, 100)):
        np.testing.assert_array_equal(a, b)
    # split per stride: the axis the outputs share is the channel axis, whatever the sizes
    parts = [np.ascontiguousarray(p) for p in np.split(raw, [2000, 2060], axis=2)]  # 40 < 84
    outs = tuple(OutputTensor(i, "o", p.shape, "int8", scale, zp) for i, p in enumerate(parts))
    split = YoloV8(HeadIO(SIZE, outs))
    assert split.channels_first and split.num_classes == 80


def test_anchor_free_strides_are_inferred_when_the_bundle_gives_none():
    out = OutputTensor(0, "o", (1, 2100, 84), "int8", 1 / 255, -128)
    assert AnchorFree(HeadIO(SIZE, (out,))).centres.shape == (2100, 2)  # 8, 16, 32 on 320
    out = OutputTensor(0, "o", (1, 2001, 84), "int8", 1 / 255, -128)
    with pytest.raises(EdgekitError, match="does not fit strides \\[8, 16\\]"):
        AnchorFree(HeadIO(SIZE, (out,)))
