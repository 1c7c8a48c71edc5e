"""MQTT against a real mosquitto broker started by the test on a free loopback port."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time

import pytest

from edgekit.stream.mqtt import MqttSink
from edgekit.stream.pipeline import Event, Result

from .conftest import edgekit_cmd, free_port


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    assert os.path.exists(exe), "mosquitto is needed for this test: apt-get install -y mosquitto"
    port = free_port()
    conf = tmp_path_factory.mktemp("mosquitto") / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    import socket

    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(10)


class Subscriber:
    def __init__(self, port, topic):
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, str, bool]] = []
        self.cond = threading.Condition()
        c = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)
        c.on_message = self._on_message
        subscribed = threading.Event()
        c.on_subscribe = lambda *args: subscribed.set()
        c.connect("127.0.0.1", port)
        c.subscribe(topic + "/#", qos=1)
        c.loop_start()
        self.client = c
        assert subscribed.wait(10), "no SUBACK from the broker"  # nothing missed from here on

    def _on_message(self, client, userdata, msg):
        with self.cond:
            self.messages.append((msg.topic, msg.payload.decode(), bool(msg.retain)))
            self.cond.notify_all()

    def wait_for(self, pred, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not any(pred(m) for m in self.messages):
                left = deadline - time.monotonic()
                assert left > 0, f"not received; got {self.messages}"
                self.cond.wait(left)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def serve_with_mqtt(tmp_path, port, topic, model, labels, video) -> subprocess.Popen:
    """`edgekit serve` of ``model`` on ``video`` (looped, real time) on the CPU, publishing to
    the broker on ``port`` under ``topic``; its stderr piped."""
    config = tmp_path / "edgekit.toml"
    config.write_text(
        f'[model]\npath = "{model}"\nlabels = "{labels}"\ndevice = "cpu"\n'
        f'[source]\nuri = "{video}"\nloop = true\nrealtime = true\n'
        f'[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {port}\ntopic = "{topic}"\n'
        "min_interval_s = 0.0\n"
    )
    return subprocess.Popen([*edgekit_cmd(), "serve", "--config", str(config), "--no-json-lines"],
                            stderr=subprocess.PIPE)  # fmt: skip


def result(frame, label):
    classes = ({"id": 1, "label": label, "score": 0.9},)
    return Result(frame, time.time(), classes, 1.0, 2.0, label)


def test_publish_on_change_rate_limit_and_status(broker):
    sub = Subscriber(broker, "t1")
    sink = MqttSink("127.0.0.1", broker, topic="t1", publish="change", min_interval_s=0.0)
    assert sink.connected.wait(10)
    sub.wait_for(lambda m: m[:2] == ("t1/status", "online"))
    for i, label in enumerate(["cat", "cat", "cat", "dog", "dog", "cat"], 1):
        sink.on_result(result(i, label))
    sink.on_event(Event("source_lost", "camera gone", time.time(), {"retry_in_s": 1}))
    sub.wait_for(lambda m: m[0] == "t1/event")
    sub.wait_for(lambda m: m[0] == "t1/result" and json.loads(m[1])["frame"] == 6)
    frames = [json.loads(p)["frame"] for t, p, _ in sub.messages if t == "t1/result"]
    assert frames == [1, 4, 6], "only label changes are published"
    event = json.loads(next(p for t, p, _ in sub.messages if t == "t1/event"))
    assert event["event"] == "source_lost" and event["retry_in_s"] == 1
    sink.close()
    sub.wait_for(lambda m: m[:2] == ("t1/status", "offline"))
    sub.close()
    # A new subscriber gets the retained status.
    late = Subscriber(broker, "t1")
    late.wait_for(lambda m: m == ("t1/status", "offline", True))
    late.close()


def test_rate_limit_every_mode(broker):
    sub = Subscriber(broker, "t2")
    sink = MqttSink("127.0.0.1", broker, topic="t2", publish="every", min_interval_s=3600)
    assert sink.connected.wait(10)
    for i in range(1, 20):
        sink.on_result(result(i, "cat" if i < 10 else "dog"))
    assert sink.published == 1, "at most one message per min_interval_s"
    sink.close()
    sub.close()


def test_last_will_offline_when_the_process_dies(broker, tmp_path, video_avi, small_model,
                                                 labels_path):  # fmt: skip
    sub = Subscriber(broker, "t3")
    proc = serve_with_mqtt(tmp_path, broker, "t3", small_model, labels_path, video_avi)
    try:
        sub.wait_for(lambda m: m[:2] == ("t3/status", "online"), timeout=60)
        sub.wait_for(lambda m: m[0] == "t3/result", timeout=30)
        proc.send_signal(signal.SIGKILL)  # no clean disconnect: the broker sends the will
        proc.wait(10)
        sub.wait_for(lambda m: m[:2] == ("t3/status", "offline"), timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        sub.close()
