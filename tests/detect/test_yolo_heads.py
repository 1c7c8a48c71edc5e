"""Detectors with several output heads, end to end: a small two-output YOLOv3-style Keras model
(tests/detect/yolo_heads_model.py: grid heads at strides 32 and 16, as the Coral ports of
YOLOv3-Tiny have them) converted by ``edgekit convert`` (real PTQ, the stand-in compiler), the
bundle run by ``detect --json`` and ``bench``; the same model with its outputs in the other
order, saved by Keras 2 (tf_keras) or exported as a SavedModel, gives the same bundle heads and
the same detections; anchors that do not fit the heads and outputs that are not grid heads are
refused in one line. TensorFlow runs in subprocesses (the test process stays light)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw

from edgekit.cli import main
from edgekit.detect.yolov3 import TINY_ANCHORS
from edgekit.tflite import read_model
from tests.convert.conftest import FAKE_COMPILER

HERE = Path(__file__).resolve().parent
SIZE, NC = 96, 2
EXE = [sys.executable, "-c", "from edgekit.cli import main; main()"]


def _cli(*args, timeout=600):
    return subprocess.run(EXE + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def _scenes(folder: Path, n: int) -> None:
    """Photos-like scenes: a gradient with a few coloured boxes and ellipses, various sizes."""
    rng = np.random.default_rng(3)
    folder.mkdir()
    for i in range(n):
        w, h = int(rng.integers(80, 200)), int(rng.integers(80, 200))
        base = np.linspace(0, 255, w, dtype=np.float32)[None, :, None] * rng.random(3)
        img = Image.fromarray(np.broadcast_to(base, (h, w, 3)).astype(np.uint8))
        d = ImageDraw.Draw(img)
        for _ in range(3):
            x0, y0 = int(rng.integers(0, w - 20)), int(rng.integers(0, h - 20))
            box = (x0, y0, x0 + int(rng.integers(10, 60)), y0 + int(rng.integers(10, 60)))
            fill = tuple(int(v) for v in rng.integers(0, 255, 3))
            (d.rectangle if rng.random() < 0.5 else d.ellipse)(box, fill=fill)
        img.save(folder / f"scene_{i:02d}.png")


@pytest.fixture(scope="session")
def heads_bundles(tmp_path_factory):
    """The two-output model (outputs stride 32 first) and its reversed twin, converted from the
    same 12 calibration scenes with the stand-in compiler: {"model", "reversed", "calib"}."""
    d = tmp_path_factory.mktemp("yolo_heads")
    calib = d / "calib"
    _scenes(calib, 20)
    proc = subprocess.run([sys.executable, str(HERE / "yolo_heads_model.py"), str(d), str(SIZE),
                           str(NC)], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = {"calib": calib, "dir": d}
    for key, name in (("model", "heads"), ("reversed", "heads_reversed")):
        bundle = d / f"b_{name}"
        r = _cli("convert", d / f"{name}.h5", "--calib", calib, "-o", bundle, "--num-calib", 12,
                 "--score-threshold", 0.3, "--compiler", FAKE_COMPILER, "--json")  # fmt: skip
        assert r.returncode == 0, r.stderr[-3000:]
        out[key] = bundle
    return out


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / "edgekit.json").read_text())


def test_two_output_model_converts_with_one_scale_per_head(heads_bundles):
    m = _manifest(heads_bundles["model"])
    assert m["task"] == "detect" and m["compile"]["status"] == "compiled"
    assert (heads_bundles["model"] / m["models"]["edgetpu"]).is_file()
    det = m["detection"]
    assert det["decoder"] == "yolov3" and det["params"]["strides"] == [16, 32]
    tiny = [list(map(float, a)) for a in TINY_ANCHORS]
    assert det["params"]["heads"] == [
        {"stride": 16, "grid": [6, 6], "anchors": tiny[:3]},
        {"stride": 32, "grid": [3, 3], "anchors": tiny[3:]},
    ]
    # the .tflite has both outputs, each quantized on its own; the verification names which
    # output is which head by shape and reports the decode precision each scale gives
    outs = read_model(heads_bundles["model"] / m["models"]["cpu"]).outputs
    assert len(outs) == 2
    v = m["verification"]
    for h in v["heads"]:
        t = outs[h["output_position"]]
        grid = SIZE // h["stride"]
        assert list(t.shape) == [1, grid, grid, 3 * (5 + NC)] == h["shape"]
        assert h["scale"] == pytest.approx(t.quantization.scale[0])
        assert h["xy_step_px"] == pytest.approx(h["scale"] / 4 * h["stride"])
        assert h["wh_step"] == pytest.approx(np.expm1(h["scale"]))
        lo, hi = h["logit_range"]
        assert lo < 0 < hi and h["mean_abs_error"] < h["scale"] * 2
    assert v["heads"][0]["scale"] != v["heads"][1]["scale"]
    # float vs int8 detections over both heads (random weights: some boxes at the 0.3 score)
    assert v["images"] > 0 and v["float_detections"] > 0
    assert v["map50_int8_vs_float"] >= 0.6, v
    rep = m["compile"]["int8_ops"]
    assert rep.get("CONCATENATION", 0) == 1  # the route, not a head concatenation


def _detect(bundle, images, *extra):
    r = CliRunner().invoke(main, ["detect", str(bundle), *map(str, images), "--json",
                                  "--device", "cpu", "--threshold", "0.3", *extra])  # fmt: skip
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    return got if isinstance(got, list) else [got]


def test_detect_json_runs_the_two_head_bundle(heads_bundles):
    calib = heads_bundles["calib"]
    images = sorted(calib.iterdir())[12:]
    found = 0
    results = _detect(heads_bundles["model"], images)
    assert len(results) == len(images)
    for res, path in zip(results, images):
        w, h = Image.open(path).size
        for d in res["detections"]:
            found += 1
            assert 0 <= d["score"] <= 1 and d["id"] in range(NC)
            x0, y0, x1, y1 = np.array(d["box"]) / [w, h, w, h]
            assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1  # never a box of zero area
    assert found > 0
    # the bare int8 .tflite (no bundle): guessed as two grid heads, darknet's tiny anchors
    cpu = heads_bundles["model"] / _manifest(heads_bundles["model"])["models"]["cpu"]
    bare = _detect(cpu, images)
    assert [len(r["detections"]) for r in bare] == [len(r["detections"]) for r in results]
    r = CliRunner().invoke(main, ["bench", str(heads_bundles["model"]), "--device", "cpu",
                                  "--json", "-n", "3", "--warmup", "1"])  # fmt: skip
    assert r.exit_code == 0, r.output
    b = json.loads(r.stdout)
    assert b["task"] == "detect" and b["decode"]["decoder"] == "yolov3"


def test_outputs_in_either_order_make_the_same_bundle(heads_bundles):
    """Keras order (stride 32, 16) and its reverse: the .tflite outputs come in the converter's
    order, so the stride-16 head sits at another position, and the heads are still matched by
    grid: same manifest heads, same scales per stride, same detections."""
    a, b = _manifest(heads_bundles["model"]), _manifest(heads_bundles["reversed"])
    assert a["detection"] == b["detection"]
    pa = {h["stride"]: h["output_position"] for h in a["verification"]["heads"]}
    pb = {h["stride"]: h["output_position"] for h in b["verification"]["heads"]}
    assert pa != pb and sorted(pa.values()) == sorted(pb.values()) == [0, 1]
    sa = {h["stride"]: h["scale"] for h in a["verification"]["heads"]}
    sb = {h["stride"]: h["scale"] for h in b["verification"]["heads"]}
    assert sa == pytest.approx(sb)
    images = sorted(heads_bundles["calib"].iterdir())[12:16]
    da = _detect(heads_bundles["model"], images)
    db = _detect(heads_bundles["reversed"], images)
    assert [r["detections"] for r in da] == [r["detections"] for r in db]


def test_anchors_that_do_not_fit_the_heads_are_refused_in_one_line(heads_bundles, tmp_path):
    nine = tmp_path / "yolov3.txt"
    nine.write_text("10,13, 16,30, 33,23, 30,61, 62,45, 59,119, 116,90, 156,198, 373,326\n")
    image = sorted(heads_bundles["calib"].iterdir())[0]
    r = _cli("detect", heads_bundles["model"], image, "--anchors", nine, "--device", "cpu")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and "9 anchors" in errors[0] and "2 heads" in errors[0], r.stderr
    # convert: 4 anchors = 2 per head do not divide 3 * (5 + 2) = 21 channels
    four = tmp_path / "four.txt"
    four.write_text("10,14, 23,27, 81,82, 135,169\n")
    out = tmp_path / "never"
    r = _cli("convert", heads_bundles["dir"] / "heads.h5", "--calib", heads_bundles["calib"],
             "-o", out, "--anchors", four, "--no-compile", "--num-calib", 4)  # fmt: skip
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("Error:")]
    assert r.returncode == 1 and len(errors) == 1, r.stderr
    assert "4 anchors do not fit 2 heads of 21 channels" in errors[0]
    assert not out.exists() and "Traceback" not in r.stderr


def test_the_right_anchors_file_is_recorded_per_head(heads_bundles, tmp_path):
    """--anchors at convert time: A per head, small first, each head its share."""
    f = tmp_path / "mine.txt"
    f.write_text("# mine\n5,6, 7,8, 9,10,\n40,41, 50,51, 60,61\n")
    out = tmp_path / "bundle"
    r = _cli("convert", heads_bundles["dir"] / "heads_reversed.h5", "--calib",
             heads_bundles["calib"], "-o", out, "--anchors", f, "--no-compile", "--num-calib", 4,
             "--num-verify", 2)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    # the text summary says what each head's int8 scale does to a box
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("  head ")]
    assert len(lines) == 2 and "stride 16: output Identity" in lines[0], r.stdout
    assert "box centre step <=" in lines[1] and "size step" in lines[1]
    heads = _manifest(out)["detection"]["params"]["heads"]
    assert [h["anchors"] for h in heads] == [[[5, 6], [7, 8], [9, 10]],
                                             [[40, 41], [50, 51], [60, 61]]]  # fmt: skip


def test_several_outputs_that_are_not_grid_heads_are_refused_in_one_line(heads_bundles, tmp_path):
    out = tmp_path / "never"
    r = _cli("convert", heads_bundles["dir"] / "two_outputs.h5", "--calib",
             heads_bundles["calib"], "-o", out, "--no-compile", "--num-calib", 4)  # fmt: skip
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("Error:")]
    assert r.returncode == 1 and len(errors) == 1, r.stderr
    assert "model has 2 outputs ((1, 2), (1, 4))" in errors[0] and "grid heads" in errors[0]
    assert not out.exists() and "Traceback" not in r.stderr


@pytest.mark.parametrize("name, loader, fmt", [("heads_keras2.h5", "tf_keras", "keras2-h5"),
                                               ("heads_savedmodel", "savedmodel", "savedmodel")])
def test_a_keras2_port_or_a_savedmodel_converts_the_same(heads_bundles, tmp_path, name, loader,
                                                         fmt):  # fmt: skip
    """The Coral ports' Keras models are Keras 2 files, TF2 users export SavedModels: the same
    weights load through the legacy loader or the signature (two named outputs) and give the
    same heads, scales and detections."""
    src = heads_bundles["dir"] / name
    if not src.exists():
        pytest.skip("tf_keras is not installed")
    out = tmp_path / "other"
    r = _cli("convert", src, "--calib", heads_bundles["calib"], "-o", out, "--num-calib", 12,
             "--score-threshold", 0.3, "--no-compile")  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    a, b = _manifest(heads_bundles["model"]), _manifest(out)
    assert b["source"]["loader"] == loader and b["source"]["model_format"] == fmt
    assert a["detection"] == b["detection"]
    sa = {h["stride"]: h["scale"] for h in a["verification"]["heads"]}
    sb = {h["stride"]: h["scale"] for h in b["verification"]["heads"]}
    assert sa == pytest.approx(sb, rel=1e-5)
    images = sorted(heads_bundles["calib"].iterdir())[12:15]
    assert [r["detections"] for r in _detect(out, images)] == [
        r["detections"] for r in _detect(heads_bundles["model"], images)]  # fmt: skip
