"""serve's device panel: every Edge TPU's link health and the Pi's power, watched while it runs.

:class:`DeviceHealth` is a sink (``on_result`` feeds the invoke-latency drift) with a thread of
its own that reads :mod:`edgekit.backends.linkstate` every ``every_s`` seconds. A change for the
worse is an event (log, JSON lines, status page, /metrics, MQTT ``<topic>/event``):
``usb_reset`` (the kernel logged new resets of the Coral's port while serve ran),
``usb_link_slow`` (the link fell to USB 2 speed), ``undervoltage`` (the Pi's under-voltage
flag is set now),
``latency_drift`` (median inference time now >= 1.5x the first minute's); each names the fix
(:mod:`edgekit.edgetpu.link`). :meth:`snapshot` is the panel (``/latest`` ``device_health``),
:func:`metric_families` its /metrics lines, and the same JSON goes retained to MQTT
``<topic>/health`` when it changes.
"""

from __future__ import annotations

import collections
import json
import os
import statistics
import threading
import time
from typing import Callable

from edgekit.backends.linkstate import read_links, read_power
from edgekit.edgetpu import link

EventFn = Callable[[str, str, dict], None]
RECENT = 100  # results the "now" median is taken over


class DeviceHealth:
    def __init__(self, emit: EventFn | None = None, root: str | os.PathLike = "/",
                 every_s: float = 30.0, backend: Callable[[], str] = lambda: "edgetpu",
                 mqtt=None, baseline_s: float = link.BASELINE_S):  # fmt: skip
        self.emit = emit or (lambda kind, message, details: None)
        self.root, self.every_s, self.backend, self.mqtt = root, every_s, backend, mqtt
        self.baseline_s = baseline_s
        self._lock = threading.Lock()
        self._first: list[float] = []
        self._first_until: float | None = None
        self._recent: collections.deque[float] = collections.deque(maxlen=RECENT)
        self._snap: dict = {"devices": [], "power": None, "findings": [], "drift": None}
        self._prev: dict = {}
        self._published = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- sink ------------------------------------------------------------------------------------
    def on_result(self, result) -> None:
        if self.backend() != "edgetpu":
            return  # the CPU fallback's time says nothing about the Edge TPU link
        now = time.monotonic()
        with self._lock:
            if self._first_until is None:
                self._first_until = now + self.baseline_s
            if now <= self._first_until:
                self._first.append(result.inference_ms)
            else:
                self._recent.append(result.inference_ms)

    def on_event(self, event) -> None:
        pass

    def start(self) -> DeviceHealth:
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="edgekit-health", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.refresh()
            except Exception as e:  # a sysfs surprise must not stop the watching
                self.emit("health_check_failed", f"device health check failed: {e}", {})

    # -- reading -----------------------------------------------------------------------------
    def drift(self) -> tuple[float | None, float | None, float | None]:
        """(baseline median ms, recent median ms, ratio)."""
        with self._lock:
            first, recent = list(self._first), list(self._recent)
        base = statistics.median(first) if len(first) >= 5 else None
        now = statistics.median(recent) if len(recent) >= 5 else None
        return base, now, link.drift_ratio(base, now)

    def refresh(self) -> dict:
        links, power = read_links(self.root), read_power(self.root)
        base, now, ratio = self.drift()
        devices, findings = [], []
        for s in links:
            found = link.link_findings(s.speed_mbps, s.autosuspend, s.kernel,
                                       ratio if s is links[0] else None)  # fmt: skip
            devices.append({**s.to_dict(), "findings": [f.to_dict() for f in found]})
            findings += [{"device": s.device, **f.to_dict()} for f in found]
        pf = link.power_findings(power.throttled, power.hwmon_alarm)
        findings += [{"device": "pi", **f.to_dict()} for f in pf]
        snap = {"devices": devices, "power": power.to_dict(), "findings": findings,
                "drift": {"baseline_ms": base, "recent_ms": now, "ratio": ratio},
                "checked": round(time.time(), 3)}  # fmt: skip
        with self._lock:
            self._snap = snap
        self._report_changes(links, power, ratio)
        self._publish(snap)
        return snap

    def snapshot(self) -> dict:
        with self._lock:
            return dict(self._snap)

    def _report_changes(self, links, power, ratio) -> None:
        prev, cur = self._prev, {}
        for s in links:
            resets = s.kernel.resets if s.kernel is not None else None
            cur[s.port] = (resets, s.speed_mbps)
            old = prev.get(s.port)
            # resets from before serve started are the panel's and doctor's news, not events
            if resets and old is not None and old[0] is not None and resets > old[0]:
                new = resets - old[0]
                self.emit("usb_reset", f"Edge TPU {s.device} ({s.port}): {new} new USB "
                          f"reset(s) in the kernel log ({resets} since boot; last: "
                          f"{s.kernel.last_reset}). Fix: {link.FIXES['resets']}",
                          {"device": s.device, "port": s.port, "resets": resets})  # fmt: skip
            slow = s.speed_mbps is not None and s.speed_mbps < link.USB3_MBPS
            if slow and (old is None or old[1] != s.speed_mbps):
                self.emit("usb_link_slow", f"Edge TPU {s.device} ({s.port}) is on a USB 2 link "
                          f"({s.speed_mbps} Mb/s). Fix: {link.FIXES['usb2_link']}",
                          {"device": s.device, "speed_mbps": s.speed_mbps})  # fmt: skip
        under = bool(power.hwmon_alarm) or bool((power.throttled or 0) & link.UNDERVOLTAGE_NOW)
        if under and not prev.get("_under"):
            self.emit("undervoltage", f"the Pi reports under-voltage now. Fix: {link.POWER_FIX}",
                      {"throttled": power.throttled})  # fmt: skip
        cur["_under"] = under
        drifted = ratio is not None and ratio >= link.DRIFT_WARN
        if drifted and not prev.get("_drift"):
            self.emit("latency_drift", f"inference is {ratio:.2f}x slower than in the first "
                      f"minute. Fix: {link.FIXES['latency_drift']}", {"ratio": ratio})
        cur["_drift"] = drifted
        self._prev = cur

    def _publish(self, snap: dict) -> None:
        m = self.mqtt
        if m is None or not m.connected.is_set():
            return
        body = json.dumps({k: v for k, v in snap.items() if k != "checked"}, sort_keys=True)
        if body == self._published:
            return
        self._published = body
        m.client.publish(f"{m.topic}/health", json.dumps(snap), qos=m.qos, retain=True)


