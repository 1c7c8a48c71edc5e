"""``/metrics``: serve's counters and gauges in the Prometheus text format 0.0.4."""

from __future__ import annotations

from typing import Callable

from edgekit.stream.pool import device_metrics
from edgekit.stream.stats import Stats


def metrics_text(stats: Stats, info_fn: Callable[[], dict], presence=None) -> str:
    """Prometheus text exposition format, written by hand (no client library needed):
    ``stats``' counters, gauges and latency histogram (seconds), what ``info_fn()`` reports
    (degraded, model, device health, devices, MQTT) and, with ``presence``, the per-label
    gauges."""
    s = stats.snapshot()
    events = s["events"]
    lines = []

    def metric(name, kind, help_, samples):
        lines.append(f"# HELP {name} {help_}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lines.append(f"{name}{labels} {value}")

    metric("edgekit_frames_total", "counter", "Frames classified.", [("", s["frames"])])
    metric("edgekit_frames_dropped_total", "counter",
           "Frames replaced by a newer one.", [("", s["dropped"])])  # fmt: skip
    acc = s["accounting"]
    metric("edgekit_frames_captured_total", "counter", "Frames read from the source "
           "(= classified + dropped + failed + in the pipeline).",
           [("", acc["captured"])])  # fmt: skip
    metric("edgekit_frames_failed_total", "counter", "Frames whose inference failed "
           "(skipped, each reported).", [("", acc["failed"])])  # fmt: skip
    metric("edgekit_decode_errors_total", "counter", "Frames that failed to decode.",
           [("", events.get("decode_error", 0))])  # fmt: skip
    metric("edgekit_source_lost_total", "counter", "Times the camera/stream was lost.",
           [("", events.get("source_lost", 0))])  # fmt: skip
    metric("edgekit_worker_failures_total", "counter",
           "Inference worker processes that crashed or hung (each one is restarted).",
           [('{reason="crash"}', events.get("worker_crashed", 0)),
            ('{reason="hang"}', events.get("worker_hung", 0))])  # fmt: skip
    errors = dict(s["errors"]) or {"inference": 0}
    metric("edgekit_errors_total", "counter", "Errors by kind.",
           [(f'{{kind="{k}"}}', v) for k, v in sorted(errors.items())])  # fmt: skip
    metric("edgekit_fps", "gauge", "Results per second (recent window).", [("", s["fps"])])
    info = info_fn()
    metric("edgekit_degraded", "gauge", "1 when running on the CPU after an Edge TPU "
           "failure.", [("", int(bool(info.get("degraded"))))])  # fmt: skip
    if isinstance(info.get("model"), dict):  # hot reload (edgekit.stream.reload)
        metric("edgekit_model_reloads_total", "counter", "Hot reloads of the model.",
               [('{result="ok"}', events.get("model_reloaded", 0)),
                ('{result="failed"}', events.get("reload_failed", 0))])  # fmt: skip
        sha = "".join(c for c in str(info["model"].get("sha256", "")) if c.isalnum())
        metric("edgekit_model_info", "gauge", "The bundle serving now (sha256 of its files).",
               [(f'{{sha256="{sha}"}}', 1)])  # fmt: skip
    from edgekit.stream.devicehealth import metric_families

    for name, kind, help_, samples in metric_families(info.get("device_health"), events):
        if samples:  # a machine without a Coral or Pi flags shows no empty families
            metric(name, kind, help_, samples)
    for name, kind, help_, samples in device_metrics(info):  # several Edge TPUs
        metric(name, kind, help_, samples)
    if isinstance(info.get("mqtt"), dict):
        metric("edgekit_mqtt_connected", "gauge", "1 while connected to the MQTT broker.",
               [("", int(bool(info["mqtt"].get("connected"))))])  # fmt: skip
        metric("edgekit_mqtt_disconnects_total", "counter", "MQTT broker outages.",
               [("", events.get("mqtt_disconnected", 0))])  # fmt: skip
    if presence is not None:
        snap = presence.snapshot()
        metric("edgekit_objects", "gauge", "Objects (detection) or 1 for the reported class "
               "(classification) per label in the latest frame.",
               [(_labels(k), v) for k, v in snap["raw"].items()])  # fmt: skip
        metric("edgekit_label_present", "gauge", "1 while the label is in view (held "
               "against flicker for hold_s).",
               [(_labels(k), int(v > 0)) for k, v in snap["held"].items()])  # fmt: skip
        metric("edgekit_label_appearances_total", "counter", "Times each label appeared.",
               [(_labels(k), v) for k, v in snap["appearances"].items()])  # fmt: skip
    buckets, count, total = stats.histogram()
    samples = [(f'_bucket{{le="{le:g}"}}', c) for le, c in buckets]
    samples += [('_bucket{le="+Inf"}', count), ("_sum", round(total, 6)), ("_count", count)]
    lines.append("# HELP edgekit_latency_seconds Capture to result latency.")
    lines.append("# TYPE edgekit_latency_seconds histogram")
    lines += [f"edgekit_latency_seconds{suffix} {v}" for suffix, v in samples]
    return "\n".join(lines) + "\n"


def _labels(label: str) -> str:
    """``{label="..."}`` with the exposition format's escapes (backslash, quote, newline)."""
    v = str(label).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{{label="{v}"}}'
