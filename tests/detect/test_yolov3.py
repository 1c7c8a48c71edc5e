"""The ``yolov3`` decoder (darknet anchor heads, per-stride grids or the zoo's concatenated
rows), darknet anchor files, and the zoo's YOLOv3-Tiny end to end: built at 160 x 160 with 2
classes and random weights, converted (real PTQ, --no-compile), run by `edgekit detect` (with
the bundle's anchors and with --anchors FILE) and by serve. The full 416/80 parameter count is
checked without conversion (tests/zoo/test_counts.py checks the cached count against Keras)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edgekit import zoo
from edgekit.cli import main
from edgekit.detect.decoders import HeadIO, OutputTensor, YoloV3, guess_decoder
from edgekit.detect.yolov3 import TINY_ANCHORS, read_anchors
from edgekit.errors import EdgekitError

SIZE = (160, 160)
NC = 2


def _logit(p):
    return float(np.log(p / (1 - p)))


def _grids(objects=()):
    """Float grids for strides 32 (5x5) and 16 (10x10), 3 anchors x (5 + NC), background
    objectness 0.01; objects: (stride, row, col, anchor, tx, ty, tw, th, obj, cls, cls_p)."""
    out = {}
    for s in (32, 16):
        g = np.zeros((1, 160 // s, 160 // s, 3, 5 + NC), np.float32)
        g[..., 4] = _logit(0.01)
        g[..., 5:] = _logit(0.5)
        out[s] = g
    for s, r, c, a, tx, ty, tw, th, obj, cls, p in objects:
        g = out[s]
        g[0, r, c, a, :4] = (tx, ty, tw, th)
        g[0, r, c, a, 4] = _logit(obj)
        g[0, r, c, a, 5 + cls] = _logit(p)
    return {s: g.reshape(g.shape[:3] + (3 * (5 + NC),)) for s, g in out.items()}


OBJ = [
    (32, 2, 3, 1, 0.0, 0.0, 0.0, 0.0, 0.9, 1, 0.8),  # centre (3.5, 2.5) * 32, anchor 135x169
    (16, 4, 1, 0, 0.0, 0.0, np.log(2), 0.0, 0.7, 0, 0.9),
]  # (1.5, 4.5) * 16, 2 x 10 by 14


def _grid_decoder(grids, params=None):
    outs = tuple(OutputTensor(s, f"s{s}", g.shape, "float32") for s, g in grids.items())
    return YoloV3(HeadIO(SIZE, outs), params)


def test_grids_decode_sigmoid_xy_exp_wh_anchors_and_objectness_times_class():
    grids = _grids(OBJ)
    dec = _grid_decoder(grids)
    assert dec.num_classes == NC and dec.per_level == 3
    boxes, scores, classes = dec.decode(grids, 0.25, 0.45, 100)
    assert classes.tolist() == [1, 0]
    np.testing.assert_allclose(scores, [0.9 * 0.8, 0.7 * 0.9], rtol=1e-5)
    cx, cy, w, h = 3.5 * 32, 2.5 * 32, 135, 169  # stride 32 takes anchors 3..5 (mask 3,4,5)
    np.testing.assert_allclose(boxes[0], [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    cx, cy, w, h = 1.5 * 16, 4.5 * 16, 20, 14  # stride 16 takes anchors 0..2
    np.testing.assert_allclose(boxes[1], [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    # other anchors from the params
    mine = [[1, 1]] * 3 + [[10, 20], [30, 40], [50, 60]]
    b = _grid_decoder(grids, {"anchors": mine}).decode(grids, 0.25, 0.45, 100)[0]
    np.testing.assert_allclose(b[0, 2:] - b[0, :2], [30, 40])


def test_rows_layout_equals_the_grids_and_int8_stays_close():
    grids = _grids(OBJ)
    rows = np.concatenate([grids[16].reshape(1, 100, -1), grids[32].reshape(1, 25, -1)], axis=1)
    out = OutputTensor(0, "yolo", rows.shape, "float32")
    dec = YoloV3(HeadIO(SIZE, (out,)), {"strides": [16, 32]})
    for a, b in zip(
        dec.decode({0: rows}, 0.25, 0.45, 100), _grid_decoder(grids).decode(grids, 0.25, 0.45, 100)
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    scale, zp = 0.05, 0
    q = np.clip(np.round(rows / scale) + zp, -128, 127).astype(np.int8)
    qdec = YoloV3(HeadIO(SIZE, (OutputTensor(0, "yolo", q.shape, "int8", scale, zp),)))
    boxes, scores, classes = qdec.decode({0: q}, 0.25, 0.45, 100)
    assert classes.tolist() == [1, 0] and np.abs(scores - [0.72, 0.63]).max() < 0.02


@pytest.mark.parametrize(
    "shapes, params, match",
    [([(1, 5, 5, 21), (1, 10, 10, 21)], {"anchors": [[1, 2]] * 5}, "5 anchors for 2 grids"),
     ([(1, 5, 5, 20), (1, 10, 10, 20)], None, "do not hold 3 anchors"),
     # --anchors with 4 pairs for 2 grids only said the outputs "do not hold 2 anchors"
     ([(1, 5, 5, 21), (1, 10, 10, 21)], {"anchors": [[1, 2]] * 4},
      r"4 anchors for 2 grids: outputs .* do not hold 2 anchors x \(5 \+ classes\) "
      r"\(darknet's: 3 per grid\)"),
     ([(1, 7, 7, 21)], None, "not a grid of the 160x160"),
     ([(1, 120, 21)], {"strides": [16, 32]}, "does not hold the rows")],
)  # fmt: skip
def test_layouts_it_cannot_decode_are_refused_in_one_line(shapes, params, match):
    outs = tuple(OutputTensor(i, f"o{i}", s, "float32") for i, s in enumerate(shapes))
    with pytest.raises(EdgekitError, match=match) as e:
        YoloV3(HeadIO(SIZE, outs), params)
    assert "\n" not in str(e.value)


def test_darknet_anchor_files(tmp_path):
    f = tmp_path / "anchors.txt"
    f.write_text("# tiny\n10,14, 23,27, 37,58,\n81,82, 135,169, 344,319\n")
    assert read_anchors(f) == [list(map(float, a)) for a in TINY_ANCHORS]
    cfg = tmp_path / "yolov3-tiny.cfg"
    cfg.write_text("[yolo]\nmask = 3,4,5\nanchors = 10,14,  23,27\nclasses=80\n")
    assert read_anchors(cfg) == [[10.0, 14.0], [23.0, 27.0]]
    bad = tmp_path / "bad.txt"
    for text in ("10,14, 23\n", "ten,14\n", "0,14\n"):
        bad.write_text(text)
        with pytest.raises(EdgekitError):
            read_anchors(bad)


def test_zoo_lists_yolov3_tiny_with_8_8_million_parameters():
    res = CliRunner().invoke(main, ["zoo", "list", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    row = next(r for r in (rows if isinstance(rows, list) else rows["models"])
               if r["name"] == "yolov3_tiny")  # fmt: skip
    assert 8.4e6 <= row["params"] <= 8.9e6 and row["task"] == "detect"
    assert row["default_input"] == 416 and row["default_classes"] == 80


@pytest.fixture(scope="module")
def y3_bundle(tmp_path_factory):
    """The zoo's yolov3_tiny at 160 x 160, 2 classes, random weights, converted from 16
    calibration images (a TensorFlow subprocess: the test process stays light)."""
    d = tmp_path_factory.mktemp("y3")
    calib = d / "calib"
    calib.mkdir()
    rng = np.random.default_rng(0)
    for i in range(16):
        img = rng.integers(0, 255, (120 + 8 * i, 160, 3), dtype=np.uint8)
        Image.fromarray(img).save(calib / f"{i}.png")
    model, bundle = d / "y3.h5", d / "bundle"
    exe = [sys.executable, "-c", "from edgekit.cli import main; main()"]
    for args in (["zoo", "build", "yolov3_tiny", "-o", str(model), "--input-size", "160",
                  "--classes", "2"],
                 ["convert", str(model), "--calib", str(calib), "-o", str(bundle),
                  "--no-compile", "--num-calib", "12"]):  # fmt: skip
        proc = subprocess.run(exe + args, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
    return bundle, calib


def test_converted_yolov3_tiny_bundle_runs_in_detect(y3_bundle, tmp_path):
    bundle, calib = y3_bundle
    det = json.loads((bundle / "edgekit.json").read_text())["detection"]
    assert det["decoder"] == "yolov3" and det["params"]["strides"] == [16, 32]
    assert det["params"]["anchors"] == [list(a) for a in TINY_ANCHORS]
    image = calib / "3.png"
    res = CliRunner().invoke(main, ["detect", str(bundle), str(image), "--json",
                                    "--threshold", "0.05", "--device", "cpu"])  # fmt: skip
    assert res.exit_code == 0, res.output
    dets = json.loads(res.stdout)["detections"]
    assert dets  # random weights: objectness ~0.5 x class ~0.5 clears 0.05
    w, h = Image.open(image).size
    for d in dets:
        assert 0 <= d["score"] <= 1 and d["id"] in (0, 1)
        x0, y0, x1, y1 = d["box"]
        assert 0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h
    # --anchors FILE replaces the bundle's: boxes 10x smaller, same scores
    f = tmp_path / "small.txt"
    f.write_text(", ".join(f"{a[0] / 10:g},{a[1] / 10:g}" for a in TINY_ANCHORS))
    res2 = CliRunner().invoke(main, ["detect", str(bundle), str(image), "--json", "--threshold",
                                     "0.05", "--device", "cpu", "--anchors", str(f)])  # fmt: skip
    assert res2.exit_code == 0, res2.output
    small = json.loads(res2.stdout)["detections"]
    def area(ds):
        return np.median([(d["box"][2] - d["box"][0]) * (d["box"][3] - d["box"][1]) for d in ds])

    assert area(small) < area(dets) / 4
    # inspect names the head
    res3 = CliRunner().invoke(main, ["inspect", str(bundle), "--json"])
    assert json.loads(res3.stdout)["detection"]["decoder"] == "yolov3"


def test_converted_yolov3_tiny_bundle_runs_in_serve(y3_bundle):
    from edgekit.stream import serve
    from edgekit.stream.config import from_dict
    from edgekit.stream.sinks import CallbackSink

    bundle, calib = y3_bundle
    cfg = from_dict({"model": {"path": str(bundle), "device": "cpu", "threshold": 0.05},
                     "worker": {"mode": "inline"}, "source": {"uri": str(calib)},
                     "pipeline": {"max_frames": 3}, "output": {"json_lines": False}})  # fmt: skip
    results = []
    serve.run(cfg, extra_sinks=[CallbackSink(results.append)])
    dets = [r.to_dict()["detections"] for r in results]
    assert len(dets) == 3 and all(dets)
    assert all(0 <= d["score"] <= 1 for ds in dets for d in ds)


def test_guess_decoder_reads_grid_outputs(tmp_path):
    """A bare two-grid .tflite (the darknet layout third-party ports have) is guessed as yolov3."""
    code = f"""
import numpy as np, tensorflow as tf
from edgekit import zoo
m = zoo.build("yolov3_tiny", input_size=64, classes=2, grids=True)
c = tf.lite.TFLiteConverter.from_keras_model(m)
open({str(tmp_path / "g.tflite")!r}, "wb").write(c.convert())
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    from edgekit.tflite import read_model

    assert guess_decoder(read_model(tmp_path / "g.tflite")) == "yolov3"
    assert zoo.REGISTRY["yolov3_tiny"].decoder == "yolov3"
