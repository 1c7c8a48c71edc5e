"""serve's talk with systemd while it runs: readiness once the first frame is through, watchdog
pings only while results keep arriving, ``STATUS=`` every few seconds, and why frames are not
flowing (``source_state`` and ``reason``, also shown by the page and ``/status``)."""

from __future__ import annotations

import time

from edgekit.stream.capture import CaptureThread
from edgekit.stream.resilient import ResilientClassifier
from edgekit.stream.stats import Stats

STATUS_EVERY_S = 5.0


def _source_state(capture: CaptureThread, stats: Stats, stale_after_s: float) -> dict:
    """``source_state`` and, when frames are not flowing, ``reason``: why (opening the camera,
    reconnecting after a loss, the source ended or failed, or frames stopped arriving)."""
    state, detail = capture.state
    out: dict = {"source_state": state}
    age = stats.last_result_age()
    if state != "running":
        out["reason"] = detail
    elif age is None:
        out["reason"] = "waiting for the first result"
    elif age > stale_after_s:
        out["reason"] = f"no frame for {age:.0f} s (camera hung?)"
    return out

def _supervise(pipeline, stop, notifier, stats, resilient, stale_after_s) -> None:
    """Main-thread loop: readiness, watchdog and status for systemd until the pipeline ends."""
    ready = False
    wd = notifier.watchdog_s
    wd_every = wd / 3 if wd else 0.0
    last_wd = last_status = 0.0
    while not pipeline.done.wait(0.2):
        if stop.is_set():
            return
        now = time.monotonic()
        age = stats.last_result_age()
        flowing = age is not None and age <= min(stale_after_s, wd or stale_after_s)
        if not ready and stats.frames > 0:
            ready = True
            notifier.ready(status=_status(stats, resilient))
        if wd and flowing and now - last_wd >= wd_every:
            notifier.watchdog()
            last_wd = now
        if ready and now - last_status >= STATUS_EVERY_S:
            why = _source_state(pipeline.capture, stats, stale_after_s).get("reason")
            notifier.status(_status(stats, resilient) if flowing else f"NO FRAMES: {why}")
            last_status = now


def _status(stats: Stats, resilient: ResilientClassifier) -> str:
    snap = stats.snapshot()
    lat = snap["latency_ms"]["p50"]
    degraded = "DEGRADED (Edge TPU failed, on CPU), " if resilient.degraded else ""
    return (
        f"{degraded}{snap['fps']:.1f} fps, latency p50 {lat} ms, {resilient.backend}, "
        f"{snap['frames']} frames, {snap['dropped']} dropped"
    )
