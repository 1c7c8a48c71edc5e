"""The inference worker's stderr, read by serve through a pipe and forwarded line by line to
serve's own stderr (the terminal, or the journal under systemd), except LiteRT's banner.

Why: on the Edge TPU path a model with CPU ops makes LiteRT print "INFO: Created TensorFlow
Lite XNNPACK delegate for CPU." when it opens, in every worker start. The CPU path diverts fd 2
around the interpreter's creation (:func:`edgekit.backends.providers.quiet_native_stderr`), but
doing that in the worker around libedgetpu's load would also hold back libedgetpu's own
diagnostics until the block ends, and a crash inside it (SIGSEGV, abort) ends it never: the
lines that say why would be lost. Here the child writes straight into the pipe (C's stderr is
unbuffered, Python's is line-buffered and logging flushes each record) and the parent, which is
alive when its worker crashes, drains the pipe to its end: every line a worker wrote before it
died is forwarded, and the watchdog waits for that (:meth:`StderrRelay.join`) before it reports
the crash, so the worker's last words come before serve's ``worker_crashed`` line.

The relay never stops reading while the child lives (a full pipe would block the child's next
write, libedgetpu's included); a line it cannot forward (our stderr closed) is dropped.
"""

from __future__ import annotations

import os
import threading

# Exactly this line and nothing else is dropped (the CPU path drops the same banner).
BANNER = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
MAX_LINE = 65536  # bytes: a longer run without a newline is forwarded as it is


class StderrRelay:
    """Forwards what the worker writes to the pipe's read end ``fd`` (owned: closed at its end)
    to ``out`` (a file descriptor, default 2) from a daemon thread, until end of file."""

    def __init__(self, fd: int, out: int = 2):
        self._fd, self._out = fd, out
        self._thread = threading.Thread(target=self._run, name="edgekit-worker-stderr",
                                        daemon=True)  # fmt: skip

    def start(self) -> StderrRelay:
        self._thread.start()
        return self

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the end of the worker's output (every process holding
        the pipe's write end gone). True when it came."""
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        rest = b""
        try:
            while True:
                try:
                    chunk = os.read(self._fd, 65536)
                except InterruptedError:
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                *lines, rest = (rest + chunk).split(b"\n")
                kept = [line + b"\n" for line in lines if line.rstrip(b"\r") != BANNER]
                if len(rest) > MAX_LINE:
                    kept.append(rest)
                    rest = b""
                self._write(b"".join(kept))
            if rest and rest.rstrip(b"\r") != BANNER:  # the last words of a crash: no newline
                self._write(rest + b"\n")
        finally:
            os.close(self._fd)

    def _write(self, data: bytes) -> None:
        while data:
            try:
                data = data[os.write(self._out, data):]
            except InterruptedError:
                continue
            except OSError:  # our stderr is gone: keep draining the worker's, drop the rest
                return

