"""`edgekit bench` checks itself against the predicted latency (device side, no TensorFlow).

``expectation(result, devices, load=None, power=None) -> dict | None``: for a benchmark on an Edge
TPU, the predicted time per inference on the link the device is on (:mod:`edgekit.edgetpu.
latency`, from the model file and, beside a compiled model, the int8 model it came from), the
measured/predicted ratio and, when the measurement is far slower, the likely causes ranked, from
what the mapping and doctor know:

* ``usb2_link``: the device's sysfs link speed is below 5000 Mb/s (USB 2);
* ``parameters_streaming``: parameters beyond the on-chip cache cross the link every inference
  (or nearly fill it: the compiler keeps less room with large activations);
* ``cpu_ops``: ops left on the CPU (predicted at a Pi 4's rate: slower on a Pi 3 or a busy CPU);
* ``busy_cpu``: the 1-minute load average is above the number of cores;
* ``throttled``: the Pi's firmware reports under-voltage or throttling (doctor's power check).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from edgekit.backends.segments import segment_set
from edgekit.edgetpu.latency import LINK_NAMES, latency_of_model
from edgekit.tflite import read_model

# measured / predicted above this: "far slower", causes listed. Not lower: the prediction is a
# desktop's (Coral's C++ benchmark); Python and a slower host add to it. MobileNet v1 measured
# 3.9 ms with pycoral on a desktop where Coral's table says 2.4; Coral's own reference files
# (pycoral benchmarks, invoke() timed alone) give a Raspberry Pi 4 on USB 3 1.5-1.7x the
# prediction for MobileNet v1/v2, Inception v1/v4 (scripts/bench_latency_external.py).
SLOW = 2.0


def link_of(device) -> str:
    """'usb3' / 'usb2' / 'pci' for an :class:`~edgekit.backends.devices.EdgeTpuDevice` (USB with
    unknown speed counts as USB 3, the Accelerator's normal link)."""
    if device.type == "pci":
        return "pci"
    return "usb2" if device.speed_mbps is not None and device.speed_mbps < 5000 else "usb3"


def predict_for_file(model_path: str | os.PathLike) -> dict:
    """:func:`~edgekit.edgetpu.latency.latency_of_model` of a model file (its int8 twin used
    when it sits beside a compiled model, as convert's bundle and the compiler leave them).
    A compiled segment (``*_segment_K_of_N_edgetpu.tflite``) stands for its whole set: bench
    times one frame through every segment, so the prediction is the segments' sum
    (``"segments": N``)."""
    files = segment_set(model_path)
    if files is not None and len(files) > 1:
        return _sum_of([_predict_one(f) for f in files])
    return _predict_one(model_path)


def _sum_of(preds: list[dict]) -> dict:
    """The chain of several models, one after the other: times, parts, bytes and ops add up."""
    first = preds[0]
    out = dict(first)
    out["latency_ms"] = {k: round(sum(p["latency_ms"][k] for p in preds), 2)
                         for k in first["latency_ms"]}  # fmt: skip
    out["parts_ms"] = {k: {part: round(sum(p["parts_ms"][k][part] for p in preds), 2)
                           for part in first["parts_ms"][k]}
                       for k in first["parts_ms"]}  # fmt: skip
    for key in ("parameter_bytes", "streamed_bytes", "activation_bytes_streamed", "tpu_ops",
                "cpu_ops"):  # fmt: skip
        out[key] = sum(p[key] for p in preds)
    out["notes"] = [f"{len(preds)} compiled segments, one frame through each in turn"]
    out["segments"] = len(preds)
    return out


def _predict_one(model_path: str | os.PathLike) -> dict:
    info = read_model(model_path)
    twin = None
    p = Path(model_path)
    if info.is_edgetpu_compiled and p.name.endswith("_edgetpu.tflite"):
        cpu = p.with_name(p.name[: -len("_edgetpu.tflite")] + ".tflite")
        if cpu.is_file():
            try:
                twin = read_model(cpu)
            except Exception:  # an unreadable twin: predict from the compiled model alone
                twin = None
    return latency_of_model(info, cpu_twin=twin)


def expectation(
    measured_ms: float,
    model_path: str | os.PathLike,
    device,
    load: tuple[float, int] | None = None,
    power: dict | None = None,
) -> dict[str, Any]:
    """Measured vs predicted for ``device`` (an EdgeTpuDevice, or None when unknown: USB 3 is
    assumed). ``load``: (1-minute load average, cores); ``power``: doctor's PowerState dict
    (``now``: the firmware's current conditions, ``hwmon_alarm``)."""
    pred = predict_for_file(model_path)
    link = link_of(device) if device is not None else "usb3"
    predicted = pred["latency_ms"][link]
    ratio = measured_ms / predicted if predicted > 0 else None
    out: dict[str, Any] = {
        "link": link,
        "predicted_ms": predicted,
        "predicted": pred,
        "measured_ms": round(measured_ms, 3),
        "ratio": None if ratio is None else round(ratio, 2),
        "slower_than_predicted": ratio is not None and ratio > SLOW,
        "causes": [],
    }
    if pred.get("segments"):
        out["segments"] = pred["segments"]
    causes = []
    parts = pred["parts_ms"][link]
    if link == "usb2":
        usb3 = pred["latency_ms"]["usb3"]
        causes.append(("usb2_link", pred["latency_ms"]["usb2"] - usb3,
                       f"the Coral is on a USB 2 link ({device.speed_mbps} Mb/s): predicted "
                       f"{usb3:g} ms on USB 3; plug it into a USB 3 (blue) port"))  # fmt: skip
    if pred["streamed_bytes"]:
        causes.append(("parameters_streaming", parts["parameters_streamed"],
                       f"{pred['streamed_bytes'] / 2**20:.1f} MiB of parameters do not fit the "
                       "on-chip memory and cross the link on every inference: fewer channels "
                       "or a smaller model"))  # fmt: skip
    elif pred["parameter_bytes"] > 6.15 * 2**20:
        causes.append(("parameters_streaming", 0.0,
                       f"the parameters ({pred['parameter_bytes'] / 2**20:.1f} MiB) nearly fill "
                       "the on-chip memory; with large activations the compiler keeps less "
                       "room and part streams (its log: 'Off-chip memory used')"))  # fmt: skip
    if pred["cpu_ops"]:
        causes.append(("cpu_ops", parts["cpu_ops"],
                       f"{pred['cpu_ops']} op(s) run on the CPU ({parts['cpu_ops']:g} ms "
                       "predicted on a Pi 4; slower on an older or busy Pi): edgekit inspect "
                       "lists them and the fixes"))  # fmt: skip
    if load is not None and load[0] > load[1]:
        causes.append(("busy_cpu", float("inf"),
                       f"the CPU is busy (load average {load[0]:.1f} on {load[1]} cores): "
                       "other processes delay each inference"))  # fmt: skip
    now = (power or {}).get("now") or []
    if now or (power or {}).get("hwmon_alarm"):
        what = ", ".join(now) or "under-voltage"
        causes.append(("throttled", float("inf"),
                       f"the Pi reports {what} (edgekit doctor): a stable 5 V 3 A supply, "
                       "cooling"))  # fmt: skip
    causes.sort(key=lambda c: -c[1])
    out["causes"] = [{"code": c, "message": m} for c, _, m in causes]
    return out


def format_expectation(e: dict[str, Any]) -> list[str]:
    """'predicted 2.5 ms on a USB 3 Coral; measured 2.6 ms (1.04x)' and, when far slower,
    'likely cause: ...' lines."""
    ratio = "" if e["ratio"] is None else f" ({e['ratio']:.2f}x)"
    chain = f" ({e['segments']} segments, one frame at a time)" if e.get("segments") else ""
    lines = [f"predict {e['predicted_ms']:g} ms per inference on a {LINK_NAMES[e['link']]}"
             f"{chain}; measured p50 {e['measured_ms']:.2f} ms{ratio}"]  # fmt: skip
    if e["slower_than_predicted"]:
        lines.append("        far slower than predicted; likely cause(s):" if e["causes"] else
                     "        far slower than predicted, and nothing edgekit knows explains it "
                     "(edgekit doctor checks the link and the power; the prediction is a "
                     "desktop's: a Raspberry Pi 4 measures 1.5-2x it, a detection model's CPU "
                     "post-processing more)")  # fmt: skip
        lines += [f"        - {c['message']}" for c in e["causes"]]
    return lines


def system_load() -> tuple[float, int] | None:
    """(1-minute load average, CPU cores), None where the OS does not say."""
    try:
        return os.getloadavg()[0], os.cpu_count() or 1
    except (OSError, AttributeError):
        return None
