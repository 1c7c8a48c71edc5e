"""The composed dataset (edgekit.detect.compose) and the YOLO/COCO reader's checks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgekit.detect.compose import compose_dataset
from edgekit.detect.dataset import load_dataset
from edgekit.errors import EdgekitError

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "examples" / "apple-banana"


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("compose") / "scenes"
    summary = compose_dataset(SOURCE, out, train_scenes=24, val_scenes=8, size=(160, 120), seed=3)
    return out, summary


def test_split_by_original_photo_with_the_class_in_the_key(small):
    out, summary = small
    val = summary["val_originals"]
    train = summary["train_originals"]
    for cls in ("apple", "banana"):
        assert val[cls] and train[cls]
        assert not set(val[cls]) & set(train[cls])
        assert all(g.startswith(f"{cls}/") for g in val[cls] + train[cls])
    # 8 originals per class; a quarter held out.
    assert len(val["apple"]) == 2 and len(train["apple"]) == 6
    assert json.loads((out / "compose.json").read_text())["val_originals"] == val


def test_boxes_are_exact_and_yolo_equals_coco(small):
    out, _ = small
    yolo = load_dataset(out)
    shutil.copytree(out / "images", out.parent / "coco" / "images")
    shutil.copytree(out / "annotations", out.parent / "coco" / "annotations")
    coco = load_dataset(out.parent / "coco")
    assert yolo.layout == "yolo" and coco.layout == "coco"
    assert yolo.names == coco.names == ("apple", "banana")
    assert (len(yolo.train), len(yolo.val)) == (24, 8)
    for a, b in zip(yolo.train + yolo.val, coco.train + coco.val):
        assert a.path.name == b.path.name
        np.testing.assert_allclose(a.boxes, b.boxes, atol=0.01)  # YOLO text keeps 6 decimals
        assert a.labels.tolist() == b.labels.tolist()
        assert 1 <= len(a.labels) <= 3
        # Integer pixel boxes from the alpha mask, within the 160x120 scene, disjoint.
        np.testing.assert_allclose(b.boxes, np.round(b.boxes))
        assert (b.boxes[:, :2] >= 0).all() and (b.boxes[:, 2] <= 160).all()
        assert (b.boxes[:, 3] <= 120).all()


def test_deterministic_for_a_seed_and_different_for_another(tmp_path, small):
    out, _ = small
    again = tmp_path / "again"
    compose_dataset(SOURCE, again, train_scenes=24, val_scenes=8, size=(160, 120), seed=3)
    for rel in ("labels/train/scene_00005.txt", "labels/val/scene_00002.txt"):
        assert (again / rel).read_text() == (out / rel).read_text()
    a = np.asarray(Image.open(again / "images/train/scene_00005.jpg"))
    assert (a == np.asarray(Image.open(out / "images/train/scene_00005.jpg"))).all()
    other = tmp_path / "other"
    compose_dataset(SOURCE, other, train_scenes=24, val_scenes=8, size=(160, 120), seed=4)
    texts = [(other / "labels/train" / f"scene_{i:05d}.txt").read_text() for i in range(24)]
    assert texts != [(out / "labels/train" / f"scene_{i:05d}.txt").read_text() for i in range(24)]


def test_pasted_object_lies_inside_its_box(tmp_path):
    """A one-colour cut-out with a transparent margin: its pixels appear exactly in the box."""
    src = tmp_path / "src"
    for cls, colour in (("red", (255, 0, 0, 255)), ("blue", (0, 0, 255, 255))):
        for n in range(2):
            (src / cls).mkdir(parents=True, exist_ok=True)
            img = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
            img.paste(Image.new("RGBA", (20, 10), colour), (10, 12))
            img.save(src / cls / f"{cls}_{n}.png")
    out = tmp_path / "out"
    compose_dataset(
        src, out, train_scenes=4, val_scenes=2, size=(128, 96), group_pattern=r"_(\d+)", seed=1
    )
    data = load_dataset(out)
    for scene in data.train:
        for (x0, y0, x1, y1), label in zip(scene.boxes.astype(int), scene.labels):
            # The cut-out is cropped to its opaque part, so the box is the pasted rectangle:
            # check its centre row (JPEG blurs the edges).
            rgb = np.asarray(Image.open(scene.path).convert("RGB")).astype(int)
            row = rgb[(y0 + y1) // 2, x0 + 2 : x1 - 2]
            channel = 0 if data.names[label] == "red" else 2
            assert (row[:, channel] > 180).all() and (row[:, 1] < 90).all()


def test_script_writes_the_dataset_and_errors_are_one_line(tmp_path):
    script = ROOT / "scripts" / "compose_detection_dataset.py"
    out = tmp_path / "scenes"
    ok = subprocess.run(
        [sys.executable, str(script), "-o", str(out), "--train", "3", "--val", "2", "--json"],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["splits"]["val"]["scenes"] == 2
    again = subprocess.run(
        [sys.executable, str(script), "-o", str(out)], capture_output=True, text=True
    )
    assert again.returncode == 1
    assert again.stderr.count("\n") == 1 and "already exists" in again.stderr
    forced = subprocess.run(
        [sys.executable, str(script), "-o", str(out), "--train", "2", "--val", "1", "--force"],
        capture_output=True,
        text=True,
    )
    assert forced.returncode == 0, forced.stderr  # a composed dataset is replaced...
    assert len(list((out / "images" / "train").iterdir())) == 2
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "keep.png").write_bytes(b"x")
    refused = subprocess.run(
        [sys.executable, str(script), "-o", str(photos), "--force"], capture_output=True, text=True
    )
    assert refused.returncode == 1 and "no compose.json" in refused.stderr  # ...photos never
    assert (photos / "keep.png").exists()
    for bad in (["--seed", "-1"], ["--val-fraction", "nan"], ["--scale", "0.5,inf"]):
        r = subprocess.run(
            [sys.executable, str(script), "-o", str(tmp_path / "x"), *bad],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 1 and r.stderr.startswith("Error:"), (bad, r.stderr)
        assert r.stderr.count("\n") == 1 and not (tmp_path / "x").exists()


def _yolo(tmp_path, label_text: str, names="apple\nbanana\n"):
    root = tmp_path / "ds"
    (root / "images" / "train").mkdir(parents=True)
    (root / "labels" / "train").mkdir(parents=True)
    Image.new("RGB", (100, 50)).save(root / "images" / "train" / "a.jpg")
    if label_text is not None:
        (root / "labels" / "train" / "a.txt").write_text(label_text)
    if names is not None:
        (root / "classes.txt").write_text(names)
    return root


@pytest.mark.parametrize(
    "text, names, message",
    [
        (None, "apple\n", "no label file"),
        ("0 0.5 0.5 0.2\n", "apple\n", "expected 'class cx cy w h'"),
        ("0 0.5 nan 0.2 0.2\n", "apple\n", "not finite"),
        ("0 0.5 0.5 inf 0.2\n", "apple\n", "not finite"),
        ("0 0.95 0.5 0.2 0.2\n", "apple\n", "outside the 100x50 image"),
        ("3 0.5 0.5 0.2 0.2\n", "apple\nbanana\n", "class id 3 but only 2 class names"),
        ("0 0.5 0.5 0.0 0.2\n", "apple\n", "smaller than a pixel"),
        ("0 0.5 0.5 0.2 0.2\n", None, "no class names"),
        ("0 0.5 0.5 0.2 0.2\n", "\n", "class name list is empty"),
    ],
)
def test_bad_yolo_datasets_give_one_line(tmp_path, text, names, message):
    with pytest.raises(EdgekitError, match=message) as e:
        load_dataset(_yolo(tmp_path, text, names))
    assert "\n" not in str(e.value)


def test_bad_dataset_folders(tmp_path):
    with pytest.raises(EdgekitError, match="no such dataset folder"):
        load_dataset(tmp_path / "missing")
    with pytest.raises(EdgekitError, match="neither a YOLO"):
        load_dataset(tmp_path)
    root = _yolo(tmp_path, "")
    (root / "images" / "train" / "a.jpg").unlink()
    with pytest.raises(EdgekitError, match="no images"):
        load_dataset(root)
    coco = tmp_path / "coco"
    (coco / "annotations").mkdir(parents=True)
    (coco / "annotations" / "instances_train.json").write_text('{"images": [')
    with pytest.raises(EdgekitError, match="not a COCO detection file"):
        load_dataset(coco)
    (coco / "annotations" / "instances_train.json").write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "x.jpg"}],
                "annotations": [{"image_id": 1, "category_id": 0, "bbox": [0, 0, 5, 5]}],
                "categories": [{"id": 0, "name": "a"}],
            }
        )
    )
    with pytest.raises(EdgekitError, match="not found"):
        load_dataset(coco)


def test_empty_label_file_is_an_image_without_objects_and_yaml_names(tmp_path):
    root = _yolo(tmp_path, "", names=None)
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nnames:\n  0: apple\n  1: pear\n")
    data = load_dataset(root)
    assert data.names == ("apple", "pear") and data.train[0].boxes.shape == (0, 4)
    (root / "data.yaml").write_text("names: ['apple', pear]  # flow style\n")
    assert load_dataset(root).names == ("apple", "pear")
