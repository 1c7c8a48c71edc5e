"""serve's model on several Edge TPUs, with frames in flight: a pool of worker processes.

``[model] device = "usb:*"`` (every attached USB Accelerator) or a list (``"usb:0,usb:1"``)
runs one worker process per device (each opens its Coral under its own device lock:
edgekit/backends/devicelock.py) and spreads the frames over them; one device runs as a pool of
one. Each worker holds up to ``depth`` (2) frames: the parent copies frame n+1 into the second
shared-memory slot and queues its request while the child runs frame n, so the child finds its
next frame waiting the moment an invoke ends and the device never waits for the two process
wake-ups of a round trip (docs/DESIGN.md, "Several Edge TPUs").

- :class:`PipelinedProcess`: a :class:`~edgekit.stream.worker.ModelProcess` with
  ``submit(rgb)`` / ``collect()`` (answers come back in submit order); the crash/hang watchdog,
  restarts and the crash-loop limit are ModelProcess's own.
- :class:`DevicePool`: the workers, and the model interface serve already uses for one model
  (``input_size``, ``resize``, ``task``, ``runner``, ``on_event``, ``reopen``, ``close``,
  ``pool_status()`` for /latest, the status page and /metrics).
- :class:`PooledPipeline`: the Pipeline with one thread per device: each takes the newest
  frame from the capture slot whenever its worker has room (a faster device takes more),
  numbered in the order taken, keeps its worker fed and collects the answers; a reorder buffer
  delivers results in frame order. Each device has its own ResilientClassifier (reopen, CPU
  fallback, Edge TPU retries). A worker that crashes or stops answering is killed by its
  watchdog (``hang_timeout_s``) and restarted (the frame it ran is lost, the ones queued
  behind it go to the new worker); results of the other devices wait for a missing frame at
  most ``max_wait_s`` (1 s) or 64 results, then it is given up (``late_frames``).
"""

from __future__ import annotations

import collections
import functools
import os
import threading
import time
from multiprocessing import shared_memory
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.stream.capture import FrameSlot
from edgekit.stream.pipeline import FatalError, Pipeline, SkipFrame
from edgekit.stream.worker import _SEGMENTS, ModelProcess, _rebuild, free_shm

DEPTH = 2  # frames in flight per worker


def expand_devices(spec: str | None, root: str | os.PathLike = "/") -> list[str] | None:
    """The devices a multi-device ``[model] device`` names: ``"usb:*"`` (every attached USB
    Accelerator, from sysfs under ``root``), ``"pci:*"``, ``"*"`` / ``":*"`` (every Edge TPU),
    or a comma list (``"usb:0,usb:1"``). None for a single device (``auto``, ``usb:1``...).
    Raises EdgekitError for a bad list or when ``*`` finds nothing."""
    from edgekit.backends.devices import list_edge_tpus, parse_device

    text = (spec or "").strip().lower()
    if "*" not in text and "," not in text:
        return None
    if "," in text:
        names = [p.strip() for p in text.split(",")]
        if "" in names or any("*" in n for n in names):
            raise EdgekitError(f"invalid device list {spec!r}",
                               "use usb:*, or a comma list such as usb:0,usb:1")  # fmt: skip
        for name in names:
            if name in ("auto", "cpu"):
                raise EdgekitError(f"{name!r} cannot be part of a device list ({spec!r})",
                                   "list Edge TPUs only, e.g. usb:0,usb:1")  # fmt: skip
            parse_device(name)
        if len(set(names)) != len(names):
            raise EdgekitError(f"device list {spec!r} names a device twice",
                               "each Edge TPU runs one worker: list it once")  # fmt: skip
        return names
    if text not in ("*", ":*", "usb:*", "pci:*"):
        raise EdgekitError(f"invalid device {spec!r}", "use usb:*, pci:* or * (every Edge TPU)")
    kind = text.split(":")[0] if text in ("usb:*", "pci:*") else None
    found = [d for d in (list_edge_tpus(root) or []) if kind is None or d.type == kind]
    if not found:
        from edgekit.backends.edgetpu import CHECKLIST

        raise EdgekitError(f"no Edge TPU found for {spec!r}", CHECKLIST)
    return [d.name for d in found]


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


