"""One device of a pool (:class:`Lane`: its worker, its frames, its numbers) and the
per-device Prometheus metrics built from ``DevicePool.pool_status()`` (:func:`device_metrics`).
"""

from __future__ import annotations

import collections
import time
from typing import Any

import numpy as np

from edgekit.stream.pool_worker import PipelinedProcess


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
            "inference_ms": p50(self._inference),
            "latency_ms": p50(self._latency),
            "pid": w.info.get("pid"),
            "restarts": w.restarts,
        }


def p50(values) -> float | None:
    return round(float(np.median(list(values))), 3) if values else None


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
