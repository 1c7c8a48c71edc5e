"""The inference worker: takes the newest frame, calls ``infer`` on it, hands results to sinks.

The pipeline knows nothing about models: ``infer(rgb)`` is any callable returning a record with
``inference_ms`` and ``to_dict()`` (a :class:`~edgekit.classify.Classification` with
``"classes"``, or a detection record with ``"detections"``); the :class:`Result` is built from
that dict alone. Sinks are callbacks (see :mod:`edgekit.stream.sinks`): ``on_result(Result)``
and ``on_event(Event)``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, Callable

import numpy as np

from edgekit.stream.capture import CaptureThread
from edgekit.stream.pipeline_results import Event, Result, Smoother, build_result
from edgekit.stream.stats import Stats

log = logging.getLogger("edgekit.stream")

__all__ = ["Event", "FatalError", "Pipeline", "Result", "SkipFrame", "Smoother", "build_result"]


class FatalError(Exception):
    """Raised by ``infer`` when the pipeline must stop (e.g. Edge TPU lost, no fallback)."""


class SkipFrame(Exception):
    """Raised by ``infer`` for a frame lost to a fault it has already reported and handled."""


class Pipeline:
    """Worker thread: capture -> infer -> sinks.

    Args:
        capture: a not yet started :class:`CaptureThread`.
        infer: ``rgb -> classification`` (see module doc). May raise: :class:`FatalError`
            stops the pipeline, anything else is counted, reported and the frame skipped.
        sinks: objects with ``on_result(result)`` and ``on_event(event)``.
        smoothing: frames a new label must persist before it is reported.
        max_frames: stop after this many results (0 = no limit).
        stats: shared statistics (created if None).
    """

    def __init__(
        self,
        capture: CaptureThread,
        infer: Callable[[np.ndarray], Any],
        sinks: Sequence[Any] = (),
        smoothing: int = 1,
        max_frames: int = 0,
        stats: Stats | None = None,
    ):
        self.capture, self.infer, self.sinks = capture, infer, list(sinks)
        self.smoother = Smoother(smoothing)
        self.max_frames = int(max_frames or 0)
        self.stats = stats or Stats()
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edgekit-worker", daemon=True)
        capture.on_event = self.emit

    def start(self) -> Pipeline:
        self.capture.start()
        self._thread.start()
        return self

    def stop(self, timeout: float = 1.5) -> None:
        """Stop capture and worker; returns within about ``timeout`` seconds."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        self.capture.stop(timeout=timeout / 2)
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(max(0.0, deadline - time.monotonic()))

    def emit(self, kind: str, message: str, details: dict | None = None) -> None:
        """Report an event to the log, the counters and every sink (from any thread)."""
        event = Event(kind, message, time.time(), dict(details or {}))
        self.stats.count_event(kind)
        # source_failed: the pipeline raises it next, and serve prints it as its Error line
        quiet = ("source_ended", "source_reconnected", "label_appeared", "label_left",
                 "mqtt_connected", "model_reloaded", "source_failed")  # fmt: skip
        level = logging.INFO if kind in quiet else logging.WARNING
        if kind == "cpu_fallback":
            level = logging.ERROR
        log.log(level, "%s: %s", kind, message)
        for sink in self.sinks:
            try:
                sink.on_event(event)
            except Exception as e:  # a broken sink must not stop the camera
                log.warning("sink %s failed on event: %s", type(sink).__name__, e)

    def _run(self) -> None:  # the worker thread
        try:
            self._loop()
        except BaseException as e:
            self.error = e
        finally:
            self.capture.stop(timeout=0.5)
            self._settle()
            self.done.set()

    def _settle(self) -> None:
        """Final frame accounting (Stats.accounting): the frame left in the slot and those
        read while stopping are ``unprocessed``; exact once the capture thread has ended."""
        slot = self.capture.slot
        left = slot.take(0.0)
        with self.stats._lock:
            self.stats.dropped = slot.dropped
            self.stats.captured = self.capture.frames_read
            self.stats.unprocessed = slot.discarded + (left is not None)
            self.stats.settled = not self.capture.alive

    def _loop(self) -> None:
        produced = 0
        while not self._stop.is_set():
            frame = self.capture.take(timeout=0.25)
            self.stats.dropped = self.capture.slot.dropped
            self.stats.captured = self.capture.frames_read
            if frame is None:
                if self.capture.finished:
                    if self.capture.error is not None:
                        raise self.capture.error
                    if self.capture.ended:
                        self.emit("source_ended", f"{self.capture.source.name}: end of stream")
                    return
                continue
            try:
                out = self.infer(frame.rgb if frame.prepared is None else frame.prepared)
            except FatalError:
                raise
            except SkipFrame:
                self.stats.count_error("inference")
                continue
            except Exception as e:
                self.stats.count_error("inference")
                self.emit("inference_error", f"{type(e).__name__}: {e}", {"frame": frame.index})
                continue
            self.deliver(frame, out)
            produced += 1
            if self.max_frames and produced >= self.max_frames:
                return

    def deliver(self, frame, out: Any) -> None:
        """The result of ``frame`` (``out``: the model's record) to the stats and every sink.
        Called for one frame at a time, in frame order (edgekit.stream.pool keeps it so)."""
        latency_ms = (time.monotonic() - frame.mono) * 1000.0
        result = build_result(frame, out, latency_ms, self.smoother)
        self.stats.record(latency_ms, result.inference_ms)
        for sink in self.sinks:
            try:
                sink.on_result(result)
            except Exception as e:
                self.stats.count_error("sink")
                log.warning("sink %s failed: %s", type(sink).__name__, e)
