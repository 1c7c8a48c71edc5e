"""A bad file in a folder source (decompression bomb, corrupt, truncated, a FIFO named like an
image) is skipped and counted; serve keeps going and exits 0."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import zlib

import pytest

from edgekit.errors import EdgekitError
from edgekit.stream.capture import CaptureThread
from edgekit.stream.sources import FolderSource

from .conftest import edgekit_cmd


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A PNG header claiming width x height RGB pixels (900 M here), with a tiny IDAT: Pillow's
    decompression-bomb check fires on open, before any pixel is decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))  # fmt: skip


@pytest.fixture
def hostile_folder(coral_dir, tmp_path):
    d = tmp_path / "frames"
    d.mkdir()
    shutil.copy(coral_dir / "cat.bmp", d / "a.bmp")
    (d / "b.png").write_bytes(png_bomb())
    (d / "c.jpg").write_bytes((coral_dir / "parrot.jpg").read_bytes()[:200])  # truncated
    os.mkfifo(d / "d.png")
    shutil.copy(coral_dir / "parrot.jpg", d / "e.jpg")
    return d


def test_capture_skips_and_counts_every_bad_file(hostile_folder):
    events = []
    cap = CaptureThread(FolderSource(hostile_folder), on_event=lambda k, m, d: events.append(m))
    cap.start()
    got = []
    while not cap.finished:
        f = cap.take(0.2)
        if f is not None:
            got.append(f)
    assert len(got) == 2 and cap.error is None and cap.ended, events
    # The FIFO is not even listed (find_images takes regular files), so it cannot block.
    assert cap.decode_errors == 2, events
    assert any("b.png" in m for m in events) and any("c.jpg" in m for m in events)


def test_serve_survives_a_bomb_and_reports_it(hostile_folder, small_model, labels_path):
    out = subprocess.run(
        [*edgekit_cmd(), "serve", "--model", str(small_model), "--labels", str(labels_path),
         "--source", str(hostile_folder), "--max-frames", "10"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert sum("frame" in r for r in lines) == 2
    assert sum(r.get("event") == "decode_error" for r in lines) == 2, lines


def test_folder_of_only_bad_files_is_one_error_even_when_looping(tmp_path):
    (tmp_path / "a.png").write_bytes(png_bomb())
    (tmp_path / "b.jpg").write_bytes(b"\xff\xd8 no")
    cap = CaptureThread(FolderSource(tmp_path, loop=True))
    cap.start()
    while not cap.finished:
        cap.take(0.2)
    assert isinstance(cap.error, EdgekitError) and "none of its 2 images" in str(cap.error)


def test_fifo_as_source_or_config_is_refused_not_waited_on(tmp_path, small_model):
    fifo = tmp_path / "clip.avi"
    os.mkfifo(fifo)
    conf = tmp_path / "edgekit.toml"
    os.mkfifo(conf)
    for args, needle in (
        (["--model", str(small_model), "--source", str(fifo)], "not a regular file"),
        (["--config", str(conf)], "not a regular file"),
        (["--model", str(small_model), "--source", str(fifo), "--check"], "not a regular file"),
    ):
        out = subprocess.run([*edgekit_cmd(), "serve", *args], capture_output=True, text=True,
                             timeout=60)  # fmt: skip
        assert out.returncode == 1, (args, out.stderr)
        errors = [ln for ln in out.stderr.splitlines() if ln.startswith("Error:")]
        assert len(errors) == 1 and needle in errors[0], out.stderr
