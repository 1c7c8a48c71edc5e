"""``edgekit convert`` as a user runs it: on a terminal (progress bars drawn, exit 0) and with
stderr redirected to a file (plain progress lines, no bar junk)."""

from __future__ import annotations

import os
import stat

from tests.tty import EDGEKIT, assert_bar_drawn, run_in_pty

from .conftest import GROUP, convert_cli


def test_convert_on_a_terminal_draws_progress_and_exits_0(
    trained, apple_banana_dir, tmp_path, no_compiler_path
):
    out = tmp_path / "bundle"
    args = [
        *EDGEKIT, "convert", trained["h5"], "-o", out, "--calib", apple_banana_dir,
        "--group-pattern", GROUP, "--num-calib", 24, "--num-verify", 12, "--no-compile",
    ]  # fmt: skip
    code, output = run_in_pty(args, timeout=300)
    assert code == 0, output[-3000:]
    assert "Traceback" not in output and "Error" not in output, output[-3000:]
    for stage in ("loading images", "calibrating", "verifying"):
        assert_bar_drawn(output, stage)
    assert "Wrote " in output and (out / "tiny_int8.tflite").is_file()


def test_progress_is_plain_lines_when_stderr_is_not_a_terminal(trained, apple_banana_dir, tmp_path):
    r = convert_cli(trained["h5"], tmp_path / "b", apple_banana_dir, "--no-compile")
    assert r.exit_code == 0, r.stderr
    lines = r.stderr.splitlines()
    assert "\r" not in r.stderr and "[#" not in r.stderr
    for stage in ("loading images", "calibrating", "verifying"):
        assert any(line.startswith(f"{stage}: ") for line in lines), r.stderr
    assert not any(line.strip() in ("loading images", "calibrating", "verifying") for line in lines)


def test_bundle_honours_the_umask(trained, apple_banana_dir, tmp_path):
    old = os.umask(0o022)
    try:
        r = convert_cli(trained["h5"], tmp_path / "b", apple_banana_dir, "--no-compile")
    finally:
        os.umask(old)
    assert r.exit_code == 0, r.stderr
    mode = stat.S_IMODE((tmp_path / "b").stat().st_mode)
    assert mode == 0o755, oct(mode)  # not mkdtemp's 0700: the service user must read it
    for f in (tmp_path / "b").iterdir():
        assert stat.S_IMODE(f.stat().st_mode) & 0o044 == 0o044, (f.name, oct(f.stat().st_mode))
