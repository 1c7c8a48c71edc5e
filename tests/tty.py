"""Run a command the way a user does: stdin, stdout and stderr on a pseudo-terminal.

Tests otherwise run without a terminal, so code that only runs on one (progress bars, colour,
``isatty`` branches) would never be exercised.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

EDGEKIT = [str(Path(sys.executable).with_name("edgekit"))]  # the console script users run
ROOT = Path(__file__).resolve().parent.parent


def run_in_pty(
    args, timeout: float = 300, env: dict | None = None, cwd=None, stop_after: float | None = None
) -> tuple[int, str]:
    """Run ``args`` with a pseudo-terminal as its controlling terminal and stdio.

    Returns (exit status, everything written to the terminal, CRs kept). A negative status is
    a signal. ``stop_after`` sends SIGTERM after that many seconds (long-running commands)."""
    master, slave = pty.openpty()
    full_env = {**os.environ, "COLUMNS": "100", "LINES": "30", "TERM": "xterm"}
    full_env.update(env or {})
    proc = subprocess.Popen(
        [str(a) for a in args], stdin=slave, stdout=slave, stderr=slave, cwd=cwd,
        env=full_env, start_new_session=True, close_fds=True,
    )  # fmt: skip
    os.close(slave)
    chunks: list[bytes] = []
    start = time.monotonic()
    stopped = False
    try:
        while True:
            elapsed = time.monotonic() - start
            if elapsed > timeout:
                proc.kill()
                raise AssertionError(f"{args} still running after {timeout} s: {_text(chunks)}")
            if stop_after is not None and not stopped and elapsed > stop_after:
                proc.send_signal(signal.SIGTERM)
                stopped = True
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every holder of the slave side has closed it
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                # Exited; drain what is left without blocking.
                while select.select([master], [], [], 0.05)[0]:
                    try:
                        data = os.read(master, 65536)
                    except OSError:
                        data = b""
                    if not data:
                        break
                    chunks.append(data)
                break
        return proc.wait(timeout=30), _text(chunks)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _text(chunks: list[bytes]) -> str:
    return b"".join(chunks).decode("utf-8", "replace")


def assert_bar_drawn(output: str, label: str) -> None:
    """A click progress bar for ``label`` was redrawn in place and reached 100%."""
    lines = [seg for seg in output.replace("\n", "\r").split("\r") if label in seg]
    assert len(lines) >= 2, f"no progress bar for {label!r} in:\n{output[-3000:]}"
    assert any("100%" in seg and "[" in seg and "#" in seg for seg in lines), lines[-3:]
