"""SIGTERM (systemd stop, `kill`) during `edgekit convert` behaves like Ctrl-C: one line, exit
143, no half-written bundle or temporary folder, and the compiler (which runs in its own session,
so it never sees the signal itself) is stopped too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from .conftest import FAKE_COMPILER


def test_sigterm_while_compiling_cleans_up(trained, apple_banana_dir, tmp_path):
    args_file = tmp_path / "compiler_started"
    env = dict(os.environ, FAKE_EDGETPU_MODE="hang", FAKE_EDGETPU_ARGS_FILE=str(args_file))
    cmd = [sys.executable, "-c", "from edgekit.cli import run; run()", "convert", trained["h5"],
           "-o", tmp_path / "out", "--calib", apple_banana_dir, "--num-calib", "20",
           "--num-verify", "10", "--compiler", FAKE_COMPILER]  # fmt: skip
    proc = subprocess.Popen([str(c) for c in cmd], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not args_file.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert args_file.exists(), proc.communicate(timeout=60)
        assert any(p.name.startswith(".out.tmp-") for p in tmp_path.iterdir())  # mid-write
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and out == ""
    assert err.splitlines()[-1] == "Terminated."
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compiler_started"]
    time.sleep(0.2)
    assert str(tmp_path) not in os.popen("ps -eo args").read()  # the hung compiler is gone
