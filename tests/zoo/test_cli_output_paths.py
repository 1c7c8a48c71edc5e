"""`edgekit zoo build -o` into a place that cannot exist fails before building, in one line."""

from __future__ import annotations

from click.testing import CliRunner

from edgekit.cli import main


def test_zoo_build_under_a_file_is_one_line(tmp_path):
    blocker = tmp_path / "m.h5"
    blocker.write_bytes(b"x")
    r = CliRunner().invoke(main, ["zoo", "build", "inception_lite", "-o", str(blocker / "x.h5")])
    assert r.exit_code == 1, r.output
    assert r.stderr.startswith("Error: ") and "is a file, not a folder" in r.stderr
    assert len(r.stderr.splitlines()) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["m.h5"]
