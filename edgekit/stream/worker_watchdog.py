"""The life of serve's inference worker process (:class:`~edgekit.stream.worker.ModelProcess`
inherits it): spawn the child and wait for its model, wait for each answer under a watchdog,
restart a child that died or hung, stop it and release its handles.

Watchdog: a child that dies (any signal) or does not answer within ``hang_timeout_s`` is killed
and restarted after a backoff (0.5 s doubling to 30 s, reset by a good frame); each event goes
to ``on_event`` (``worker_crashed``, ``worker_hung``, ``worker_restarted``) and the frame is
skipped. More than ``max_restarts`` crashes/hangs within ``restart_window_s`` is a crash loop: a
:class:`~edgekit.stream.pipeline.FatalError` (serve exits 1; systemd restarts the unit). A new
worker that fails to start with an error (no Edge TPU) is not a crash: the error goes to the
caller (ResilientClassifier reopens, then falls back to the CPU or stops).

The child ignores SIGINT/SIGTERM (the parent decides when it stops: Ctrl-C in a terminal and
systemd's stop reach the whole process group) and is SIGKILLed by the kernel if its parent
dies (PR_SET_PDEATHSIG), so it never outlives serve or keeps the Edge TPU locked.
"""

from __future__ import annotations

import collections
import os
import signal
import threading
import time
from multiprocessing.connection import Connection
from typing import Any, Callable

from edgekit.errors import EdgekitError
from edgekit.stream import worker_child
from edgekit.stream.pipeline import FatalError, SkipFrame
from edgekit.stream.worker_proc import (
    RUN_CAUSES,
    START_HINTS,
    alive,
    exitcode_of,
    join,
    kill_group,
    rebuild,
    signal_name,
)
from edgekit.stream.worker_stderr import StderrRelay


class Stopped(Exception):
    """The stop event was set while a worker was loading its model."""


