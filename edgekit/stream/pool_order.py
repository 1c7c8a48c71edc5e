"""Frame order across devices: the capture slot that numbers the frames as the device threads
take them (:class:`CountingSlot`) and the reorder buffer that delivers results in that order
(:class:`Reorder`), giving up on a frame a stalled device holds after ``max_wait_s``.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable

from edgekit.stream.capture import FrameSlot


class Reorder:
    """Delivers results in frame (dispatch) order: ``put(seq, frame, out)`` (``out`` None: the
    frame was skipped). A missing frame holds the later ones back at most ``max_wait_s``
    seconds or ``max_ahead`` results; then it is given up and its result, when it comes, is
    dropped (``late``). ``max_frames`` > 0 stops delivering after that many results."""

    def __init__(self, deliver: Callable[[Any, Any], None], max_frames: int = 0,
                 max_wait_s: float = 1.0, max_ahead: int = 64,
                 lost: Callable[[str], None] = lambda why: None):  # fmt: skip
        self.deliver, self.max_frames, self.lost = deliver, int(max_frames or 0), lost
        self.max_wait_s, self.max_ahead = max_wait_s, max_ahead
        self.next = 1
        self.delivered = self.late = 0
        self.full = threading.Event()
        self._ready: dict[int, tuple] = {}
        self._lock = threading.Lock()

    def put(self, seq: int, frame: Any, out: Any) -> None:
        with self._lock:
            if seq < self.next:
                self.late += 1
                if out is not None:  # a result given up on: failed (a skip was counted)
                    self.lost("late")
                return
            self._ready[seq] = (frame, out, time.monotonic())
            self._flush()

    def expire(self) -> None:
        with self._lock:
            self._flush()

    @property
    def waiting(self) -> int:
        return len(self._ready)

    def _flush(self) -> None:
        while True:
            item = self._ready.pop(self.next, None)
            if item is not None:
                self.next += 1
                frame, out, _ = item
                if out is not None and not self.full.is_set():
                    self.deliver(frame, out)
                    self.delivered += 1
                    if self.max_frames and self.delivered >= self.max_frames:
                        self.full.set()
                elif out is not None:  # stopping (or max_frames reached): not a result
                    self.lost("unprocessed")
                continue
            if not self._ready:
                return
            oldest = min(t for _, _, t in self._ready.values())
            if len(self._ready) <= self.max_ahead and time.monotonic() - oldest <= self.max_wait_s:
                return
            self.next += 1  # give up on the missing frame (a stalled or restarting device)


class CountingSlot(FrameSlot):
    """The capture thread's one-frame mailbox, shared by the device threads: ``take_counted``
    numbers frames in the order they are taken (1, 2, ...: the reorder buffer's sequence, no
    gaps), and every ``put`` wakes the device threads through their :class:`WakePipe`."""

    def __init__(self, wakes: list[WakePipe] | None = None):
        super().__init__()
        self.wakes: list[WakePipe] = list(wakes or [])
        self.taken = 0

    def put(self, frame, wait: bool = False, stop=None) -> None:
        super().put(frame, wait, stop)
        self.wake_all()

    def wake_all(self) -> None:
        for wake in list(self.wakes):
            wake.poke()

    def take_counted(self, timeout: float) -> tuple[int, Any] | None:
        with self._cond:
            if self._frame is None and not self._closed and timeout > 0:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            if frame is None:
                return None
            self.taken += 1
            self._cond.notify_all()
            return self.taken, frame

    @property
    def empty(self) -> bool:
        return self._frame is None


class WakePipe:
    """A device thread's wake-up pipe (two descriptors, non-blocking): ``poke()`` from any
    thread, ``select`` on it (``fileno``), ``drain()``, ``close()`` by its thread as it ends.
    A poke after the close does nothing (never a write to a reused descriptor number)."""

    def __init__(self):
        self._r, self._w = os.pipe()
        for fd in (self._r, self._w):
            os.set_blocking(fd, False)
        self._lock = threading.Lock()
        self.closed = False

    def fileno(self) -> int:
        return self._r

    def poke(self) -> None:
        with self._lock:
            if not self.closed:
                try:
                    os.write(self._w, b"\0")
                except OSError:  # full: already woken
                    pass

    def drain(self) -> None:
        try:
            while os.read(self._r, 512):
                pass
        except OSError:  # empty (BlockingIOError)
            pass

    def close(self) -> None:
        with self._lock:
            if not self.closed:
                self.closed = True
                os.close(self._r)
                os.close(self._w)
