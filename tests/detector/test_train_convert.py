"""Issue 12's detector target, for real: compose scenes from the apple/banana photos, train the
zoo detector on them (`edgekit train --task detect`), measure mAP@0.5 on held-out scenes made
from held-out photos, convert to int8 (`edgekit convert`) and compare int8 with float."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgekit.cli import main
from edgekit.detect.compose import compose_dataset

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "examples" / "apple-banana"

# The CI training run: small enough for ~2-3 minutes on 2 cores, big enough for mAP >= 0.7.
SCENE_SIZE = (192, 144)
TRAIN_SCENES, VAL_SCENES = 300, 60
INPUT, ALPHA, EPOCHS = 128, 1.0, 20


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True)


def one_line_error(result, *needles, code=1):
    assert result.exit_code == code, (result.output, result.exception)
    err = result.stderr.strip().splitlines()[-1]  # after warnings and progress lines
    assert err.startswith("Error:") and result.stderr.count("Error:") == 1, result.stderr
    assert "Traceback" not in result.output
    for n in needles:
        assert n in err, err


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    out = tmp_path_factory.mktemp("det") / "scenes"
    compose_dataset(
        SOURCE, out, train_scenes=TRAIN_SCENES, val_scenes=VAL_SCENES, size=SCENE_SIZE, seed=0
    )
    return out


@pytest.fixture(scope="module")
def trained(scenes):
    """Trained by the installed `edgekit train` in its own process, as a user runs it. (Runs of
    this seeded training once reached mAP@0.5 0.68-0.70 on a busy machine where they reach 0.86-
    0.90: the augmentation's random draws went to whichever scene a map thread reached first.
    They are now taken in element order, and the same seed trains the same model:
    tests/detector/test_train_augment.py; seed 0 here: 0.894.)"""
    model = scenes.parent / "model" / "det.h5"
    exe = Path(sys.executable).parent / "edgekit"
    proc = subprocess.run(
        [str(exe) if exe.exists() else "edgekit", "train", str(scenes), "--task", "detect",
         "--model", "detector", "-o", str(model), "--input-size", str(INPUT), "--alpha",
         str(ALPHA), "--epochs", str(EPOCHS), "--json"],
        capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return model, json.loads(proc.stdout)


def test_trained_detector_reaches_map_0_7_on_held_out_photos(trained, scenes):
    model, summary = trained
    held = json.loads((scenes / "compose.json").read_text())["val_originals"]
    assert summary["dataset"]["held_out"] == "the dataset's validation split"
    assert summary["counts"]["val"]["images"] == VAL_SCENES and held["apple"] and held["banana"]
    assert summary["val_map50"] >= 0.7, summary["val_ap50_per_class"]
    assert set(summary["val_ap50_per_class"]) == {"apple", "banana"}
    assert summary["detection"]["decoder"] == "edgekit-anchor-free"
    assert (model.parent / "labels.txt").read_text() == "0 apple\n1 banana\n"
    for path in summary["outputs"].values():
        assert Path(path).is_file()


def test_convert_records_the_task_and_int8_stays_within_0_05(trained, scenes):
    model, summary = trained
    bundle = model.parent / "bundle"
    res = run(
        "convert", model, "--calib", scenes, "-o", bundle, "--no-compile", "--num-calib", 150,
        "--min-map", 0.6, "--json",
    )  # fmt: skip
    assert res.exit_code == 0, (res.output, res.exception)
    manifest = json.loads((bundle / "edgekit.json").read_text())
    assert manifest["task"] == "detect"
    det = manifest["detection"]
    assert det["decoder"] == "edgekit-anchor-free"
    assert det["params"] == {
        "strides": [8, 16],
        "score_threshold": 0.5,
        "iou": 0.45,
        "max_detections": 100,
        "letterbox": True,
        "fill": 114,
    }
    v = manifest["verification"]
    assert v["labelled"] and v["images"] == VAL_SCENES and v["held_out"]
    assert v["map50_float"] >= 0.7, v
    assert abs(v["map50_int8"] - v["map50_float"]) <= 0.05, v
    assert v["map50_int8_vs_float"] >= 0.8, v
    assert v["min_map"] == 0.6
    prediction = manifest["compile"]["prediction"]
    assert prediction["cpu_ops"] == 0 and prediction["tpu_ops"] > 20
    assert manifest["labels"] == ["apple", "banana"]
    # Calibrated on the train split only; verified on the held-out split.
    assert all(f.startswith("images/val/") for f in manifest["calibration"]["verify_files"])

    # The human summary says what was measured.
    text = run("convert", model, "--calib", scenes, "-o", bundle, "--no-compile", "--force",
               "--num-calib", 50)  # fmt: skip
    assert text.exit_code == 0
    assert "mAP@0.5 float" in text.stdout and "int8 vs float" in text.stdout


def test_min_map_refuses_and_writes_nothing(trained, scenes):
    model, _ = trained
    out = model.parent / "refused"
    res = run("convert", model, "--calib", scenes, "-o", out, "--no-compile", "--num-calib", 30,
              "--min-map", 1.0)  # fmt: skip
    one_line_error(res, "below --min-map 1")
    assert not out.exists()
    res = run("convert", model, "--calib", scenes, "-o", out, "--no-compile",
              "--min-agreement", 0.9)  # fmt: skip
    one_line_error(res, "--min-agreement is for classifiers")
    res = run("convert", model, "--calib", scenes, "-o", out, "--no-compile", "--iou", "nan")
    one_line_error(res, "--iou")


def test_train_detect_refusals_are_one_line(tmp_path, scenes):
    out = tmp_path / "m.h5"
    one_line_error(
        run("train", scenes, "--task", "detect", "--model", "mobilenet_v1", "-o", out),
        "not a detector",
    )
    one_line_error(
        run("train", SOURCE, "--task", "detect", "--model", "detector", "-o", out),
        "neither a YOLO",
    )
    one_line_error(run("train", SOURCE, "--model", "detector", "-o", out), "--task detect")
    bad = tmp_path / "bad"
    (bad / "images" / "train").mkdir(parents=True)
    (bad / "labels" / "train").mkdir(parents=True)
    (bad / "classes.txt").write_text("apple\n")
    one_line_error(
        run("train", bad, "--task", "detect", "--model", "detector", "-o", out), "no images"
    )
    one_line_error(
        run("train", scenes, "--task", "detect", "--model", "detector", "-o", out,
            "--learning-rate", "nan"),
        "--learning-rate", code=2,
    )  # fmt: skip
    one_line_error(
        run("train", scenes, "--task", "detect", "--model", "detector", "-o", out,
            "--group-pattern", "x"),
        "--group-pattern is for classification",
    )  # fmt: skip
    assert not out.exists()
