"""A file OpenCV "opens" but cannot decode (garbage named .png/.avi) is a bad input: one clear
error and a non-zero exit, not a silent "end of stream" after zero frames."""

from __future__ import annotations

import os
import subprocess

import pytest

from edgekit.errors import EdgekitError
from edgekit.stream.sources import OpenCVSource

from .conftest import edgekit_cmd


@pytest.mark.parametrize("name", ["garbage.png", "garbage.avi"])
def test_undecodable_file_is_an_error(tmp_path, name):
    bad = tmp_path / name
    bad.write_bytes(os.urandom(4000))
    src = OpenCVSource(str(bad))
    # .avi garbage is refused at open; a .png opens (image reader) and then decodes nothing.
    with pytest.raises(EdgekitError, match="OpenCV cannot open|no video frame could be decoded"):
        src.open()
    src.close()


def test_serve_exits_non_zero_on_undecodable_file(tmp_path, small_model):
    bad = tmp_path / "garbage.png"
    bad.write_bytes(os.urandom(4000))
    r = subprocess.run([*edgekit_cmd(), "serve", "--model", str(small_model), "--source", str(bad),
                        "--device", "cpu", "--max-frames", "2"],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [
        f"Error: {bad}: no video frame could be decoded; is it a video OpenCV can read?"
    ]
    assert '"frame"' not in r.stdout
