"""Foundation: errors, atomic writes, manifest round trip, image pipeline, labels."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from edgekit import atomic, images, labels, manifest
from edgekit.errors import EdgekitError


def test_error_str_has_message_and_hint():
    e = EdgekitError("x.h5: not a Keras model", "pass a .h5 file", exit_code=3)
    assert str(e) == "x.h5: not a Keras model; pass a .h5 file"
    assert e.exit_code == 3


def test_write_bytes_replaces_atomically_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "f.bin"
    atomic.write_bytes(target, b"one")
    atomic.write_text(target, "two")
    assert target.read_text() == "two"
    assert os.listdir(target.parent) == ["f.bin"]


def test_atomic_dir_failure_leaves_nothing(tmp_path):
    out = tmp_path / "bundle"
    with pytest.raises(RuntimeError), atomic.atomic_dir(out) as tmp:
        (tmp / "half.tflite").write_bytes(b"x")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_refuses_existing_then_force_replaces(tmp_path):
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "edgekit.json").write_text("{}")  # --force replaces only a bundle or an empty folder
    with pytest.raises(EdgekitError, match="already exists"), atomic.atomic_dir(out):
        pass
    with atomic.atomic_dir(out, force=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]


def _manifest(**kw):
    base = dict(
        name="m",
        input=manifest.InputSpec((1, 28, 28, 3), "uint8", 1 / 255, 0, "bgr", (0.0, 1.0), "crop"),
        output=manifest.OutputSpec((1, 2), "uint8", 1 / 256, 0),
        models={"cpu": "m_int8.tflite", "edgetpu": None},
        labels=("apple", "banana"),
    )
    base.update(kw)
    return manifest.Manifest(**base)


def test_manifest_round_trip_through_bundle(tmp_path):
    m = _manifest()
    (tmp_path / "m_int8.tflite").write_bytes(b"TFL3")
    (tmp_path / "edgekit.json").write_text(m.to_json())
    b = manifest.load_bundle(tmp_path)
    assert b.manifest == m
    assert b.manifest.input.size == (28, 28)
    assert b.cpu_model == (tmp_path / "m_int8.tflite").resolve()
    assert b.edgetpu_model is None
    assert json.loads(m.to_json())["format"] == "edgekit-bundle"


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", "unreadable manifest"),
        ("[]", "not a valid edgekit manifest"),
        ('{"name": "m"}', "not a valid edgekit manifest"),
    ],
)
def test_bad_manifest_is_one_clear_error(tmp_path, content, match):
    (tmp_path / "edgekit.json").write_text(content)
    with pytest.raises(EdgekitError, match=match):
        manifest.load_bundle(tmp_path)


def test_newer_bundle_format_is_refused(tmp_path):
    d = _manifest().to_dict()
    d["format_version"] = manifest.FORMAT_VERSION + 1
    (tmp_path / "edgekit.json").write_text(json.dumps(d))
    with pytest.raises(EdgekitError, match="newer than this edgekit"):
        manifest.load_bundle(tmp_path)


def test_missing_model_file_is_reported(tmp_path):
    (tmp_path / "edgekit.json").write_text(_manifest().to_json())
    with pytest.raises(EdgekitError, match="missing its CPU model"):
        manifest.load_bundle(tmp_path)


def test_load_rgb_composites_alpha_over_black_and_handles_gray(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[:2, :, 3] = 255  # top half opaque, bottom half transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    Image.fromarray(np.full((4, 4), 77, np.uint8), "L").save(tmp_path / "g.png")
    a = images.load_rgb(tmp_path / "a.png")
    assert a.shape == (4, 4, 3) and a.dtype == np.uint8
    assert (a[:2] == 200).all() and (a[2:] == 0).all()
    assert (images.load_rgb(tmp_path / "g.png") == 77).all()


def test_real_rgba_photo_loads(apple_banana_dir):
    path = images.find_images(apple_banana_dir)[0]
    img = images.load_rgb(path)
    assert img.ndim == 3 and img.shape[2] == 3


def test_unreadable_and_missing_images_raise_clear_errors(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(EdgekitError, match="cannot read image") as e:
        images.load_rgb(tmp_path / "bad.png")
    assert "BufferedReader" not in str(e.value) and "unknown or damaged format" in str(e.value)
    with pytest.raises(EdgekitError, match="no such image file"):
        images.load_rgb(tmp_path / "nope.jpg")
    with pytest.raises(EdgekitError, match="no such image folder"):
        images.find_images(tmp_path / "nodir")


def test_find_images_is_recursive_and_filters_extensions(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/x.JPG", "a/b/y.png", "a/z.txt", "w.webp"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in images.find_images(tmp_path)] == ["y.png", "x.JPG", "w.webp"]


@pytest.mark.parametrize("mode", ["stretch", "crop", "pad"])
def test_resize_modes_give_target_size(mode):
    img = np.random.default_rng(0).integers(0, 255, (30, 60, 3), dtype=np.uint8)
    assert images.resize(img, (16, 20), mode).shape == (16, 20, 3)


def test_pad_letterboxes_and_crop_takes_centre():
    img = np.full((10, 20, 3), 255, np.uint8)
    padded = images.resize(img, (20, 20), "pad")
    assert (padded[:5] == 0).all() and (padded[5:15] == 255).all() and (padded[15:] == 0).all()
    stripes = np.zeros((10, 30, 3), np.uint8)
    stripes[:, 10:20] = 255
    assert (images.resize(stripes, (10, 10), "crop") == 255).all()


def test_prepare_bgr_and_float_range():
    img = np.zeros((2, 2, 3), np.uint8)
    img[..., 0] = 255
    assert (images.prepare(img, (2, 2), color="bgr")[..., 2] == 255).all()
    f = images.to_float(np.array([0, 255], np.uint8), (-1.0, 1.0))
    assert f.dtype == np.float32 and np.allclose(f, [-1, 1])
    with pytest.raises(EdgekitError, match="unknown color order"):
        images.prepare(img, (2, 2), color="hsv")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("background\ncat\n", {0: "background", 1: "cat"}),
        ("0 apple\n1 banana\n", {0: "apple", 1: "banana"}),
        ("0: apple\n2: cherry pie\n", {0: "apple", 2: "cherry pie"}),
        ("a\n\nc\n", {0: "a", 2: "c"}),
    ],
)
def test_label_formats(text, expected):
    assert labels.parse_labels(text) == expected


def test_coral_label_file(coral_dir):
    lab = labels.read_labels(coral_dir / "imagenet_labels.txt")
    assert len(lab) == 1001 and lab[0] == "background" and lab[286] == "Egyptian cat"


def test_label_errors(tmp_path):
    with pytest.raises(EdgekitError, match="no such label file"):
        labels.read_labels(tmp_path / "none.txt")
    (tmp_path / "dup.txt").write_text("0 a\n0 b\n")
    with pytest.raises(EdgekitError, match="appears twice"):
        labels.read_labels(tmp_path / "dup.txt")
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(EdgekitError, match="empty"):
        labels.read_labels(tmp_path / "empty.txt")


def test_prepare_grayscale_is_pillows_luma():
    rgb = np.random.default_rng(3).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(rgb).convert("L"))
    got = images.prepare(rgb, (9, 7), channels=1, color="bgr")
    assert got.shape == (9, 7, 1)
    assert np.array_equal(got[..., 0], expected)


def test_group_key_last_match_first_group_and_optional_group():
    from edgekit.groups import compile_pattern, group_key

    p = compile_pattern(r"(?:apple|bana)[-_](\d+)")
    assert group_key("augmented_apple_12_apple_3.png", p) == "3"  # last match, not "12"
    assert group_key("original_bana-2.png", p) == "2"
    assert group_key("cherry.png", p) is None
    assert group_key("x.png", None) is None
    optional = compile_pattern(r"photo(\d+)|still")
    assert group_key("a_still.png", optional) == "still"  # group 1 did not take part
    with pytest.raises(EdgekitError, match="invalid regex"):
        compile_pattern("(")
