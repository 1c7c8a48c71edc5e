"""`edgekit bench` and `edgekit inspect` on detectors: decode + NMS timed beside invoke, the head
described."""

from __future__ import annotations

import json

from click.testing import CliRunner
from PIL import Image

from edgekit.cli import main
from tests.conftest import CORAL
from tests.detect.conftest import edit_manifest, scene, shared

V1 = CORAL / "mobilenet_v1_0.25_128_quant.tflite"


def _run(*args):
    return CliRunner().invoke(main, [*map(str, args)])


def test_bench_times_decode_and_nms_on_a_real_image(detect_bundle, tmp_path):
    img = tmp_path / "two.png"
    Image.fromarray(scene(64, 48, [("red", 32, 8, 48, 24), ("blue", 0, 24, 16, 40)])).save(img)
    r = _run("bench", detect_bundle, "-d", "cpu", "-n", 8, "--warmup", 1, "--image", img, "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["task"] == "detect" and d["runs"] == 8
    dec = d["decode"]
    assert dec["decoder"] == "edgekit-anchor-free" and dec["input"] == "image"
    assert dec["detections"] == 2 and dec["runs"] == 8  # the image's two squares
    assert 0 < dec["p50_ms"] <= dec["max_ms"]
    text = _run("bench", detect_bundle, "-d", "cpu", "-n", 3, "--warmup", 0)
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert [ln.split()[0] for ln in lines] == ["model", "device", "first", "steady", "decode"]
    assert "decode + NMS" in lines[-1] and "on the random input" in lines[-1]


def test_bench_of_a_classifier_has_no_decode(tmp_path):
    r = _run("bench", V1, "-d", "cpu", "-n", 3, "--warmup", 0, "--json")
    d = json.loads(r.stdout)
    assert d["task"] == "classify" and "decode" not in d
    img = tmp_path / "x.png"
    Image.fromarray(scene(20, 20, [("red", 0, 0, 10, 10)])).save(img)
    r = _run("bench", V1, "-d", "cpu", "-n", 3, "--warmup", 0, "--image", img, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["task"] == "classify"
    bad = _run("bench", V1, "-d", "cpu", "-n", 3, "--image", tmp_path / "missing.png")
    assert bad.exit_code == 1 and "no such image file" in bad.output


def test_inspect_describes_the_detection_head(detect_bundle, tmp_path):
    r = _run("inspect", detect_bundle, "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["task"] == "detect"
    assert d["detection"] == {"decoder": "edgekit-anchor-free", "state_inputs": 0, "classes": 3,
                              "candidates": 16}  # fmt: skip
    text = _run("inspect", detect_bundle).stdout
    assert "Task     detect: edgekit-anchor-free head, 3 classes, 16 candidates" in text

    def bad_strides(m):
        m["detection"]["params"]["strides"] = [16, 32]

    broken = edit_manifest(detect_bundle, tmp_path / "broken", bad_strides)
    r = _run("inspect", broken)
    assert r.exit_code == 0 and "Task     detect (edgekit-anchor-free decoder:" in r.stdout
    assert "does not fit strides [16, 32]" in r.stdout


def test_inspect_classifier_and_real_detectors():
    assert "Task     classify" in _run("inspect", V1).stdout
    v8 = _run("inspect", shared("yolo", "yolov8n-640-maxwell", "model_edgetpu.tflite"))
    assert "Task     detect: yolov8 head, 80 classes, 8,400 candidates, boxes normalized" in (
        v8.stdout
    )
    ssd = _run("inspect", shared("coral", "automl-traffic", "traffic_model.tflite"), "--json")
    assert json.loads(ssd.stdout)["detection"] == {"decoder": "ssd-postprocess",
                                                   "state_inputs": 2}  # fmt: skip
