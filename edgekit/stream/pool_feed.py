"""The device threads of a :class:`~edgekit.stream.pool_pipeline.PooledPipeline`: one per Edge
TPU keeps its worker fed (a frame whenever it has room, unless another device is idle),
collects answers as they come, hands finished frames to the reorder buffer and turns a failed
frame into a skip, a reopen or the pipeline's fatal error."""

from __future__ import annotations

import threading
import time
from typing import Any

from edgekit.stream.pipeline import FatalError, SkipFrame
from edgekit.stream.pool_lane import Lane
from edgekit.stream.pool_order import Reorder, WakePipe


class LaneFeeding:
    """The device-thread half of :class:`~edgekit.stream.pool_pipeline.PooledPipeline` (its
    watcher half, with ``pool``, ``slot``, ``_cv`` and the frame accounting, lives there)."""

    def _other_idle(self, lane: Lane) -> bool:
        """Another device of the pool is running and has no frame (under ``_cv``)."""
        return any(o is not lane and not o.pending and o.state == "running"
                   for o in self.pool.lanes)  # fmt: skip

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
