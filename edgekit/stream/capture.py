"""The capture thread: reads a :class:`~edgekit.stream.sources.Source` and keeps only the newest
frame for the inference worker (Coral's examples-camera design, without GStreamer).

Live sources (cameras, streams) are read continuously, so the driver's buffers never fill with
old frames; when the worker is busy, the waiting frame is replaced by the newer one and counted
as dropped: latency stays one frame, never a queue. Finite sources (files, folders) wait for the
worker instead (back-pressure): every frame is classified, and decoding the next frame still
overlaps inference of the current one. ``realtime=True`` paces a file at its native fps to
behave like a camera (with drops).

Faults never escape the thread: a lost source is closed and reopened with exponential backoff,
an undecodable frame is skipped; each is counted and reported through ``on_event``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from edgekit.stream.sources import EndOfStream, FrameDecodeError, Source, SourceLost


@dataclass(frozen=True)
class Frame:
    """One captured frame. ``rgb`` is (H, W, 3) uint8; ``timestamp`` the capture time in seconds
    since the epoch; ``mono`` the same instant on the monotonic clock (for latency); ``index``
    counts frames read from the source since start, from 1 (gaps = dropped frames);
    ``prepared`` is the output of the capture thread's ``prepare`` hook (None without one)."""

    rgb: np.ndarray = field(repr=False)
    timestamp: float
    mono: float
    index: int
    prepared: Any = field(default=None, repr=False)


class FrameSlot:
    """A one-frame mailbox: ``put`` replaces (and counts as dropped) a frame nobody took."""

    def __init__(self):
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._closed = False
        self.dropped = 0
        self.discarded = 0  # frames read but not stored because serve was stopping

    def put(self, frame: Frame, wait: bool = False, stop: threading.Event | None = None) -> None:
        """Store ``frame``. With ``wait``, first wait until the previous one was taken."""
        with self._cond:
            while wait and self._frame is not None and not self._closed:
                if stop is not None and stop.is_set():
                    self.discarded += 1  # counted: every frame read is accounted for
                    return
                self._cond.wait(0.1)
            if wait and self._frame is not None:  # closed while waiting: serve is stopping
                self.discarded += 1  # this frame is unprocessed, the one waiting is not dropped
                return
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self._cond.notify_all()

    def take(self, timeout: float) -> Frame | None:
        """The newest frame, or None after ``timeout`` seconds or once closed and empty."""
        with self._cond:
            if self._frame is None and not self._closed:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            self._cond.notify_all()
            return frame

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


EventFn = Callable[[str, str, dict], None]


class CaptureThread:
    """Runs ``source`` in a daemon thread and feeds a :class:`FrameSlot`.

    Args:
        source: the frame source (opened and closed by this thread).
        on_event: ``(kind, message, details)`` for ``source_lost``, ``source_reconnected``,
            ``decode_error``, ``source_failed``. Called from this thread.
        realtime: pace finite sources at their native fps and drop frames like a camera.
        backoff_s, backoff_max_s: first and largest wait between reconnection attempts; the
            wait doubles after each failed attempt and resets after a frame arrives.
        prepare: optional ``rgb -> anything`` run here, in the capture thread, on every frame
            (e.g. the resize to the model's input size): it then overlaps inference instead of
            adding to it. The camera code does not know what it does.
    """

    def __init__(
        self,
        source: Source,
        on_event: EventFn | None = None,
        realtime: bool = False,
        backoff_s: float = 0.5,
        backoff_max_s: float = 30.0,
        prepare: Callable[[np.ndarray], Any] | None = None,
    ):
        self.source = source
        self.prepare = prepare
        self.slot = FrameSlot()
        self.on_event = on_event or (lambda kind, message, details: None)
        self.realtime = realtime
        self.backoff_s, self.backoff_max_s = backoff_s, backoff_max_s
        self.frames_read = 0
        self.decode_errors = 0
        self.reconnects = 0  # times the source was lost (each followed by reopen attempts)
        self.error: BaseException | None = None  # fatal (not retryable) error, e.g. bad file
        self.ended = False
        # Why frames do (not) arrive, for the status page: (state, detail), state one of
        # opening | running | reconnecting | ended | failed.
        self.state: tuple[str, str] = ("opening", f"opening {source.name}")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edgekit-capture", daemon=True)

    def start(self) -> CaptureThread:
        self._thread.start()
        return self

    def stop(self, timeout: float = 1.0) -> None:
        """Ask the thread to stop and wait up to ``timeout`` s. A camera stuck inside a driver
        call cannot be interrupted; the thread is a daemon so it never blocks process exit."""
        self._stop.set()
        self.slot.close()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def take(self, timeout: float = 0.5) -> Frame | None:
        return self.slot.take(timeout)

    @property
    def finished(self) -> bool:
        """True once the thread ended and its last frame was taken."""
        return self.slot.closed and not self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as e:  # a fatal source error (EdgekitError) or a bug
            self.error = e
            self.state = ("failed", f"{self.source.name}: {e}")
            self.on_event("source_failed", str(e), {})
        finally:
            try:
                self.source.close()
            finally:
                self.slot.close()

    def _loop(self) -> None:
        backoff, opened, lost = self.backoff_s, False, False
        wait_for_consumer = not self.source.live and not self.realtime
        next_due = time.monotonic()
        while not self._stop.is_set():
            if not opened:
                try:
                    self.source.open()
                    opened = True
                except SourceLost as e:
                    if not lost:  # a camera absent at start counts as lost once
                        self.reconnects += 1
                        lost = True
                    self.state = ("reconnecting", f"{e}; retrying in {backoff:g} s")
                    self.on_event(
                        "source_lost", str(e), {"retry_in_s": backoff, "count": self.reconnects}
                    )
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, self.backoff_max_s)
                    continue
            try:
                rgb = self.source.read()
            except FrameDecodeError as e:
                self.decode_errors += 1
                self.on_event("decode_error", str(e), {"count": self.decode_errors})
                continue
            except EndOfStream:
                self.ended = True  # reported by the pipeline after the last result
                self.state = ("ended", f"{self.source.name}: the source ended")
                return
            except SourceLost as e:
                self.reconnects += 1
                self.source.close()
                opened, lost = False, True
                self.state = ("reconnecting", f"{e}; retrying in {backoff:g} s")
                self.on_event(
                    "source_lost", str(e), {"retry_in_s": backoff, "count": self.reconnects}
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.backoff_max_s)
                continue
            now_wall, now_mono = time.time(), time.monotonic()
            if lost:
                lost = False
                self.on_event("source_reconnected", f"{self.source.name}: frames again", {})
            backoff = self.backoff_s
            if self.state[0] != "running":
                self.state = ("running", "")
            self.frames_read += 1
            prepared = self.prepare(rgb) if self.prepare is not None else None
            frame = Frame(rgb, now_wall, now_mono, self.frames_read, prepared)
            self.slot.put(frame, wait=wait_for_consumer, stop=self._stop)
            if self.realtime and not self.source.live and self.source.fps > 0:
                next_due = max(next_due + 1.0 / self.source.fps, now_mono - 1.0)
                self._stop.wait(max(0.0, next_due - time.monotonic()))