def _esc(v) -> str:
    return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metric_families(health: dict | None, events: dict) -> list[tuple[str, str, str, list]]:
    """(name, type, help, [(labels, value)]) for /metrics from a :meth:`snapshot` and the
    event counters."""
    out: list[tuple[str, str, str, list]] = []
    heal = [('{result="recovered"}', events.get("device_recovered", 0)),
            ('{result="failed"}', events.get("device_reset_failed", 0))]  # fmt: skip
    out.append(("edgekit_device_resets_total", "counter",
                "Edge TPU resets serve did to heal a wedged device, by outcome.", heal))
    if not health:
        return out
    speed, resets, discon, auto = [], [], [], []
    for d in health.get("devices", []):
        lab = f'{{device="{_esc(d["device"])}",port="{_esc(d["port"])}"}}'
        if d.get("speed_mbps") is not None:
            speed.append((lab, d["speed_mbps"]))
        if d.get("kernel") is not None:
            resets.append((lab, d["kernel"]["resets"]))
            discon.append((lab, d["kernel"]["disconnects"]))
        if d.get("autosuspend") is not None:
            auto.append((lab, int(d["autosuspend"] == "auto")))
    out.append(("edgekit_usb_link_speed_mbps", "gauge",
                "USB link speed of each Edge TPU (5000 = USB 3, 480 = USB 2).", speed))
    out.append(("edgekit_usb_resets_since_boot", "gauge",
                "USB resets of each Edge TPU's port in the kernel log since boot.", resets))
    out.append(("edgekit_usb_disconnects_since_boot", "gauge",
                "USB disconnects of each Edge TPU's port since boot.", discon))
    out.append(("edgekit_usb_autosuspend", "gauge",
                "1 when the kernel may autosuspend the Edge TPU (power/control=auto).", auto))
    p = health.get("power") or {}
    word = p.get("throttled")
    if word is not None or p.get("hwmon_alarm") is not None:
        w = word or 0
        now_uv = int(bool(w & link.UNDERVOLTAGE_NOW) or bool(p.get("hwmon_alarm")))
        out.append(("edgekit_pi_undervoltage", "gauge", "1 when the Pi reports under-voltage "
                    "(now; since boot).", [('{when="now"}', now_uv)] + (
                        [('{when="since_boot"}', int(bool(w & link.UNDERVOLTAGE_SINCE_BOOT)))]
                        if word is not None else [])))  # fmt: skip
    if word is not None:
        out.append(("edgekit_pi_throttled", "gauge", "1 when the Pi is (or was) throttled.",
                    [('{when="now"}', int(bool(word & 0x4))),
                     ('{when="since_boot"}', int(bool(word & 0x40000)))]))  # fmt: skip
    ratio = (health.get("drift") or {}).get("ratio")
    if ratio is not None:
        out.append(("edgekit_inference_drift_ratio", "gauge", "Median inference time now over "
                    "the first minute's (Edge TPU).", [("", ratio)]))  # fmt: skip
    return out
