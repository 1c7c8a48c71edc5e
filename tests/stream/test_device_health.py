"""serve's device panel: link health and the Pi's power on /latest, /metrics, the status page
(a real browser), MQTT (a real mosquitto) and as events, read from a fake sysfs/devfs/kernel
log that the test changes while serve runs."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

from edgekit.stream import serve
from edgekit.stream.config import from_dict
from edgekit.stream.devicehealth import DeviceHealth
from edgekit.stream.pipeline import Result
from edgekit.stream.sinks import CallbackSink
from edgekit.stream.sources import OpenCVSource
from tests.runtime.test_link_health import RESET, troubled_pi
from tests.runtime.usb_fakes import kernel_log

from .conftest import free_port
from .test_http import render_page
from .test_mqtt import Subscriber, broker  # noqa: F401 - the fixture (a real mosquitto)


def fetch(url) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


def wait(pred, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_device_panel_metrics_mqtt_and_events(tmp_path, video_avi, classifier, broker):  # noqa: F811
    root = troubled_pi(tmp_path / "root")
    port = free_port()
    sub = Subscriber(broker, "dh")
    cfg = from_dict({"output": {"json_lines": False},
                     "http": {"enabled": True, "listen": f"127.0.0.1:{port}"},
                     "mqtt": {"enabled": True, "host": "127.0.0.1", "port": broker,
                              "topic": "dh"},
                     "health": {"check_every_s": 1.0}})  # fmt: skip
    stop, events, results = threading.Event(), [], []
    sink = CallbackSink(results.append, events.append)
    t = threading.Thread(target=serve.run, args=(cfg,), daemon=True, kwargs={
        "stop": stop, "classifier": classifier, "root": str(root), "extra_sinks": [sink],
        "source": OpenCVSource(str(video_avi), loop=True, fps=0)})  # fmt: skip
    t.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait(lambda: len(results) >= 3, what="results")
        latest = json.loads(fetch(base + "/latest"))
        (dev,) = latest["device_health"]["devices"]
        assert (dev["device"], dev["port"], dev["speed_mbps"], dev["autosuspend"]) == (
            "usb:0", "2-1", 480, "auto")
        assert dev["kernel"]["resets"] == 2 and dev["node"] == "/dev/bus/usb/002/003"
        codes = {f["code"]: f for f in latest["device_health"]["findings"]}
        assert {"usb2_link", "resets", "disconnects", "autosuspend", "undervoltage_now",
                "throttled"} == set(codes)  # fmt: skip
        assert "power/control=on" in codes["autosuspend"]["fix"]
        assert latest["device_health"]["power"]["throttled_hex"] == "0x50005"
        # /metrics
        text = fetch(base + "/metrics").decode()
        samples = dict(ln.rsplit(" ", 1) for ln in text.splitlines() if ln and ln[0] != "#")
        lab = '{device="usb:0",port="2-1"}'
        assert samples[f"edgekit_usb_link_speed_mbps{lab}"] == "480"
        assert samples[f"edgekit_usb_resets_since_boot{lab}"] == "2"
        assert samples[f"edgekit_usb_disconnects_since_boot{lab}"] == "1"
        assert samples[f"edgekit_usb_autosuspend{lab}"] == "1"
        assert samples['edgekit_pi_undervoltage{when="now"}'] == "1"
        assert samples['edgekit_pi_undervoltage{when="since_boot"}'] == "1"
        assert samples['edgekit_pi_throttled{when="now"}'] == "1"
        assert samples['edgekit_device_resets_total{result="recovered"}'] == "0"
        # state events at start: the slow link and the under-voltage, each with its fix
        kinds = [e.kind for e in events]
        assert "usb_link_slow" in kinds and "undervoltage" in kinds and "usb_reset" not in kinds
        # the kernel logs a new reset while serve runs: one event, and the counters follow
        kernel_log(root, RESET)
        wait(lambda: any(e.kind == "usb_reset" for e in events), what="usb_reset event")
        ev = next(e for e in events if e.kind == "usb_reset")
        assert ev.details == {"device": "usb:0", "port": "2-1", "resets": 3}
        assert "1 new USB reset(s)" in ev.message and "cable" in ev.message
        text = fetch(base + "/metrics").decode()
        assert f"edgekit_usb_resets_since_boot{lab} 3" in text
        # MQTT: the panel retained under <topic>/health, the event under <topic>/event
        sub.wait_for(lambda m: m[0] == "dh/event" and '"usb_reset"' in m[1])
        sub.wait_for(lambda m: m[0] == "dh/health")
        last = [json.loads(p) for tp, p, _ in sub.messages if tp == "dh/health"][-1]
        assert last["devices"][0]["port"] == "2-1" and last["power"]["hwmon_alarm"] is True
        # the status page in a real browser: the device panel with the findings' fixes
        out = render_page(base + "/", tmp_path)
        dom = out.stdout
        assert '<div class="card" id="devcard">' in dom, dom[:3000]  # no longer hidden
        assert "usb:0 2-1 18d1:9302: </b>480 Mb/s, 3 USB resets since boot, autosuspend auto" in dom
        assert "get_throttled=0x50005" in dom and "powered USB 3 hub" in dom
    finally:
        stop.set()
        t.join(10)
        sub.close()
    assert not t.is_alive()
    # a late subscriber still gets the last panel (retained)
    late = Subscriber(broker, "dh")
    late.wait_for(lambda m: m[0] == "dh/health" and m[2])
    late.close()


def result(ms: float) -> Result:
    return Result(1, time.time(), (), ms, ms, None)


def test_latency_drift_against_the_first_minute_is_an_event(tmp_path):
    events = []
    h = DeviceHealth(lambda *e: events.append(e), tmp_path, baseline_s=0.3)
    for _ in range(10):
        h.on_result(result(5.0))
    time.sleep(0.35)
    for _ in range(10):
        h.on_result(result(9.0))
    snap = h.refresh()
    assert snap["drift"] == {"baseline_ms": 5.0, "recent_ms": 9.0, "ratio": 1.8}
    (kind, message, details), = events
    assert kind == "latency_drift" and "1.80x slower" in message and details == {"ratio": 1.8}
    h.refresh()
    assert len(events) == 1, "reported once, not on every check"
    # the CPU fallback's times are not the Edge TPU's: they are not counted
    cpu = DeviceHealth(None, tmp_path, backend=lambda: "cpu")
    cpu.on_result(result(50.0))
    assert cpu.drift() == (None, None, None)