class Watchdog:
    """The child process's management for :class:`~edgekit.stream.worker.ModelProcess`, which
    sets the attributes used here (its ``__init__``)."""

    factory: Callable[[], Any]
    on_event: Callable[[str, str, dict], None]
    hang_timeout_s: float
    start_timeout_s: float
    max_restarts: int
    restart_window_s: float
    backoff_s: float
    backoff_max_s: float
    owner: tuple[int, str]
    device: str | None
    restarts: int
    info: dict
    _ctx: Any
    _proc: Any
    _conn: Any
    _reap: threading.Lock
    _closing: threading.Event
    _stop_event: threading.Event | None
    _recent: collections.deque
    _failures_in_row: int
    _why_none: str
    _relay: StderrRelay

    def _start(self) -> None:
        """Spawn the child and wait for its model. Raises EdgekitError (from the child) or, for
        a crash at load, an EdgekitError naming the signal; Stopped (first start only)."""
        parent, child = self._ctx.Pipe(duplex=True)
        # The child's stderr (and stdout) is this pipe: edgekit.stream.worker_stderr relays it.
        err_r, err_w = os.pipe()
        err = Connection(err_w, readable=False)  # passed to the spawned child like ``child``
        proc = self._ctx.Process(
            target=worker_child.main,
            args=(child, self.factory, self.device, self.owner, err),
            name="edgekit-inference",
            daemon=True,
        )
        # Signal mask is inherited through fork+exec: the child starts with SIGINT/SIGTERM
        # blocked (no KeyboardInterrupt traceback while it imports), then ignores them.
        old = signal.pthread_sigmask(signal.SIG_BLOCK, worker_child.BLOCKED)
        try:
            proc.start()
        except BaseException:
            os.close(err_r)
            raise
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
            err.close()  # only the child (and what it starts) holds the write end now
        child.close()
        self._relay = StderrRelay(err_r).start()
        self._proc, self._conn = proc, parent
        t0 = time.monotonic()
        reply = self._ask(None, self.start_timeout_s, "start", restart=False)
        if reply[0] == "error":
            self._stop_child(2.0, polite=True)
            raise rebuild(reply)
        self.info = reply[1]
        self.info["load_s"] = round(time.monotonic() - t0, 3)

    def _ask(self, request, timeout: float, what: str, restart: bool = True,
             said: float | None = None) -> tuple:  # fmt: skip
        """Send ``request`` (None: just wait) and wait for the answer; a dead or silent child is
        handled here (see module docstring). ``said``: the wait the hang message names."""
        conn, proc = self._conn, self._proc
        if proc is None:  # close() stopped it from another thread
            raise SkipFrame("worker closed")
        pid = proc.pid
        try:
            if request is not None:
                conn.send(request)
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                if conn.poll(max(0.0, min(left, 0.25))):
                    return conn.recv()
                if left <= 0:
                    break
                if self._closing.is_set():  # close() from another thread: no need to wait
                    self._stop_child(0.0, polite=False)
                    raise SkipFrame("worker closed")
                stop = self._stop_event
                if self.info == {} and stop is not None and stop.is_set():  # the first load
                    self._stop_child(0.0, polite=False)
                    raise Stopped(f"stopped while the model was loading ({what})")
            failure = f"no answer within {timeout if said is None else said:g} s ({what})"
            kind = "worker_hung"
        except (EOFError, OSError):
            join(proc, 2.0)
            failure, kind = signal_name(exitcode_of(proc)), "worker_crashed"
        if self._closing.is_set():
            self._stop_child(0.0, polite=False)
            raise SkipFrame("worker closed")
        exitcode = self._stop_child(0.0, polite=False)
        if not restart:  # the model never loaded: nothing to restart, say why
            sig = -exitcode if exitcode is not None and exitcode < 0 else None
            hint = START_HINTS.get(sig, "run `edgekit doctor`; see the log above")
            if kind == "worker_hung":
                hint = "the Edge TPU or its USB link hangs: unplug and replug it; " + hint
            raise EdgekitError(f"the inference worker failed while loading the model: {failure}",
                               hint)  # fmt: skip
        details = {"pid": pid, "exitcode": exitcode, "during": what,
                   "restarts": self.restarts}  # fmt: skip
        cause = RUN_CAUSES.get(-exitcode if exitcode is not None and exitcode < 0 else None)
        cause = f" ({cause})" if cause and kind == "worker_crashed" else ""
        self.on_event(kind, f"inference worker {failure}{cause}; restarting it", details)
        self._restart(failure, crashed=True)
        raise SkipFrame(f"inference worker {failure}")

    def _restart(self, why: str, force: bool = False, crashed: bool = False) -> None:
        """Start a new child after the backoff. Only workers that died or hung (``crashed``)
        count towards the crash-loop limit: a start that fails with an error (no Edge TPU)
        is ResilientClassifier's to handle, with its own bounded reopen attempts."""
        if crashed:
            now = time.monotonic()
            while self._recent and now - self._recent[0] > self.restart_window_s:
                self._recent.popleft()
            if len(self._recent) >= self.max_restarts:
                raise FatalError(
                    f"the inference worker failed {len(self._recent) + 1} times within "
                    f"{self.restart_window_s:g} s (last: {why}); giving up"
                )
            self._recent.append(now)
        self._failures_in_row += 1
        if not force:
            wait = min(self.backoff_s * 2 ** (self._failures_in_row - 1), self.backoff_max_s)
            if self._closing.wait(wait):
                raise SkipFrame("worker closed")
        self.restarts += 1
        try:
            self._start()
        except EdgekitError:
            self._proc = None  # the next run() or reopen() tries again
            self._why_none = "the last restart failed"
            raise
        if self._closing.is_set():  # close() came while the new worker was loading
            self._stop_child(1.0, polite=True)
            raise SkipFrame("worker closed")
        self.on_event("worker_restarted", f"inference worker restarted ({why})",
                      {"pid": self._proc.pid, "restarts": self.restarts,
                       "load_s": self.info.get("load_s")})  # fmt: skip

    def _stop_child(self, timeout: float, polite: bool) -> int | None:
        """Stop the child and close our end of its pipe and its process handles (the sentinel:
        never left to the garbage collector). Returns its exit code."""
        with self._reap:  # close() may kill from another thread meanwhile
            proc, conn = self._proc, self._conn
            if proc is None:
                return None
            if polite and alive(proc):
                try:
                    conn.send(("close",))
                except OSError:
                    pass
                join(proc, timeout)
            if alive(proc):
                kill_group(proc)
                join(proc, 5.0)
            # its last lines (a crash's) out before anything is said about it; the end of the
            # pipe comes at once unless a process the child started still holds it
            self._relay.join(1.0)
            try:
                conn.close()
            except OSError:
                pass
            exitcode = exitcode_of(proc)
            try:
                proc.close()  # the sentinel and the spawn pipe, now
            except ValueError:  # still running after SIGKILL and 5 s: its finalizer closes them
                pass
            if self._proc is proc:
                self._proc = None
            return exitcode
