"""The inference worker process: serve's model runs in a child that may die without taking the
service with it.

libedgetpu is native code that can segfault (an ABI mismatch), abort (a second process opened
the Coral: "USB transfer error 5") or hang inside ``invoke()``. :class:`ModelProcess` keeps the
model in a child process started with the ``spawn`` context (a fresh interpreter: never fork a
process whose threads hold native locks) and is a drop-in for the model object itself:
``run(rgb)``/``classify(rgb)`` -> the model's own result record, ``reopen(device)``, ``close()``,
``runner.backend``/``runner.device``, ``input_size``/``resize``.

Frames in flight: ``submit(rgb)`` / ``collect()`` (answers in submit order) keep up to ``depth``
(2) frames in the worker, so the child finds frame n+1 in its pipe the moment invoke n ends and
the device never waits for the parent's wake-up, copy and send (serve's pool does this:
edgekit.stream.pool); ``run`` is one submit and its collect. Frames go through shared memory
(``multiprocessing.shared_memory``, one slot per frame in flight, the lowest free one taken, so
``run`` alone uses one; sized from the first frame, normally the model input size since the
capture thread resizes, and regrown if a bigger frame comes); requests and results are small
pickled tuples over a pipe. The child builds its model from a picklable ``factory`` (e.g.
``functools.partial(Classifier, path, device="usb")``).

Descriptors are released when they are done with, never left to the garbage collector: a
stopped child's pipe end and its ``Process`` handles (sentinel) at once, the frame slots at
``close()`` (also when another thread is still waiting for an answer: the kill wakes it first).

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
import itertools
import multiprocessing as mp
import os
import signal
import threading
import time
from multiprocessing import shared_memory
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.stream import worker_child
from edgekit.stream.pipeline import FatalError, SkipFrame
from edgekit.stream.worker_proc import (
    RUN_CAUSES,
    START_HINTS,
    alive,
    exitcode_of,
    free_shm,
    join,
    kill_group,
    rebuild,
    signal_name,
)

EventFn = Callable[[str, str, dict], None]
_SEGMENTS = itertools.count(1)
DEPTH = 2  # frames in flight a worker takes (submit/collect)


class Stopped(Exception):
    """The stop event was set while a worker was loading its model."""


class ModelProcess:
    """A model living in a worker process (see module docstring).

    Args:
        factory: picklable callable building the model in the child (called with
            ``device=...`` after a ``reopen(device=...)``, e.g. a functools.partial of
            Classifier or open_task_model); the model has
            ``run(rgb)`` or ``classify(rgb)``, optionally ``reopen(device=None)``, ``close()``,
            ``runner`` (``.backend``, ``.device``, ``.provider``), ``input_size``, ``resize``.
        on_event: ``(kind, message, details)``; settable later (serve sets it to the
            pipeline's reporter).
        hang_timeout_s: longest wait for one result before the worker counts as hung.
        start_timeout_s: longest wait for the model to load (the Edge TPU probe included).
        max_restarts, restart_window_s: the crash-loop limit.
        backoff_s, backoff_max_s: first and largest wait before a restart.
        owner: (pid, command) the child records in the Edge TPU lock file (default: ours).
        stop: when set while a model loads, the worker is killed and :class:`Stopped` raised
            (serve's SIGTERM during a slow or hung Edge TPU open).
        device: the device the child opens (the factory is called with ``device=``; None: the
            factory's own); a restart opens it again, ``reopen(device)`` changes it.
        depth: frames in flight ``submit`` takes before a ``collect``.
    """

    def __init__(
        self,
        factory: Callable[[], Any],
        on_event: EventFn | None = None,
        hang_timeout_s: float = 10.0,
        start_timeout_s: float = 120.0,
        max_restarts: int = 5,
        restart_window_s: float = 600.0,
        backoff_s: float = 0.5,
        backoff_max_s: float = 30.0,
        owner: tuple[int, str] | None = None,
        stop: threading.Event | None = None,
        device: str | None = None,
        depth: int = DEPTH,
    ):
        from edgekit.backends import devicelock

        self.factory = factory
        self.on_event = on_event or (lambda kind, message, details: None)
        self.hang_timeout_s, self.start_timeout_s = float(hang_timeout_s), float(start_timeout_s)
        self.max_restarts, self.restart_window_s = int(max_restarts), float(restart_window_s)
        self.backoff_s, self.backoff_max_s = float(backoff_s), float(backoff_max_s)
        self.owner = owner or devicelock.owner()
        self.device = device  # a reopen(device=...) sticks for later restarts
        self.depth = max(1, int(depth))
        self.restarts = 0
        self.info: dict = {}
        self._ctx = mp.get_context("spawn")
        self._proc: Any = None
        self._conn: Any = None
        self._slots: list[shared_memory.SharedMemory | None] = [None] * self.depth
        self._busy: collections.deque[int] = collections.deque()  # slots in flight, in order
        self._io = threading.Lock()  # one request/answer at a time on the pipe
        self._reap = threading.Lock()  # one stop of the child at a time
        self._closing = threading.Event()
        self._stop_event = stop
        self._recent: collections.deque[float] = collections.deque()
        self._failures_in_row = 0
        self._why_none = "the last restart failed"  # why a submit finds no child
        self._start()

    # -- the model's interface ------------------------------------------------------------------
    @property
    def runner(self) -> SimpleNamespace:
        return SimpleNamespace(**{k: self.info.get(k, "?") for k in ("backend", "device",
                                                                     "provider")})  # fmt: skip

    @property
    def input_size(self) -> tuple[int, int] | None:
        size = self.info.get("input_size")
        return tuple(size) if size else None

    @property
    def resize(self) -> str | None:
        return self.info.get("resize")

    @property
    def task(self) -> str:
        return str(self.info.get("task", "classify"))

    @property
    def pid(self) -> int | None:
        proc = self._proc
        try:
            return proc.pid if proc is not None else None
        except ValueError:  # closed by another thread this moment
            return None

    @property
    def inflight(self) -> int:
        """Frames submitted and not yet collected."""
        return len(self._busy)

    def run(self, rgb: np.ndarray) -> Any:
        """The model's result for one (H, W, 3) uint8 frame. Raises what the model raised
        (EdgekitError keeps its message and hint), SkipFrame after a crash/hang (the worker was
        restarted), FatalError for a crash loop."""
        self.submit(rgb)
        return self.collect()

    classify = run

    def submit(self, rgb: np.ndarray) -> None:
        """Queue one (H, W, 3) uint8 frame (at most ``depth`` before a ``collect``)."""
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        with self._io:
            if self._closing.is_set():
                raise SkipFrame("worker closed")
            if len(self._busy) >= self.depth:
                raise RuntimeError(f"more than {self.depth} frames in flight")
            if self._proc is None:  # a restart failed earlier, or abandon() stopped it
                self._restart(self._why_none)
            # Answers come in submit order, so a slot is free again once its frame's answer
            # is collected; the lowest free one: one frame at a time uses one segment.
            k = min(set(range(self.depth)) - set(self._busy))
            shm = self._slot(k, rgb.nbytes)
            np.ndarray(rgb.shape, np.uint8, buffer=shm.buf)[...] = rgb
            self._busy.append(k)
            try:
                self._conn.send(("frame", shm.name, rgb.shape))
            except OSError:  # the child died: collect() finds out and restarts it
                pass

    def collect(self, timeout: float | None = None) -> Any:
        """The record of the oldest frame in flight (the model's exception for it, SkipFrame
        after a crash/hang: every frame in flight is lost, FatalError for a crash loop).
        ``timeout``: the rest of the ``hang_timeout_s`` wait when the caller waited already."""
        with self._io:
            if not self._busy:
                raise RuntimeError("no frame in flight")
            try:
                wait = self.hang_timeout_s if timeout is None else timeout
                reply = self._ask(None, wait, "frame", said=self.hang_timeout_s)
            except BaseException:
                self._busy.clear()  # the child and every frame in it are gone
                raise
            self._busy.popleft()
        if reply[0] == "ok":
            self._failures_in_row = 0
            return reply[1]
        raise rebuild(reply)

    def abandon(self, wait_s: float = 1.0) -> None:
        """Forget the frames in flight (a pipeline stopped, the model is kept): answers that
        come within ``wait_s`` are read and dropped; a child that keeps a frame longer (hung)
        is stopped, and the next ``submit`` starts a new one."""
        with self._io:
            deadline = time.monotonic() + wait_s
            while self._busy and self._proc is not None:
                try:
                    if not self._conn.poll(max(0.0, deadline - time.monotonic())):
                        raise TimeoutError
                    self._conn.recv()
                    self._busy.popleft()
                except (EOFError, OSError):  # TimeoutError too
                    self._stop_child(0.0, polite=False)
                    self._why_none = "it was stopped with a frame in flight"
            self._busy.clear()

    def reopen(self, device: str | None = None) -> None:
        """Reopen the model in the worker (on ``device`` if given); a dead worker is restarted."""
        if device is not None:
            self.device = device
        with self._io:
            if self._proc is None or not alive(self._proc):
                self._restart("reopen requested", force=True)
                return
            reply = self._ask(("reopen", device), self.start_timeout_s, "reopen")
        if reply[0] == "error":
            raise rebuild(reply)
        self.info = reply[1]

    def close(self, timeout: float = 2.0) -> None:
        """Stop the worker (politely, then SIGKILL), unlink the shared memory and close every
        descriptor. Safe from any thread, also while another thread waits for a result (the
        kill wakes it; that call then skips its frame)."""
        self._closing.set()
        locked = self._io.acquire(timeout=0.2)
        if not locked:  # a frame is in flight: the kill wakes the waiting thread, which
            self._stop_child(0.0, polite=False)  # then lets go of the pipe
            locked = self._io.acquire(timeout=5.0)
        try:
            self._stop_child(timeout, polite=True)
            self._free_shm()
        finally:
            if locked:
                self._io.release()

    # -- process management ---------------------------------------------------------------------
    def _start(self) -> None:
        """Spawn the child and wait for its model. Raises EdgekitError (from the child) or, for
        a crash at load, an EdgekitError naming the signal; Stopped (first start only)."""
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(
            target=worker_child.main,
            args=(child, self.factory, self.device, self.owner),
            name="edgekit-inference",
            daemon=True,
        )
        # Signal mask is inherited through fork+exec: the child starts with SIGINT/SIGTERM
        # blocked (no KeyboardInterrupt traceback while it imports), then ignores them.
        old = signal.pthread_sigmask(signal.SIG_BLOCK, worker_child.BLOCKED)
        try:
            proc.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        child.close()
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

    def _slot(self, k: int, nbytes: int) -> shared_memory.SharedMemory:
        shm = self._slots[k]
        if shm is None or shm.size < nbytes:
            if shm is not None:
                free_shm(shm)
            name = f"edgekit-{os.getpid()}-{next(_SEGMENTS)}"
            shm = self._slots[k] = shared_memory.SharedMemory(name=name, create=True,
                                                              size=nbytes)  # fmt: skip
        return shm

    def _free_shm(self) -> None:
        slots, self._slots = self._slots, [None] * self.depth
        self._busy.clear()
        for shm in slots:
            if shm is not None:
                free_shm(shm)