class Lane:
    """One device of the pool: its worker, its ResilientClassifier (set by the pipeline) and its
    numbers. ``queue``/``pending`` are (seq, frame[, submit time]) waiting / in the worker."""

    def __init__(self, index: int, device: str | None, worker: PipelinedProcess):
        self.index, self.device, self.worker = index, device, worker
        self.resilient: Any = None
        self.queue: collections.deque = collections.deque()
        self.pending: collections.deque = collections.deque()
        self.frames = self.skipped = 0
        self.state = "running"
        self._done: collections.deque[float] = collections.deque(maxlen=256)
        self._inference: collections.deque[float] = collections.deque(maxlen=200)
        self._latency: collections.deque[float] = collections.deque(maxlen=200)

    @property
    def load(self) -> int:
        return len(self.queue) + len(self.pending)

    def record(self, submitted: float, out: Any) -> None:
        now = time.monotonic()
        self.frames += 1
        self._done.append(now)
        self._latency.append((now - submitted) * 1000.0)
        ms = getattr(out, "inference_ms", None)
        if ms is not None:
            self._inference.append(float(ms))

    def snapshot(self) -> dict:
        now = time.monotonic()
        recent = [t for t in self._done if now - t <= 5.0]
        fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 2 else 0.0
        r, w = self.resilient, self.worker
        state = self.state
        if r is not None and r.degraded:
            state = "degraded (cpu)"
        elif w._proc is None and state == "running":
            state = "failed"
        return {
            "device": self.device or str(w.info.get("device", "?")),
            "state": state,
            "backend": str(w.info.get("backend", "?")),
            "frames": self.frames,
            "skipped": self.skipped,
            "fps": round(fps, 2),
            "inference_ms": _p50(self._inference),
            "latency_ms": _p50(self._latency),
            "pid": w.info.get("pid"),
            "restarts": w.restarts,
        }


def _p50(values) -> float | None:
    return round(float(np.median(list(values))), 3) if values else None


