"""MQTT across broker outages, against a real mosquitto that the test stops and restarts: a
label change made while the broker is down is not lost (the current result is re-published,
retained, after the reconnect), and every outage and recovery is reported once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest

from edgekit.errors import EdgekitError
from edgekit.stream.mqtt import MqttSink

from .conftest import free_port
from .test_mqtt import Subscriber, result


class Broker:
    def __init__(self, tmp_path, port: int):
        self.exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        assert os.path.exists(self.exe), "mosquitto is needed: apt-get install -y mosquitto"
        self.port = port
        self.conf = tmp_path / "mosquitto.conf"
        self.conf.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        )
        self.proc = None

    def start(self) -> None:
        import socket

        self.proc = subprocess.Popen(
            [self.exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def wait(pred, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize("publish", ["change", "every"])
def test_change_during_outage_is_published_after_reconnect(tmp_path, publish):
    broker = Broker(tmp_path, free_port())
    broker.start()
    events: list[tuple[str, str]] = []
    sink = MqttSink("127.0.0.1", broker.port, topic="o1", publish=publish, min_interval_s=0.0,
                    qos=0)  # fmt: skip
    sink.report = lambda kind, message, details: events.append((kind, message))
    try:
        assert sink.connected.wait(10)
        sink.on_result(result(1, "cat"))
        broker.stop()
        wait(lambda: not sink.connected.is_set())
        sink.on_result(result(2, "dog"))  # the change happens while the broker is down
        sink.on_result(result(3, "dog"))
        assert [k for k, _ in events] == ["mqtt_disconnected"]
        assert "127.0.0.1" in events[0][1]
        broker.start()
        assert sink.connected.wait(40), "no reconnect"
        late = Subscriber(broker.port, "o1")  # arrives after the outage
        try:
            # Retained, or live if this subscriber got in before the re-publish reached the
            # broker (paho sends what on_connect publishes after the callback returns).
            late.wait_for(lambda m: m[0] == "o1/result", timeout=10)
            current = [json.loads(p) for t, p, _ in late.messages if t == "o1/result"][-1]
            assert current["label"] == "dog" and current["frame"] == 3
        finally:
            late.close()
        wait(lambda: [k for k, _ in events] == ["mqtt_disconnected", "mqtt_connected"])
        assert sink.state() == {"broker": f"127.0.0.1:{broker.port}", "connected": True}
    finally:
        sink.close()
        broker.stop()


def test_broker_down_at_start_is_reported_once(tmp_path):
    events: list[str] = []
    sink = MqttSink("127.0.0.1", free_port(), topic="o2")
    sink.report = lambda kind, message, details: events.append(kind)
    try:
        wait(lambda: events == ["mqtt_disconnected"], timeout=15)
        time.sleep(2.5)  # paho retries every 1-2 s: still reported once
        assert events == ["mqtt_disconnected"] and not sink.state()["connected"]
    finally:
        sink.close()


@pytest.mark.parametrize("qos", [-1, 3, True])
def test_qos_outside_0_to_2_is_refused(qos):
    with pytest.raises(EdgekitError, match="qos"):
        MqttSink("127.0.0.1", 1883, qos=qos)
