"""``detect --annotate DIR`` refused before any work names DIR, the folder the user gave. Before:
"Error: /sys/kernel/out/x.png: cannot write in /sys/kernel" (x.png: the name edgekit probes
the folder with, never given by the user)."""

from __future__ import annotations

import pytest

from .conftest import TINY, cli


@pytest.mark.parametrize("where, says", [
    ("/sys/kernel/edgekit-annotated", "cannot write in /sys/kernel"),
    ("{photo}/annotated", "is a file, not a folder"),
])  # fmt: skip
def test_an_annotate_folder_that_cannot_be_written_is_named(photo, where, says):
    folder = where.format(photo=photo)
    r = cli("detect", TINY, photo, "-d", "cpu", "--annotate", folder)
    assert r.exit_code == 1, r.output
    last = r.output.strip().splitlines()[-1]
    assert last.startswith(f"Error: --annotate {folder}: ") and says in last, r.output
    assert "x.png" not in r.output
