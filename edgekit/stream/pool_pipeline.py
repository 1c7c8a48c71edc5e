"""The Pipeline over a :class:`~edgekit.stream.pool_devices.DevicePool`:
:class:`PooledPipeline` (one thread per device keeping its worker fed, results in frame order)
and :func:`make_pipeline` (the pipeline serve runs for a model).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from edgekit.stream.pipeline import FatalError, Pipeline
from edgekit.stream.pool_devices import DevicePool
from edgekit.stream.pool_feed import LaneFeeding, wait_readable
from edgekit.stream.pool_order import CountingSlot, Reorder, WakePipe

__all__ = ["PooledPipeline", "make_pipeline", "wait_readable"]


class PooledPipeline(LaneFeeding, Pipeline):
    """:class:`~edgekit.stream.pipeline.Pipeline` over a :class:`DevicePool` (see the module
    docstring): one thread per device takes a frame from the capture slot whenever its worker
    has room (a faster device takes more) and collects the answers; the pipeline's own thread
    watches for the end. ``infer`` (serve's ResilientClassifier, or the HotReload wrapping it)
    lends each device's own ResilientClassifier its settings (on_tpu_failure, tpu_retry_s, the
    healer for a single device) and says which model serves: after a hot reload switched to a
    new pool, the device threads of the old one stop and new ones start on the new one."""

    def __init__(self, capture, pool: DevicePool, sinks=(), smoothing: int = 1,
                 max_frames: int = 0, stats=None):  # fmt: skip
        super().__init__(capture, lambda rgb: None, sinks, smoothing, max_frames, stats)
        self.pool = pool
        self._cv = threading.Condition()
        self._fatal: BaseException | None = None
        self.slot = capture.slot = CountingSlot()
        self._lanes: tuple[threading.Event, list] | None = None  # halt, threads
        self._unprocessed = 0  # frames taken but never run or delivered because serve stopped
        self._retired: list[threading.Thread] = []  # stopped device threads still ending
        self._handing_over = 0  # frames out of a lane's pending, not yet in the reorder buffer
        # frames between the counters while running: depth per device, plus results waiting
        # in the reorder buffer for a slower device's frame (one more per device)
        self.stats.in_flight = (pool.depth + 1) * len(pool.lanes) - 1

    def _lost(self, why: str) -> None:
        """Frame accounting (Stats.accounting) for a frame that gives no result."""
        if why == "unprocessed":
            with self.stats._lock:
                self._unprocessed += 1
                self.stats.unprocessed += 1
        else:  # a failed inference: skipped (crash, hang, model error) or given up (late)
            self.stats.count_error("inference")

    def _settle(self) -> None:
        super()._settle()  # the slot's frames; then those the device threads held
        with self.stats._lock:
            self.stats.unprocessed += self._unprocessed

    def _outer(self) -> Any:
        return getattr(self.infer, "resilient", self.infer)

    def _loop(self) -> None:  # watches the device threads
        order = Reorder(self.deliver, self.max_frames, lost=self._lost)
        self._start_lanes(order)
        try:
            self._watch(order)
        finally:
            order.full.set()  # stopping: nothing more goes out (frames in flight are dropped)
            self._stop_lanes(order)
            self._join_retired()

    def _start_lanes(self, order: Reorder) -> None:
        from edgekit.stream.resilient import ResilientClassifier

        outer, lanes = self._outer(), self.pool.lanes
        for lane in lanes:
            lane.resilient = ResilientClassifier(
                lane.worker, self.pool._lane_emitter(lane),
                getattr(outer, "on_tpu_failure", "cpu"), getattr(outer, "tpu_retry_s", 60.0),
                # serve's Healer resets the one device it was made for (config.model.device)
                healer=getattr(outer, "healer", None) if len(lanes) == 1 else None,
            )  # fmt: skip
        halt = threading.Event()
        threads = []
        for lane in lanes:  # capture -> device thread: a wake-up pipe the thread closes as it
            wake = WakePipe()  # ends (a stopped thread may still wait in a hung worker's
            self.slot.wakes.append(wake)  # watchdog: its pipe lives until then, no longer)
            threads.append(threading.Thread(target=self._lane_loop,
                                            args=(lane, order, halt, wake), daemon=True,
                                            name=f"edgekit-device-{lane.index}"))  # fmt: skip
        self._lanes = (halt, threads)
        for t in threads:
            t.start()

    def _stop_lanes(self, order: Reorder) -> None:
        halt, threads = self._lanes or (threading.Event(), [])
        self._lanes = None
        halt.set()
        self.slot.wake_all()
        for t in threads:
            t.join(0.5)
        self._retired = [t for t in self._retired + threads if t.is_alive()]

    def _join_retired(self) -> None:
        """At the end: wait for device threads still inside a worker's wait (a hung one ends
        at its watchdog, or at once when serve closes the model), so that every descriptor
        they hold is closed and every frame counted before the pipeline reports done."""
        longest = max((w.hang_timeout_s for w in self.pool.workers), default=10.0)
        deadline = time.monotonic() + longest + 5.0
        for t in self._retired:
            t.join(max(0.0, deadline - time.monotonic()))
        self._retired = [t for t in self._retired if t.is_alive()]

    def _watch(self, order: Reorder) -> None:
        while not self._stop.is_set():
            order.expire()
            self.pool.late_frames = order.late
            self.stats.dropped = self.slot.dropped
            self.stats.captured = self.capture.frames_read
            fatal = getattr(self.infer, "_fatal", "")  # HotReload could not bring a model back
            if fatal:
                raise FatalError(fatal)
            if self._fatal is not None:
                raise self._fatal
            if order.full.is_set():
                return
            current = getattr(self._outer(), "classifier", self.pool)
            if current is not self.pool:  # a hot reload switched models
                if not isinstance(current, DevicePool):
                    raise FatalError("a reload changed how the model runs; restart serve")
                self._stop_lanes(order)
                self.pool = current
                self._start_lanes(order)
            if self.capture.finished and self.slot.empty and self._idle():
                while order.waiting and not self._stop.is_set() and not order.full.is_set():
                    time.sleep(0.05)  # give up on frames lost in flight, deliver the rest
                    order.expire()
                if self._fatal is not None:
                    raise self._fatal
                if self.capture.error is not None:
                    raise self.capture.error
                if self.capture.ended:
                    self.emit("source_ended", f"{self.capture.source.name}: end of stream")
                return
            with self._cv:
                self._cv.wait(0.1)

    def _idle(self) -> bool:
        with self._cv:  # a frame is always in a lane's pending, in hand-over or in the buffer
            return not self._handing_over and not any(lane.pending for lane in self.pool.lanes)


def make_pipeline(model: Any, capture, sinks, smoothing: int, max_frames: int, stats) -> Pipeline:
    """The pipeline for ``model``: a :class:`PooledPipeline` for a :class:`DevicePool`, else the
    one-frame-at-a-time :class:`~edgekit.stream.pipeline.Pipeline` (``infer`` set later)."""
    if isinstance(model, DevicePool):
        return PooledPipeline(capture, model, sinks, smoothing, max_frames, stats)
    return Pipeline(capture, lambda rgb: None, sinks, smoothing, max_frames, stats)
