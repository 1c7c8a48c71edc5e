"""Path mistakes: outputs whose folder cannot exist (a file in the way, an unwritable place) and
a folder given as an image are one clear EdgekitError, found before any work where possible."""

from __future__ import annotations

import pytest

from edgekit import atomic
from edgekit.errors import EdgekitError


def test_file_in_the_way_is_a_clear_error(tmp_path):
    blocker = tmp_path / "model.h5"
    blocker.write_bytes(b"x")
    with pytest.raises(EdgekitError, match="is a file, not a folder"):
        atomic.check_destination(blocker / "sub" / "out.png")
    with pytest.raises(EdgekitError, match="is a file, not a folder"):
        atomic.write_bytes(blocker / "out.png", b"data")
    bundle = atomic.atomic_dir(blocker / "bundle")
    with pytest.raises(EdgekitError, match="is a file, not a folder"):
        bundle.__enter__()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.h5"]


def test_missing_folders_are_fine(tmp_path):
    atomic.check_destination(tmp_path / "a" / "b" / "c.png")
    atomic.write_bytes(tmp_path / "a" / "b" / "c.png", b"data")
    assert (tmp_path / "a" / "b" / "c.png").read_bytes() == b"data"


def test_unwritable_place_is_a_clear_error(tmp_path):
    with pytest.raises(EdgekitError, match="cannot write here"):
        atomic.write_bytes("/proc/edgekit-test.png", b"data")  # procfs: no new files, even as root


def test_a_folder_given_as_an_image_says_so(tmp_path):
    from edgekit import images

    with pytest.raises(EdgekitError, match="is a folder, not an image") as e:
        images.load_rgb(tmp_path)
    assert e.value.hint == f"pass the images, e.g. {tmp_path}/*.jpg"
