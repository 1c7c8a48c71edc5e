"""Letterbox and its exact inverse, the result records, the manifest's detection fields, NMS."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest

from edgekit.detect import Detection, Detections, batched_nms, nms
from edgekit.errors import EdgekitError
from edgekit.images import letterbox, stretch_box
from edgekit.manifest import load_bundle
from tests.detect.conftest import reference_nms


@pytest.mark.parametrize("src", [(64, 48), (48, 64), (640, 480), (1352, 900), (31, 7), (32, 32)])
def test_letterbox_places_the_image_and_inverts_exactly(src):
    w, h = src
    rng = np.random.default_rng(w * h)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    out, box = letterbox(img, (32, 40), fill=114)
    assert out.shape == (32, 40, 3) and out.dtype == np.uint8
    (nw, nh), (left, top) = box.new_size, box.pad
    assert nw == 40 or nh == 32  # fills one dimension
    assert abs(nw / w - nh / h) < 1.0 / min(w, h) + 0.05  # aspect kept (up to rounding)
    assert left == (40 - nw) // 2 and top == (32 - nh) // 2
    # the padding is the fill colour, nothing of the image leaks into it
    pad_mask = np.ones((32, 40), bool)
    pad_mask[top : top + nh, left : left + nw] = False
    assert (out[pad_mask] == 114).all()
    boxes = rng.uniform(0, 1, (50, 4)) * [w, h, w, h]
    back = box.to_original(box.to_input(boxes), clip=False)
    np.testing.assert_allclose(back, boxes, rtol=0, atol=1e-9)
    # corners of the original land on the corners of the placed image
    np.testing.assert_allclose(box.to_input([[0, 0, w, h]]), [[left, top, left + nw, top + nh]])


def test_letterbox_content_lands_where_the_inverse_says():
    img = np.zeros((48, 64, 3), np.uint8)
    img[8:24, 32:48] = (255, 0, 0)  # x 32..48, y 8..24
    out, box = letterbox(img, (32, 32))
    x0, y0, x1, y1 = box.to_input([[32, 8, 48, 24]])[0]
    assert (x0, y0, x1, y1) == (16, 8, 24, 16)  # scale 0.5, pad top 4
    assert (out[9:15, 17:23] == (255, 0, 0)).all()
    assert box.to_original([[16, 8, 24, 16]])[0].tolist() == [32, 8, 48, 24]
    # boxes that spill into the padding are clipped to the original image
    assert box.to_original([[-4, 0, 40, 40]])[0].tolist() == [0, 0, 64, 48]


def test_stretch_box_inverse():
    img = np.zeros((30, 90, 3), np.uint8)
    out, box = stretch_box(img, (32, 32))
    assert out.shape == (32, 32, 3) and box.pad == (0, 0)
    assert box.to_original([[0, 0, 32, 32]])[0].tolist() == [0, 0, 90, 30]


def test_letterbox_refuses_a_bad_fill():
    with pytest.raises(EdgekitError, match="fill"):
        letterbox(np.zeros((4, 4, 3), np.uint8), (8, 8), fill=300)


def test_records_are_small_immutable_and_picklable():
    d = Detection(3, "car", 0.5, (1.0, 2.0, 3.0, 4.0))
    ds = Detections((d, Detection(0, "person", 0.9, (0, 0, 1, 1)), d), 1.0, 2.0, 3.0, (640, 480))
    assert d.to_dict() == {"id": 3, "label": "car", "score": 0.5, "box": [1.0, 2.0, 3.0, 4.0]}
    assert ds.counts() == {"car": 2, "person": 1}
    assert json.loads(json.dumps(ds.to_dict()))["image_size"] == [640, 480]
    assert pickle.loads(pickle.dumps(ds)) == ds
    with pytest.raises(AttributeError):
        d.score = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("seed, n", [(0, 300), (1, 300), (2, 100), (3, 40), (4, 900)])
def test_batched_nms_matches_the_definition(seed, n):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 100, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 40, (n, 2))], axis=1)
    scores = np.round(rng.uniform(0, 1, n), 2)  # ties too
    classes = rng.integers(0, 4, n)
    got = batched_nms(boxes, scores, classes, 0.45, 1000).tolist()
    assert got == reference_nms(boxes, scores, classes, 0.45)
    assert batched_nms(boxes, scores, classes, 0.45, 7).tolist() == got[:7]


def test_nms_keeps_different_classes_and_drops_duplicates():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10.5], [0, 0, 10, 10]], float)
    scores = np.array([0.9, 0.8, 0.7])
    assert nms(boxes, scores, 0.5, 10).tolist() == [0]
    assert batched_nms(boxes, scores, np.array([0, 0, 1]), 0.5, 10).tolist() == [0, 2]
    assert batched_nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0), 0.5, 10).tolist() == []


def test_manifest_detection_fields_round_trip(detect_bundle):
    m = load_bundle(detect_bundle).manifest
    assert m.task == "detect"
    assert m.detection == {
        "decoder": "edgekit-anchor-free",
        "params": {"strides": [8], "score_threshold": 0.5},
    }
    d = m.to_dict()
    assert d["task"] == "detect" and d["detection"]["decoder"] == "edgekit-anchor-free"


def test_classification_manifest_defaults_to_classify(detect_bundle, tmp_path):
    from tests.detect.conftest import edit_manifest

    def drop(d):
        del d["task"], d["detection"]

    m = load_bundle(edit_manifest(detect_bundle, tmp_path / "b", drop)).manifest
    assert m.task == "classify" and m.detection is None and "detection" not in m.to_dict()


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda d: d.update(task="segment"), "unknown task 'segment'"),
        (lambda d: d.pop("detection"), 'needs "detection"'),
        (lambda d: d["detection"].update(decoder=7), 'needs "detection"'),
        (lambda d: d["detection"].update(extra=1), "unknown key"),
        (lambda d: d["detection"].update(params=[1]), "not an object"),
        (lambda d: d["detection"]["params"].update(iou=math.nan), "not a finite number"),
        (lambda d: d["detection"]["params"].update(strides=[8, math.inf]), "not a finite"),
    ],
)
def test_bad_detection_manifests_are_one_line(detect_bundle, tmp_path, edit, match):
    from tests.detect.conftest import edit_manifest

    b = edit_manifest(detect_bundle, tmp_path / "b", edit)
    with pytest.raises(EdgekitError, match=match) as e:
        load_bundle(b)
    assert "\n" not in str(e.value)
