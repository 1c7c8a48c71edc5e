"""Outputs never replace a device, FIFO or socket (issue 15 campaign): the atomic rename put a
regular file in their place, so ``bench --plot /dev/null`` run as root replaced the machine's
/dev/null with a PNG. Now refused in one line before any work; through a symlink the file it
names is written and the link stays. FIFOs and sockets stand in for devices here (creating a
device node needs root)."""

from __future__ import annotations

import os
import socket
import stat

import pytest

from edgekit import atomic
from edgekit.errors import EdgekitError

from .conftest import TINY, cli


def _special(kind: str, tmp_path):
    if kind == "fifo":
        p = tmp_path / "fifo"
        os.mkfifo(p)
        return p, None
    if kind == "socket":
        p = tmp_path / "sock"
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(p))
        return p, s
    target, _ = _special("fifo", tmp_path)  # a symlink to a FIFO
    link = tmp_path / "link.png"
    link.symlink_to(target)
    return link, None


KINDS = ["fifo", "socket", "symlink-to-fifo"]


@pytest.mark.parametrize("kind", KINDS)
def test_bench_plot_to_a_special_file_is_refused_before_running(kind, tmp_path):
    path, keep = _special(kind, tmp_path)
    try:
        r = cli("bench", TINY, "--runs", "1", "--warmup", "0", "--plot", path)
        assert r.exit_code == 1 and "steady" not in r.output, r.output
        line = r.output.strip().splitlines()[-1]
        assert "not a file; edgekit writes only regular files" in line, line
        assert not stat.S_ISREG(os.stat(path).st_mode)  # still what it was
        assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []
    finally:
        if keep is not None:
            keep.close()


@pytest.mark.parametrize("kind", KINDS)
def test_atomic_write_refuses_a_special_file(kind, tmp_path):
    path, keep = _special(kind, tmp_path)
    try:
        with pytest.raises(EdgekitError, match="not a file"):
            atomic.write_bytes(path, b"x")
        assert not stat.S_ISREG(os.stat(path).st_mode)
    finally:
        if keep is not None:
            keep.close()


def test_atomic_write_through_a_symlink_keeps_the_link(tmp_path):
    target = tmp_path / "real.txt"
    target.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    atomic.write_text(link, "new")
    assert link.is_symlink() and target.read_text() == "new"


def test_the_article_before_a_vowel(tmp_path):
    """'is a folder, not an image file', not 'not a image file'."""
    from edgekit.errors import EdgekitError
    from edgekit.images import load_rgb

    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    with pytest.raises(EdgekitError) as e:
        load_rgb(fifo)
    assert "is a FIFO (named pipe), not an image file" in e.value.message, e.value.message
