"""A worker process with frames in flight: :class:`PipelinedProcess` (a
:class:`~edgekit.stream.worker.ModelProcess` with ``submit(rgb)`` / ``collect()``).

The parent copies frame n+1 into the second shared-memory slot and queues its request while the
child runs frame n, so the child finds its next frame waiting the moment an invoke ends and the
device never waits for the two process wake-ups of a round trip (docs/DESIGN.md, "Several Edge
TPUs"). The crash/hang watchdog, restarts and the crash-loop limit are ModelProcess's own.
"""

from __future__ import annotations

import functools
import os
from multiprocessing import shared_memory
from typing import Any, Callable

import numpy as np

from edgekit.stream.pipeline import SkipFrame
from edgekit.stream.worker import _SEGMENTS, ModelProcess, _rebuild, free_shm

DEPTH = 2  # frames in flight per worker


class PipelinedProcess(ModelProcess):
    """A model in a worker process that takes up to ``depth`` frames at once:
    ``submit(rgb)`` then ``collect()`` -> the record of the oldest submitted frame. A crash or
    hang (SkipFrame from ``collect``) loses every frame in flight; the worker is restarted.
    ``device`` is what a restart and ``reopen()`` open (the factory is called with it)."""

    def __init__(self, factory: Callable[..., Any], device: str | None = None,
                 depth: int = DEPTH, **kw):  # fmt: skip
        self.depth = max(1, int(depth))
        self.inflight = 0
        self._slots: list[shared_memory.SharedMemory | None] = [None] * self.depth
        self._next_slot = 0
        if device is not None:
            factory = functools.partial(factory, device=device)
        super().__init__(factory, **kw)
        self.device = device  # a restart or reopen() opens the same device

    def submit(self, rgb: np.ndarray) -> None:
        """Queue one (H, W, 3) uint8 frame (at most ``depth`` before a ``collect``)."""
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        with self._io:
            if self._closing.is_set():
                raise SkipFrame("worker closed")
            if self.inflight >= self.depth:
                raise RuntimeError(f"more than {self.depth} frames in flight")
            if self._proc is None:  # a restart failed earlier: try again now
                self._restart("the last restart failed")
            # Slots are reused round robin: slot k is free again once its frame was collected
            # (answers come in order and at most `depth` frames are in flight).
            k, self._next_slot = self._next_slot, (self._next_slot + 1) % self.depth
            shm = self._slot_k(k, rgb.nbytes)
            np.ndarray(rgb.shape, np.uint8, buffer=shm.buf)[...] = rgb
            self.inflight += 1
            try:
                self._conn.send(("frame", shm.name, rgb.shape))
            except OSError:  # the child died: collect() finds out and restarts it
                pass

    def collect(self) -> Any:
        """The record of the oldest frame in flight (the model's exception for it, SkipFrame
        after a crash/hang, FatalError for a crash loop)."""
        with self._io:
            if self.inflight <= 0:
                raise RuntimeError("no frame in flight")
            try:
                reply = self._ask(None, self.hang_timeout_s, "frame")
            except BaseException:
                self.inflight = 0  # the child and every frame in it are gone
                raise
            self.inflight -= 1
        if reply[0] == "ok":
            self._failures_in_row = 0
            return reply[1]
        raise _rebuild(reply)

    def _slot_k(self, k: int, nbytes: int) -> shared_memory.SharedMemory:
        shm = self._slots[k]
        if shm is None or shm.size < nbytes:
            if shm is not None:
                free_shm(shm)
            name = f"edgekit-{os.getpid()}-{next(_SEGMENTS)}"
            shm = self._slots[k] = shared_memory.SharedMemory(name=name, create=True,
                                                              size=nbytes)  # fmt: skip
        return shm

    def _free_shm(self) -> None:
        super()._free_shm()
        slots, self._slots = self._slots, [None] * self.depth
        for shm in slots:
            if shm is not None:
                free_shm(shm)
