"""NMS-free heads (``yolo-end2end``: YOLOv10, YOLO11/YOLO26 end2end exports, one [1, N, 6]
output of x0, y0, x1, y1, score, class id) and the central score guard: no decoder reports a
score outside 0..1. The real YOLOv10n export in ../shared finds the parrot as a bird (skipped
without ../shared)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from edgekit.cli import main
from edgekit.detect.decoders import HeadIO, OutputTensor, YoloEnd2End, YoloV5
from edgekit.errors import EdgekitError
from tests.detect.conftest import shared

SIZE = (192, 192)


def _rows(n=300):
    """Float (1, n, 6): two objects then padding rows with score 0."""
    head = np.zeros((1, n, 6), np.float32)
    head[0, :, :4] = (0.1, 0.1, 0.2, 0.2)
    head[0, :, 5] = np.arange(n) % 80
    head[0, 0] = (0.25, 0.0, 0.75, 0.5, 0.9, 14)
    head[0, 1] = (0.0, 0.5, 0.5, 1.0, 0.4, 3)
    return head


def _q(x, scale, zp):
    return np.clip(np.round(x / scale) + zp, -128, 127).astype(np.int8)


def test_float_head_decodes_rows_without_nms():
    head = _rows()
    dec = YoloEnd2End(HeadIO(SIZE, (OutputTensor(3, "o", head.shape, "float32"),)))
    assert dec.notes == ()
    boxes, scores, classes = dec.decode({3: head}, 0.25, 0.45, 100)
    assert classes.tolist() == [14, 3]
    np.testing.assert_allclose(scores, [0.9, 0.4])
    np.testing.assert_allclose(boxes[0], [48, 0, 144, 96])  # normalized * 192
    head[0, :, :4] *= 192  # pixel boxes: decided from the values
    np.testing.assert_allclose(dec.decode({3: head}, 0.25, 0.45, 100)[0][0], [48, 0, 144, 96])
    assert dec.decode({3: head}, 0.5, 0.45, 100)[2].tolist() == [14]


def test_one_int8_tensor_is_read_and_its_coarse_scale_is_said():
    scale, zp = 0.31, -128  # the real YOLOv10n 192 export's output quantization
    raw = _q(_rows(), scale, zp)
    dec = YoloEnd2End(HeadIO(SIZE, (OutputTensor(0, "o", raw.shape, "int8", scale, zp),)))
    assert len(dec.notes) == 1 and "31% of the image" in dec.notes[0]
    assert "float output" in dec.notes[0] and "separate outputs" in dec.notes[0]
    boxes, scores, classes = dec.decode({0: raw}, 0.25, 0.45, 100)
    assert classes.tolist() == [14, 3]  # 14 is stored as 13.95: rounded to the class id
    assert scores.max() <= 1.0 and scores[0] == pytest.approx(0.93)


@pytest.mark.parametrize(
    "row, match",
    [((0.1, 0.1, 0.2, 0.2, 3.0, 1), "scores up to 3"),
     ((0.1, 0.1, 0.2, 0.2, 0.9, 2.5), "not a class id"),
     ((0.1, 0.1, 0.2, 0.2, 0.9, -3), "not a class id"),
     ((0.5, 0.1, 0.2, 0.2, 0.9, 1), "x1 < x0")],
)  # fmt: skip
def test_impossible_values_are_refused_in_one_line(row, match):
    head = _rows()
    head[0, 0] = row
    dec = YoloEnd2End(HeadIO(SIZE, (OutputTensor(0, "o", head.shape, "float32"),)))
    with pytest.raises(EdgekitError, match=match) as e:
        dec.decode({0: head}, 0.25, 0.45, 100)
    assert "\n" not in str(e.value)


def test_no_decoder_reports_a_score_above_one():
    """The end-to-end rows read as a one-class v5 head: objectness x score = 0.9 * 14."""
    head = _rows()
    dec = YoloV5(HeadIO(SIZE, (OutputTensor(0, "o", head.shape, "float32"),)))
    with pytest.raises(EdgekitError, match=r"score of 12.6 is not 0\.\.1.*not a yolov5 head"):
        dec.decode({0: head}, 0.25, 0.45, 100)


def test_a_scale_that_merges_class_ids_is_refused():
    with pytest.raises(EdgekitError, match="class ids 1 apart"):
        YoloEnd2End(HeadIO(SIZE, (OutputTensor(0, "o", (1, 300, 6), "int8", 2.0, -128),)))


@pytest.mark.parametrize("variant", ["model.tflite", "model_edgetpu.tflite"])
def test_yolov10_export_finds_the_parrot_as_a_bird(variant):
    model = shared("yolo", "yolov10n-192-edward", variant)
    parrot = shared("coral", "parrot.jpg")
    res = CliRunner().invoke(main, ["detect", str(model), str(parrot), "--json"])
    assert res.exit_code == 0, res.output
    dets = json.loads(res.stdout)["detections"]
    assert dets and dets[0]["label"] == "bird" and 0 < dets[0]["score"] <= 1
    assert all(0 <= d["score"] <= 1 for d in dets)
    assert "31% of the image" in res.stderr  # said once
    assert res.stderr.count("carries boxes, scores and class ids") == 1
    x0, y0, x1, y1 = dets[0]["box"]
    assert 0 <= x0 < x1 <= 512 and 0 <= y0 < y1 <= 929  # the photo is 512 x 929


def test_yolov10_inspect_names_the_head_and_the_coarse_scale():
    model = shared("yolo", "yolov10n-192-edward", "model.tflite")
    res = CliRunner().invoke(main, ["inspect", str(model), "--json"])
    assert res.exit_code == 0, res.output
    det = json.loads(res.stdout)["detection"]
    assert det["decoder"] == "yolo-end2end" and "31% of the image" in det["notes"][0]
