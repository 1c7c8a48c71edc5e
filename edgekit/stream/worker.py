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

The child's life (start, watchdog, restarts, stop) is :mod:`edgekit.stream.worker_watchdog`;
the child itself :mod:`edgekit.stream.worker_child`.
"""

from __future__ import annotations

import collections
import itertools
import multiprocessing as mp
import os
import threading
import time
from multiprocessing import shared_memory
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np

from edgekit.stream.pipeline import SkipFrame
from edgekit.stream.worker_proc import alive, free_shm, rebuild
from edgekit.stream.worker_proc import signal_name as signal_name  # re-exported
from edgekit.stream.worker_watchdog import Stopped as Stopped  # re-exported
from edgekit.stream.worker_watchdog import Watchdog

EventFn = Callable[[str, str, dict], None]
_SEGMENTS = itertools.count(1)
DEPTH = 2  # frames in flight a worker takes (submit/collect)


class ModelProcess(Watchdog):
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

    # -- frame slots ------------------------------------------------------------------------
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
