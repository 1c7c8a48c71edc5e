"""``edgekit train --task detect --model yolov3_tiny``: YOLOv3 targets agree with the device's
``yolov3`` decoder (a target turned into logits decodes back to its box), the mirrored targets
are the targets of the mirrored boxes, and a short real training run on composed apple/banana
scenes writes a two-head model whose loss falls, which converts and runs in ``detect``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgekit.cli import main
from edgekit.detect.compose import compose_dataset
from edgekit.host.convert_heads import grid_heads
from edgekit.host.train_yolov3 import MAX_TRUTHS, YoloV3Head

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "examples" / "apple-banana"
ANCHORS = ((10, 14), (23, 27), (37, 58), (81, 82), (135, 169), (344, 319))
HW, NC = (160, 160), 2


def _head():
    shapes = [(1, 5, 5, 3 * (5 + NC)), (1, 10, 10, 3 * (5 + NC))]  # model order: stride 32, 16
    return YoloV3Head(grid_heads(shapes, HW, ANCHORS), HW, NC)


BOXES = np.array([[20.0, 30.0, 40.0, 44.0],  # 20 x 14: anchor (10, 14)/(23, 27), stride 16
                  [10.0, 15.0, 150.0, 150.0],  # 140 x 135: anchor (135, 169), stride 32
                  [90.0, 60.0, 170.0, 140.0]])  # fmt: skip


def _logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def test_targets_turned_into_logits_decode_back_to_the_boxes():
    head = _head()
    ts = head.targets(BOXES, [0, 1, 1])
    a, c = head.per_head, 6 + NC
    raw = {}
    for i, (h, t) in enumerate(zip(head.heads, ts)):
        t = t[..., : a * c].reshape(*h.grid, a, c)
        assert t.shape[:2] == h.grid
        logits = np.full((*h.grid, a, 5 + NC), -12.0, np.float32)
        pos = t[..., 4] > 0
        logits[..., 0:2] = _logit(t[..., 0:2])
        logits[..., 2:4] = t[..., 2:4]
        logits[..., 4] = np.where(pos, 12.0, -12.0)
        logits[..., 5:] = np.where(t[..., 6:] > 0, 12.0, -12.0)
        raw[i] = logits.reshape(1, *h.grid, a * (5 + NC))
        # every cell carries the image's boxes for the ignore rule
        truths = ts[i][..., a * c :].reshape(*h.grid, MAX_TRUTHS, 4)
        np.testing.assert_allclose(truths[0, 0, :3], BOXES)
        assert not truths[:, :, 3:].any()
    boxes, scores, classes = head.decoder().decode(raw, 0.5, 0.45, 100)
    order = np.argsort(boxes[:, 0])
    expect = BOXES.copy()
    np.testing.assert_allclose(boxes[order], expect[np.argsort(expect[:, 0])], atol=1e-3)
    assert sorted(classes.tolist()) == [0, 1, 1] and (scores > 0.99).all()
    # the small box went to the stride-16 head, the big one to stride 32
    assert ts[0][..., 4 : a * c : c].sum() == 1 and ts[1][..., 4 : a * c : c].sum() == 2


def test_a_box_takes_the_best_anchor_over_both_heads():
    head = _head()
    t16, t32 = head.targets(np.array([[0.0, 0.0, 81.0, 82.0]]), [1])
    a, c = head.per_head, 6 + NC
    obj32 = t32[..., : a * c].reshape(5, 5, a, c)[..., 4]
    assert obj32.sum() == 1 and obj32[1, 1, 0] == 1  # (81, 82) is anchor 0 of stride 32
    t = t32[..., : a * c].reshape(5, 5, a, c)[1, 1, 0]
    np.testing.assert_allclose(t[:4], [40.5 / 32 - 1, 41 / 32 - 1, 0, 0], atol=1e-6)
    assert t[5] == pytest.approx(2 - 81 * 82 / 160**2) and t[6 + 1] == 1
    assert not t16[..., 4 : a * c : c].any()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("y3train")
    scenes = d / "scenes"
    compose_dataset(SOURCE, scenes, train_scenes=48, val_scenes=12, size=(160, 120), seed=1)
    model = d / "model" / "y3.h5"
    res = CliRunner().invoke(main, ["train", str(scenes), "--task", "detect", "--model",
                                    "yolov3_tiny", "-o", str(model), "--input-size", "96",
                                    "--epochs", "3", "--batch-size", "8", "--json"])  # fmt: skip
    assert res.exit_code == 0, (res.output, res.exception)
    return scenes, model, json.loads(res.stdout)


def test_flipped_targets_are_the_targets_of_the_flipped_boxes(trained):
    import tensorflow as tf  # loaded by the training run already

    head = _head()
    mirrored = BOXES.copy()
    mirrored[:, [0, 2]] = HW[1] - BOXES[:, [2, 0]]
    for got, want in zip(head.targets(BOXES, [0, 1, 1]), head.targets(mirrored, [0, 1, 1])):
        flipped = head.flip(tf, tf.constant(got)).numpy()
        a, c = head.per_head, 6 + NC
        np.testing.assert_allclose(flipped[..., : a * c], want[..., : a * c], atol=1e-5)
        f_boxes = flipped[0, 0, a * c :].reshape(MAX_TRUTHS, 4)[:3]
        np.testing.assert_allclose(np.sort(f_boxes, 0), np.sort(mirrored, 0), atol=1e-4)


def test_yolov3_tiny_trains_converts_and_detects(trained, tmp_path):
    scenes, model, summary = trained
    det = summary["detection"]
    assert det["decoder"] == "yolov3"
    assert [h["stride"] for h in det["params"]["heads"]] == [16, 32]
    loss = summary["history"]["loss"]
    assert len(loss) == 3 and loss[-1] < loss[0] and all(np.isfinite(loss))
    assert summary["val_map50"] is not None and 0 <= summary["val_map50"] <= 1
    bundle = tmp_path / "bundle"
    res = CliRunner().invoke(main, ["convert", str(model), "--calib", str(scenes), "-o",
                                    str(bundle), "--no-compile", "--num-calib", "16",
                                    "--num-verify", "6", "--json"])  # fmt: skip
    assert res.exit_code == 0, (res.output, res.exception)
    m = json.loads((bundle / "edgekit.json").read_text())
    assert m["labels"] == ["apple", "banana"] and m["detection"]["decoder"] == "yolov3"
    assert m["verification"]["images"] == 6 and len(m["verification"]["heads"]) == 2
    image = sorted((scenes / "images" / "val").iterdir())[0]
    res = CliRunner().invoke(main, ["detect", str(bundle), str(image), "--json", "--device",
                                    "cpu", "--threshold", "0.01"])  # fmt: skip
    assert res.exit_code == 0, res.output
    for d in json.loads(res.stdout)["detections"]:
        assert 0 <= d["score"] <= 1 and d["label"] in ("apple", "banana")
