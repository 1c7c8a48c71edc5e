"""Pipeline statistics: counters, fps, latency percentiles and a Prometheus-style histogram.

Thread-safe: the worker records, the HTTP thread and the main loop read snapshots.
"""

from __future__ import annotations

import bisect
import collections
import threading
import time

import numpy as np

# Latency histogram bucket upper bounds, seconds (capture -> result). Edge TPU MobileNets
# land around 5-20 ms, CPU emulation 10-200 ms, a stalled pipeline in the last buckets.
LATENCY_BUCKETS_S = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class Stats:
    """Counters and rolling measurements of one pipeline run.

    Args:
        window: how many recent results the percentiles are computed over.
        fps_window_s: fps is results per second over this many most recent seconds.
    """

    def __init__(self, window: int = 1000, fps_window_s: float = 5.0):
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.frames = 0  # results produced
        self.errors: collections.Counter[str] = collections.Counter()  # by kind
        self.events: collections.Counter[str] = collections.Counter()  # by kind
        self.dropped = 0  # set from the capture slot
        self.in_flight = 0  # frames a pool of workers holds beyond one (edgekit.stream.pool)
        # Frame accounting (see accounting()): frames read from the source, and those that
        # never reached inference because serve stopped (left in the slot, or read while
        # stopping). None until the pipeline ended: then the counts are final.
        self.captured = 0
        self.unprocessed = 0
        self.settled: bool | None = None
        self.last_result_mono: float | None = None
        self._latency_ms: collections.deque[float] = collections.deque(maxlen=window)
        self._inference_ms: collections.deque[float] = collections.deque(maxlen=window)
        self._times: collections.deque[float] = collections.deque()
        self._fps_window_s = fps_window_s
        self.bucket_counts = [0] * (len(LATENCY_BUCKETS_S) + 1)  # last = +Inf
        self.latency_sum_s = 0.0

    def record(self, latency_ms: float, inference_ms: float) -> None:
        now = time.monotonic()
        with self._lock:
            self.frames += 1
            self.last_result_mono = now
            self._latency_ms.append(latency_ms)
            self._inference_ms.append(inference_ms)
            self._times.append(now)
            while self._times and now - self._times[0] > self._fps_window_s:
                self._times.popleft()
            s = latency_ms / 1000.0
            self.bucket_counts[bisect.bisect_left(LATENCY_BUCKETS_S, s)] += 1
            self.latency_sum_s += s

    def count_error(self, kind: str) -> None:
        with self._lock:
            self.errors[kind] += 1

    def count_event(self, kind: str) -> None:
        with self._lock:
            self.events[kind] += 1

    def accounting(self) -> dict:
        """Where every captured frame went: ``processed`` (a result), ``dropped`` (replaced by
        a newer one before inference), ``failed`` (inference failed: skipped and counted as an
        inference error), ``unprocessed`` (still waiting when serve stopped). ``balanced``:
        captured == the sum, exactly; checked once the pipeline ended (``final``)."""
        with self._lock:
            out = {"captured": self.captured, "processed": self.frames,
                   "dropped": self.dropped, "failed": self.errors.get("inference", 0),
                   "unprocessed": self.unprocessed}  # fmt: skip
            final = self.settled
        total = out["processed"] + out["dropped"] + out["failed"] + out["unprocessed"]
        out["final"] = bool(final)
        # While running, up to three frames are between the counters: one read but not yet
        # stored, one waiting in the slot, one in inference.
        out["in_pipeline"] = out["captured"] - total
        slack = 3 + self.in_flight  # read, in the slot, in inference (+ a pool's extra frames)
        out["balanced"] = out["in_pipeline"] == 0 if final else 0 <= out["in_pipeline"] <= slack
        return out

    def fps(self) -> float:
        """Results per second over the last ``fps_window_s`` seconds (0 when stalled)."""
        now = time.monotonic()
        with self._lock:
            times = [t for t in self._times if now - t <= self._fps_window_s]
        if len(times) < 2:
            return 0.0
        span = max(now - times[0], times[-1] - times[0])
        return (len(times) - 1) / span if span > 0 else 0.0

    def last_result_age(self) -> float | None:
        """Seconds since the last result, None before the first."""
        last = self.last_result_mono
        return None if last is None else time.monotonic() - last

    def snapshot(self) -> dict:
        """Plain-dict view (JSON-ready): counters, fps and latency/inference percentiles (ms)."""
        with self._lock:
            lat = np.array(self._latency_ms, dtype=np.float64)
            inf = np.array(self._inference_ms, dtype=np.float64)
            out = {
                "frames": self.frames,
                "dropped": self.dropped,
                "errors": dict(self.errors),
                "events": dict(self.events),
                "uptime_s": round(time.monotonic() - self.started, 3),
            }
        out["accounting"] = self.accounting()
        out["fps"] = round(self.fps(), 2)
        out["latency_ms"] = _percentiles(lat)
        out["inference_ms"] = _percentiles(inf)
        return out

    def histogram(self) -> tuple[list[tuple[float, int]], int, float]:
        """Cumulative buckets [(le_seconds, count)], total count and sum (seconds)."""
        with self._lock:
            counts, total_sum = list(self.bucket_counts), self.latency_sum_s
        cumulative, running = [], 0
        for le, c in zip(LATENCY_BUCKETS_S, counts):
            running += c
            cumulative.append((le, running))
        return cumulative, running + counts[-1], total_sum


def _percentiles(values: np.ndarray) -> dict:
    if values.size == 0:
        return {"p50": None, "p90": None, "p99": None, "mean": None}
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {
        "p50": round(float(p50), 2),
        "p90": round(float(p90), 2),
        "p99": round(float(p99), 2),
        "mean": round(float(values.mean()), 2),
    }
