"""The Pipeline over a :class:`~edgekit.stream.pool_devices.DevicePool`:
:class:`PooledPipeline` (one thread per device keeping its worker fed, results in frame order)
and :func:`make_pipeline` (the pipeline serve runs for a model).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from edgekit.stream.pipeline import FatalError, Pipeline, SkipFrame
from edgekit.stream.pool_devices import DevicePool
from edgekit.stream.pool_lane import Lane
from edgekit.stream.pool_order import CountingSlot, Reorder, WakePipe


class PooledPipeline(Pipeline):
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

    def _other_idle(self, lane: Lane) -> bool:
        """Another device of the pool is running and has no frame (under ``_cv``)."""
        return any(o is not lane and not o.pending and o.state == "running"
                   for o in self.pool.lanes)  # fmt: skip

    def _idle(self) -> bool:
        with self._cv:  # a frame is always in a lane's pending, in hand-over or in the buffer
            return not self._handing_over and not any(lane.pending for lane in self.pool.lanes)

    def _lane_loop(self, lane: Lane, order: Reorder, halt: threading.Event,
                   wake: WakePipe) -> None:  # one thread per device  # fmt: skip
        """Keeps the device's worker fed: takes a frame whenever the worker has room (also
        while an earlier frame runs: that is the point), collects answers as they come. A frame
        that takes longer than ``hang_timeout_s`` goes to ``collect``'s watchdog; until then the
        wait is here, so that a stop never waits for a hung worker."""
        try:
            self._feed(lane, order, halt, wake)
        finally:  # stopped (end, reload, fatal): whatever it still holds gives no result
            self._finish(lane, order, len(lane.pending), None, why="unprocessed")
            if lane.worker.inflight and not lane.worker._closing.is_set():
                lane.worker.abandon()  # a model kept by its owner: no stale answer left in it
            if wake in self.slot.wakes:
                self.slot.wakes.remove(wake)
            wake.close()

    def _feed(self, lane: Lane, order: Reorder, halt: threading.Event, wake: WakePipe) -> None:
        w, r = lane.worker, lane.resilient
        head_since = 0.0
        unsent: list[tuple[int, Any]] = []  # in lane.pending but not (or no longer) in the worker
        outs: list[Any] = []  # answers collected, not yet delivered (the oldest pending frames)

        def refill() -> None:
            nonlocal head_since
            while len(lane.pending) < w.depth and not halt.is_set():
                with self._cv:  # taken and pending at once: _idle() never misses a frame
                    if lane.pending and self._other_idle(lane):
                        break  # an idle device runs it at once: no queueing behind ours
                    got = self.slot.take_counted(0.0)
                    if got is None:
                        break
                    now = time.monotonic()
                    if not lane.pending:
                        head_since = now
                    lane.pending.append((*got, now))
                unsent.append(got)
            if unsent and w.inflight == 0:  # idle: the moment to retry the Edge TPU
                r.maybe_restore()
            while unsent:
                frame = unsent[0][1]
                w.submit(frame.rgb if frame.prepared is None else frame.prepared)
                unsent.pop(0)

        def deliver() -> None:
            while outs:
                self._finish(lane, order, 1, outs.pop(0))

        while not halt.is_set() and not w._closing.is_set():
            try:
                refill()
                waits = [w._conn] if lane.pending else []
                if len(lane.pending) < w.depth:
                    waits.append(wake)  # a new frame in the slot
                ready = wait_readable(waits, 0.25)
                if not lane.pending:
                    continue
                if w._conn in ready:
                    outs.append(w.collect())
                elif time.monotonic() - head_since < w.hang_timeout_s:
                    continue  # waiting here, not in collect: a stop (halt) ends the wait
                else:
                    outs.append(w.collect(0.0))  # no answer for hang_timeout_s: the watchdog
                # Every answer already there (this thread may wake late on a busy machine),
                # then new frames for the worker, and only then the sinks' work.
                while len(outs) < len(lane.pending) and w.inflight and w._conn.poll():
                    outs.append(w.collect())
                r.succeeded()
                head_since = time.monotonic()
                refill()
                deliver()
            except Exception as e:
                deliver()
                if w._closing.is_set():  # closed (serve stops, or a reload retired the pool):
                    return  # whatever failed, it failed because of that; no reopen
                if not self._handle(lane, order, w, r, e):
                    return
                if isinstance(e, SkipFrame):
                    unsent = [(seq, frame) for seq, frame, _ in lane.pending]
                    head_since = time.monotonic()
                else:
                    unsent = []

    def _handle(self, lane: Lane, order: Reorder, w, r, e: Exception) -> bool:
        """A failed frame (False: the pipeline must stop, ``_fatal`` says why)."""
        if isinstance(e, SkipFrame):  # a crash or hang (reported, worker restarted)
            # The frame the worker was running is lost; those queued behind it never
            # started: the new worker gets them (the caller resends them).
            self._finish(lane, order, 1, None)
            return True
        if isinstance(e, FatalError):
            self._fatal = e
            self._finish(lane, order, len(lane.pending), None)
            return False
        self._drop_in_flight(lane, order)  # the model failed on a frame: reopen / fall back
        try:
            r.recover(e)
        except FatalError as f:
            self._fatal = f
            return False
        except Exception as f:  # reopen failed in an unexpected way
            self._fatal = FatalError(f"{lane.device or 'the model'} failed: {f}")
            return False
        return True

    def _drop_in_flight(self, lane: Lane, order: Reorder) -> None:
        """After a model error: collect (and skip) whatever else is in flight, so the worker is
        idle for a reopen."""
        self._finish(lane, order, 1, None)
        while lane.worker.inflight > 0:
            try:
                lane.worker.collect()
            except (SkipFrame, FatalError):
                break
            except Exception:  # the same fault on the next frame
                pass
            self._finish(lane, order, 1, None)
        self._finish(lane, order, len(lane.pending), None)

    def _finish(self, lane: Lane, order: Reorder, n: int, out: Any,
                why: str = "failed") -> None:  # fmt: skip
        """The oldest ``n`` frames of ``lane`` are done (``out`` for one; None: no result,
        ``why`` failed or unprocessed)."""
        if n <= 0:
            return
        with self._cv:
            done = [lane.pending.popleft() for _ in range(min(n, len(lane.pending)))]
            self._handing_over += len(done)
        try:
            for seq, frame, submitted in done:
                if out is None:
                    lane.skipped += 1
                    self._lost(why)
                else:
                    lane.record(submitted, out)
                order.put(seq, frame, out)
        finally:  # only now may the watcher call the pipeline idle (the end of a file)
            with self._cv:
                self._handing_over -= len(done)
                self._cv.notify_all()


def wait_readable(objs: list, timeout: float) -> list:
    """The readable ones of ``objs`` (objects with fileno()); a :class:`WakePipe` among them
    is drained."""
    import select

    try:
        ready, _, _ = select.select(objs, [], [], timeout)
    except (OSError, ValueError):  # a connection closed under us: let collect() find out
        return list(objs)
    for obj in ready:
        if isinstance(obj, WakePipe):
            obj.drain()
    return ready


def make_pipeline(model: Any, capture, sinks, smoothing: int, max_frames: int, stats) -> Pipeline:
    """The pipeline for ``model``: a :class:`PooledPipeline` for a :class:`DevicePool`, else the
    one-frame-at-a-time :class:`~edgekit.stream.pipeline.Pipeline` (``infer`` set later)."""
    if isinstance(model, DevicePool):
        return PooledPipeline(capture, model, sinks, smoothing, max_frames, stats)
    return Pipeline(capture, lambda rgb: None, sinks, smoothing, max_frames, stats)
