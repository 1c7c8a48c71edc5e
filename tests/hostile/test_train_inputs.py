"""`edgekit train` on images it cannot read (issue 15): a class folder whose images are all
unreadable used to be trained as a class with no examples (and a model, labels, curves written);
now it is one line naming the folder, before TensorFlow loads and with nothing written."""

from __future__ import annotations

import shutil
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgekit.errors import EdgekitError
from edgekit.host import train

from .conftest import cli, tree_digest

UNREADABLE = {
    "random.jpg": bytes(range(256)) * 8,
    "empty.png": b"",
    "text.png": b"not an image\n",
    "truncated.jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
}


def _dataset(root, photo, readable: dict[str, int], unreadable: dict[str, int]):
    names = list(UNREADABLE)
    for cls in sorted(set(readable) | set(unreadable)):
        d = root / cls
        d.mkdir(parents=True)
        for i in range(readable.get(cls, 0)):
            shutil.copy(photo, d / f"ok{i}.jpg")
        for i in range(unreadable.get(cls, 0)):
            name = names[i % len(names)]
            (d / f"{i}_{name}").write_bytes(UNREADABLE[name])
    return root


def test_a_class_of_only_unreadable_images_is_refused_before_training(tmp_path, photo):
    data = _dataset(tmp_path / "data", photo, {"banana": 3}, {"apple": 4})
    out = tmp_path / "out" / "m.h5"
    before = tree_digest(data)
    tf_loaded = "tensorflow" in sys.modules
    r = cli("train", data, "--model", "mobilenet_v1", "-o", out, "--epochs", "1")
    assert r.exit_code == 1, r.output
    line = r.output.strip().splitlines()[-1]
    assert f"{data / 'apple'}: all 4 image(s) of class 'apple' are unreadable" in line, line
    assert "e.g." in line and "no examples" in line, line
    assert not (tmp_path / "out").exists()  # no model, labels, curves or split
    assert tree_digest(data) == before
    if not tf_loaded:
        assert "tensorflow" not in sys.modules  # refused before any training started


def test_a_dataset_of_only_unreadable_images_names_its_folder(tmp_path, photo):
    data = _dataset(tmp_path / "data", photo, {}, {"apple": 2, "banana": 3})
    r = cli("train", data, "--model", "mobilenet_v1", "-o", tmp_path / "m.h5", "--epochs", "1")
    assert r.exit_code == 1, r.output
    line = r.output.strip().splitlines()[-1]
    assert f"{data}: none of the 5 images could be read (e.g. " in line, line
    assert not (tmp_path / "m.h5").exists()


@given(pattern=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 3)), min_size=2, max_size=4))
def test_load_pixels_refuses_exactly_when_a_class_has_nothing_readable(tmp_path_factory, photo,
                                                                       pattern):  # fmt: skip
    """Property: for any mix of readable/unreadable files per class, load_pixels returns the
    readable ones, or refuses naming a class folder that has none (or the dataset if no file
    can be read)."""
    pattern = [(ok, bad) for ok, bad in pattern if ok + bad]  # a class folder has files
    if not pattern:
        return
    root = tmp_path_factory.mktemp("ds")
    names = [f"c{i}" for i in range(len(pattern))]
    _dataset(root, photo, {n: ok for n, (ok, _) in zip(names, pattern)},
             {n: bad for n, (_, bad) in zip(names, pattern)})  # fmt: skip
    classes, samples, _ = train.scan(root) if len(pattern) > 1 else (names, None, None)
    if samples is None:
        return
    try:
        _, kept, bad = train.load_pixels(samples, (8, 8), None, classes, root)
    except EdgekitError as e:
        assert "\n" not in str(e)
        if all(ok == 0 for ok, _ in pattern):
            assert "none of the" in e.message
        else:
            first = next(n for n, (ok, _) in zip(names, pattern) if ok == 0)
            assert e.message.startswith(f"{root / first}: all "), e.message
        return
    assert all(ok > 0 for ok, _ in pattern)
    assert len(kept) == sum(ok for ok, _ in pattern) and len(bad) == sum(b for _, b in pattern)


@pytest.mark.parametrize("n_bad", [1, 3])
def test_some_unreadable_images_in_a_class_are_skipped_not_refused(tmp_path, photo, n_bad):
    data = _dataset(tmp_path / "data", photo, {"apple": 2, "banana": 2}, {"apple": n_bad})
    classes, samples, _ = train.scan(data)
    _, kept, bad = train.load_pixels(samples, (8, 8), None, classes, data)
    assert len(kept) == 4 and len(bad) == n_bad


def test_detector_with_an_unreadable_held_out_image_is_refused_before_training(tmp_path):
    """`train --task detect` read its held-out images only after training: one unreadable
    validation image threw the whole run away at the end. Now it is refused before epoch 1."""
    from pathlib import Path

    from edgekit.detect.compose import compose_dataset

    source = Path(__file__).resolve().parents[2] / "examples" / "apple-banana"
    data = tmp_path / "scenes"
    compose_dataset(source, data, train_scenes=8, val_scenes=2, size=(64, 48), seed=0)
    val_images = sorted((data / "images" / "val").iterdir())
    whole = val_images[0].read_bytes()
    val_images[0].write_bytes(whole[: len(whole) // 3])  # the header reads, the pixels do not
    out = tmp_path / "det.h5"
    r = cli("train", data, "--task", "detect", "--model", "detector", "-o", out,
            "--input-size", "64", "--epochs", "1", "--batch-size", "4")  # fmt: skip
    assert r.exit_code == 1, r.output
    assert val_images[0].name in r.output.strip().splitlines()[-1], r.output
    assert "epoch 1" not in r.output.lower(), r.output  # refused before any training
    assert not out.exists()