class DevicePool:
    """The model on ``devices`` (one worker each; ``[None]``: the factory's own device), with
    ``depth`` frames in flight per worker. If one worker fails to start, the others are closed
    and its error raised. ``worker_kw`` goes to every
    :class:`PipelinedProcess` (hang_timeout_s, max_restarts, stop, ...)."""

    def __init__(self, factory: Callable[..., Any], devices: list[str | None] | None = None,
                 depth: int = DEPTH, **worker_kw):  # fmt: skip
        self.devices = list(devices or [None])
        self.depth = depth
        self._on_event: Callable[[str, str, dict], None] = lambda kind, message, details: None
        self.late_frames = 0
        # Started one after the other from this thread: the kernel SIGKILLs a worker when the
        # THREAD that started it ends (PR_SET_PDEATHSIG), so never from a short-lived thread.
        workers: list[PipelinedProcess] = []
        try:
            for device in self.devices:
                workers.append(PipelinedProcess(factory, device, depth, **worker_kw))
        except BaseException:
            for w in workers:
                w.close()
            raise
        self.lanes = [Lane(i, d, w) for i, (d, w) in enumerate(zip(self.devices, workers))]
        for lane in self.lanes:
            lane.worker.on_event = self._lane_emitter(lane)

    # -- the model interface serve uses -------------------------------------------------------
    @property
    def workers(self) -> list[PipelinedProcess]:
        return [lane.worker for lane in self.lanes]

    @property
    def input_size(self):
        return self.workers[0].input_size

    @property
    def resize(self):
        return self.workers[0].resize

    @property
    def task(self) -> str:
        return self.workers[0].task

    @property
    def runner(self) -> SimpleNamespace:
        runners = [w.runner for w in self.workers]
        return SimpleNamespace(backend=runners[0].backend, provider=runners[0].provider,
                               device=",".join(str(r.device) for r in runners))  # fmt: skip

    @property
    def on_event(self) -> Callable[[str, str, dict], None]:
        return self._on_event

    @on_event.setter
    def on_event(self, fn: Callable[[str, str, dict], None]) -> None:
        self._on_event = fn

    def _lane_emitter(self, lane: Lane) -> Callable[[str, str, dict], None]:
        """Events of one device, tagged with it (and its state kept)."""

        def emit(kind: str, message: str, details: dict | None = None) -> None:
            if kind in ("worker_crashed", "worker_hung"):
                lane.state = "restarting"
            elif kind in ("worker_restarted", "backend_reopened", "tpu_restored"):
                lane.state = "running"
            details = dict(details or {})
            if len(self.lanes) > 1 and lane.device:
                details["device"] = lane.device
                message = f"{lane.device}: {message}"
            self._on_event(kind, message, details)

        return emit

    def run(self, rgb: np.ndarray) -> Any:
        """One frame, synchronously, on the first device (the pool's pipeline does not use it)."""
        w = self.workers[0]
        w.submit(rgb)
        return w.collect()

    classify = run

    def reopen(self, device: str | None = None) -> None:
        for w in self.workers:
            w.reopen(device)

    def close(self) -> None:
        for w in self.workers:
            w.close()

    def pool_status(self) -> dict:
        """backend, device, degraded, worker and ``devices`` (one dict per device: device, state,
        backend, frames, skipped, fps, inference_ms and latency_ms p50, pid, restarts) for
        /latest, /healthz, the status page and /metrics."""
        devices = [lane.snapshot() for lane in self.lanes]
        first = self.workers[0]
        backend = devices[0]["backend"]
        return {
            "backend": backend if all(d["backend"] == backend for d in devices) else "mixed",
            "device": ",".join(d["device"] for d in devices),
            "degraded": any(lane.resilient is not None and lane.resilient.degraded
                            for lane in self.lanes),  # fmt: skip
            "worker": {"pid": first.info.get("pid"), "restarts": sum(w.restarts for w in
                                                                     self.workers)},
            "devices": devices,
            "frames_in_flight": self.depth,
            "late_frames": self.late_frames,
        }  # fmt: skip


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
    gaps), and every ``put`` wakes the device threads through their pipes."""

    def __init__(self, wake_fds: list[int]):
        super().__init__()
        self.wake_fds = wake_fds
        self.taken = 0

    def put(self, frame, wait: bool = False, stop=None) -> None:
        super().put(frame, wait, stop)
        for fd in self.wake_fds:
            _poke(fd)

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
        self.slot = capture.slot = CountingSlot([])
        self._lanes: tuple[threading.Event, list, list] | None = None  # halt, threads, pipes
        self._unprocessed = 0  # frames taken but never run or delivered because serve stopped
        self._retired: list[threading.Thread] = []  # stopped device threads still ending
        self._pipes: list[tuple[int, int]] = []  # one wake-up pipe per device thread
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
            self._close_pipes()

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
        while len(self._pipes) < len(lanes):  # capture -> device threads; kept across
            fds = os.pipe()  # reloads, so that a reload costs no file descriptors
            for fd in fds:
                os.set_blocking(fd, False)
            self._pipes.append(fds)
        pipes = self._pipes[: len(lanes)]
        halt = threading.Event()
        threads = [threading.Thread(target=self._lane_loop, args=(lane, order, halt, r),
                                    daemon=True, name=f"edgekit-device-{lane.index}")
                   for lane, (r, _) in zip(lanes, pipes)]  # fmt: skip
        self.slot.wake_fds = [w for _, w in pipes]
        self._lanes = (halt, threads, pipes)
        for t in threads:
            t.start()

    def _stop_lanes(self, order: Reorder) -> None:
        halt, threads, pipes = self._lanes or (threading.Event(), [], [])
        self._lanes = None
        halt.set()
        self.slot.wake_fds = []
        for _, w in pipes:
            _poke(w)
        for t in threads:
            t.join(0.5)
        self._retired = [t for t in self._retired + threads if t.is_alive()]

    def _close_pipes(self) -> None:
        """At the end, once no device thread (one may still be inside a worker's watchdog
        wait when told to stop) can use them."""
        if not any(t.is_alive() for t in self._retired):
            for fds in self._pipes:
                for fd in fds:
                    os.close(fd)
            self._pipes = []

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
        with self._cv:
            return not any(lane.pending for lane in self.pool.lanes)

    def _lane_loop(self, lane: Lane, order: Reorder, halt: threading.Event,
                   wake: int) -> None:  # one thread per device  # fmt: skip
        """Keeps the device's worker fed: takes a frame whenever the worker has room (also
        while an earlier frame runs: that is the point), collects answers as they come. A frame
        that takes long (> 0.5 s) is waited for in ``collect`` (its watchdog)."""
        try:
            self._feed(lane, order, halt, wake)
        finally:  # stopped (end, reload, fatal): whatever it still holds gives no result
            self._finish(lane, order, len(lane.pending), None, why="unprocessed")

    def _feed(self, lane: Lane, order: Reorder, halt: threading.Event, wake: int) -> None:
        w, r = lane.worker, lane.resilient
        head_since = 0.0
        unsent: list[tuple[int, Any]] = []  # in lane.pending but not (or no longer) in the worker
        outs: list[Any] = []  # answers collected, not yet delivered (the oldest pending frames)

        def refill() -> None:
            nonlocal head_since
            while len(lane.pending) < w.depth and not halt.is_set():
                with self._cv:  # taken and pending at once: _idle() never misses a frame
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
                ready = _wait_readable(waits, 0.25)
                if not lane.pending or (w._conn not in ready
                                        and time.monotonic() - head_since < 0.5):  # fmt: skip
                    continue
                outs.append(w.collect())
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
            self._cv.notify_all()
        for seq, frame, submitted in done:
            if out is None:
                lane.skipped += 1
                self._lost(why)
            else:
                lane.record(submitted, out)
            order.put(seq, frame, out)


def _poke(fd: int) -> None:
    try:
        os.write(fd, b"\0")
    except OSError:  # full (already woken) or closed
        pass


def _wait_readable(objs: list, timeout: float) -> list:
    """The readable ones of ``objs`` (file descriptors or objects with fileno()); wake-up pipes
    among them are drained."""
    import select

    try:
        ready, _, _ = select.select(objs, [], [], timeout)
    except (OSError, ValueError):  # a connection closed under us: let collect() find out
        return list(objs)
    for obj in ready:
        if isinstance(obj, int):
            try:
                while os.read(obj, 512):
                    pass
            except (BlockingIOError, OSError):
                pass
    return ready


def make_pipeline(model: Any, capture, sinks, smoothing: int, max_frames: int, stats) -> Pipeline:
    """The pipeline for ``model``: a :class:`PooledPipeline` for a :class:`DevicePool`, else the
    one-frame-at-a-time :class:`~edgekit.stream.pipeline.Pipeline` (``infer`` set later)."""
    if isinstance(model, DevicePool):
        return PooledPipeline(capture, model, sinks, smoothing, max_frames, stats)
    return Pipeline(capture, lambda rgb: None, sinks, smoothing, max_frames, stats)


def device_metrics(info: dict) -> list[tuple[str, str, str, list[tuple[str, Any]]]]:
    """Per-device Prometheus metrics from ``pool_status()`` (``info["devices"]``):
    (name, type, help, [(labels, value)])."""
    devices = info.get("devices") or []
    if not devices:
        return []

    def lab(d: dict, **more) -> str:
        pairs = {"device": d["device"], **more}
        return "{" + ",".join(f'{k}="{v}"' for k, v in pairs.items()) + "}"

    def ms(v):
        return round(v / 1000.0, 6) if v is not None else "NaN"

    return [
        ("edgekit_device_frames_total", "counter", "Frames each Edge TPU processed.",
         [(lab(d), d["frames"]) for d in devices]),
        ("edgekit_device_fps", "gauge", "Results per second of each Edge TPU (last 5 s).",
         [(lab(d), d["fps"]) for d in devices]),
        ("edgekit_device_inference_seconds", "gauge", "Median inference time per device.",
         [(lab(d), ms(d["inference_ms"])) for d in devices]),
        ("edgekit_device_latency_seconds", "gauge", "Median time from handing a frame to the "
         "device's worker to its result.", [(lab(d), ms(d["latency_ms"])) for d in devices]),
        ("edgekit_device_up", "gauge", "1 while the device's worker runs its model on it "
         "(state: running, restarting, failed, degraded (cpu)).",
         [(lab(d, state=d["state"]), int(d["state"] == "running")) for d in devices]),
        ("edgekit_device_restarts_total", "counter", "Worker restarts per device.",
         [(lab(d), d["restarts"]) for d in devices]),
    ]  # fmt: skip
