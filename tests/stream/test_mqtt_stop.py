"""A clean stop leaves no label "in view" on the broker: every retained presence topic that said
ON says OFF (count 0, counts {}) before the retained ``offline``, against a real mosquitto
started by the test; both through the sink and through ``edgekit serve`` stopped by SIGTERM
(what systemd does)."""

from __future__ import annotations

import json
import signal

from edgekit.stream.mqtt import MqttSink

from .test_mqtt import Subscriber, broker, serve_with_mqtt  # noqa: F401  (the fixture)
from .test_mqtt_presence import Pipe


def retained(port, topic) -> dict[str, str]:
    """{topic: payload} of the retained messages under ``topic``: a late subscriber's view.
    The broker queues them to the subscriber when it subscribes, so a marker the subscriber
    publishes afterwards comes back after all of them."""
    late = Subscriber(port, topic)
    late.client.publish(f"{topic}/marker", "end", qos=1)
    late.wait_for(lambda m: m[0] == f"{topic}/marker")
    late.close()
    return {t: p for t, p, was_retained in late.messages if was_retained}


def test_clean_stop_turns_every_label_off(broker):  # noqa: F811
    sub = Subscriber(broker, "s1")
    sink = MqttSink("127.0.0.1", broker, topic="s1", min_interval_s=0.0)
    assert sink.connected.wait(10)
    pipe = Pipe(sink, hold_s=0.0)
    pipe.feed(0.0, ["car", "car", "person"])
    pipe.feed(0.5, ["car", "dog"])  # person left (hold 0): already OFF
    sub.wait_for(lambda m: m[:2] == ("s1/presence/dog", "ON"))
    sub.wait_for(lambda m: m[0] == "s1/counts" and json.loads(m[1]) == {"car": 1, "dog": 1})
    sub.close()
    before = retained(broker, "s1")
    assert before["s1/presence/car"] == before["s1/presence/dog"] == "ON"
    assert before["s1/presence/person"] == "OFF" and before["s1/count/car"] == "1"
    sink.close()
    after = retained(broker, "s1")
    assert after["s1/status"] == "offline"
    assert {t: p for t, p in after.items() if "/presence/" in t} == {
        "s1/presence/car": "OFF", "s1/presence/dog": "OFF", "s1/presence/person": "OFF"}
    assert {t: p for t, p in after.items() if "/count/" in t} == {
        "s1/count/car": "0", "s1/count/dog": "0", "s1/count/person": "0"}
    assert json.loads(after["s1/counts"]) == {}


def test_serve_stopped_by_sigterm_leaves_presence_off(broker, tmp_path, video_avi,  # noqa: F811
                                                     small_model, labels_path):  # fmt: skip
    sub = Subscriber(broker, "s2")
    proc = serve_with_mqtt(tmp_path, broker, "s2", small_model, labels_path, video_avi)
    try:
        sub.wait_for(lambda m: m[0].startswith("s2/presence/") and m[1] == "ON", timeout=90)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err.decode()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        sub.close()
    after = retained(broker, "s2")
    presence = {t: p for t, p in after.items() if "/presence/" in t}
    assert presence and set(presence.values()) == {"OFF"}, after
    assert after["s2/status"] == "offline"
