"""serve's model on several Edge TPUs: :class:`DevicePool` (one
:class:`~edgekit.stream.pool_worker.PipelinedProcess` per device, and the model interface serve
uses for one model) and :func:`expand_devices` (``usb:*``, ``usb:0,usb:1``).
"""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.stream.pool_lane import Lane
from edgekit.stream.pool_worker import DEPTH, PipelinedProcess


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
        if len({(k, i or 0) for k, i in map(parse_device, names)}) != len(names):  # usb = usb:00
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
            # compiled segments: "pipelined over usb:0,usb:1" (edgekit.stream.segment_worker)
            **({"pipeline": first.info["pipeline"]} if first.info.get("pipeline") else {}),
        }  # fmt: skip
