"""MQTT per-label counts, appear/leave events with the hold time and Home Assistant discovery,
against a real mosquitto started by the test (the broker fixture of test_mqtt.py)."""

from __future__ import annotations

import json
import time

import pytest

from edgekit.errors import EdgekitError
from edgekit.stream.config import from_dict
from edgekit.stream.mqtt import MqttSink
from edgekit.stream.pipeline import Event, Result
from edgekit.stream.presence import Presence, PresenceSink

from .test_mqtt import Subscriber, broker  # noqa: F401  (the fixture)


def detections(t, labels):
    dets = tuple({"id": i, "label": lb, "score": 0.8, "box": [0, 0, 10, 10]}
                 for i, lb in enumerate(labels))  # fmt: skip
    counts = {}
    for lb in labels:
        counts[lb] = counts.get(lb, 0) + 1
    return Result(int(t * 10), t, (), 1.0, 2.0, None, None, dets, counts)


class Pipe:
    """What serve wires: a presence sink emitting events to every sink, the MQTT sink after it."""

    def __init__(self, sink, hold_s):
        self.presence = Presence(hold_s)
        sink.presence = self.presence
        self.sinks = [PresenceSink(self.presence, self.emit), sink]
        self.events = []

    def emit(self, kind, message, details):
        event = Event(kind, message, time.time(), details)
        self.events.append(event)
        for s in self.sinks:
            s.on_event(event)

    def feed(self, t, labels):
        r = detections(t, labels)
        for s in self.sinks:
            s.on_result(r)


def last(sub, topic):
    msgs = [m for m in sub.messages if m[0] == topic]
    return msgs[-1][1] if msgs else None


def test_counts_and_presence_with_hold_time(broker):  # noqa: F811
    sub = Subscriber(broker, "d1")
    sink = MqttSink("127.0.0.1", broker, topic="d1", min_interval_s=0.0)
    assert sink.connected.wait(10)
    pipe = Pipe(sink, hold_s=1.0)
    # Capture times: two cars and a person, then one car flickers out for 0.5 s (within the
    # hold time: no event), then the person is gone for good (1.2 s > hold: left).
    pipe.feed(0.0, ["car", "car", "person"])
    pipe.feed(0.2, ["car", "person"])
    pipe.feed(0.5, ["person"])
    pipe.feed(1.0, ["car", "person"])
    pipe.feed(1.5, ["car"])
    pipe.feed(2.0, ["car"])
    pipe.feed(2.7, ["car"])
    pipe.feed(3.0, ["car"])
    sub.wait_for(lambda m: m == ("d1/presence/person", "OFF", False))
    sub.wait_for(lambda m: m[0] == "d1/event" and json.loads(m[1])["event"] == "label_left")
    events = [(e.kind, e.details["label"]) for e in pipe.events]
    assert events == [("label_appeared", "car"), ("label_appeared", "person"),
                      ("label_left", "person")]  # fmt: skip
    published = [json.loads(p) for t, p, _ in sub.messages if t == "d1/event"]
    assert [(e["event"], e["label"]) for e in published] == events
    assert published[2]["duration_s"] == 1.0 and published[0]["count"] == 2
    sub.wait_for(lambda m: m[0] == "d1/counts" and json.loads(m[1]) == {"car": 1})
    sub.wait_for(lambda m: m[:2] == ("d1/count/person", "0"))
    counts = [json.loads(p) for t, p, _ in sub.messages if t == "d1/counts"]
    # 2 cars held for 1 s, the person held until it left: no flicker in between.
    assert counts == [{"car": 2, "person": 1}, {"car": 1, "person": 1}, {"car": 1}]
    assert last(sub, "d1/count/car") == "1" and last(sub, "d1/count/person") == "0"
    assert last(sub, "d1/presence/car") == "ON"
    sub.close()
    # State is retained: a subscriber arriving later (Home Assistant after a restart) sees it.
    late = Subscriber(broker, "d1")
    late.wait_for(lambda m: m == ("d1/count/car", "1", True))
    late.wait_for(lambda m: m == ("d1/presence/person", "OFF", True))
    late.wait_for(lambda m: m[0] == "d1/counts" and m[2] and json.loads(m[1]) == {"car": 1})
    late.close()
    sink.close()  # the clean stop turns car OFF: tests/stream/test_mqtt_stop.py


def test_home_assistant_discovery(broker):  # noqa: F811
    ha = Subscriber(broker, "hatest")
    sink = MqttSink("127.0.0.1", broker, topic="edgekit/pi-garage", min_interval_s=0.0,
                    discovery=True, discovery_prefix="hatest", model_name="ssd")  # fmt: skip
    assert sink.connected.wait(10)
    pipe = Pipe(sink, hold_s=0.0)
    pipe.feed(0.0, ["traffic light", "car"])
    node = "edgekit_pi_garage"
    sensor = f"hatest/sensor/{node}/traffic_light_count/config"
    binary = f"hatest/binary_sensor/{node}/traffic_light_presence/config"
    ha.wait_for(lambda m: m[0] == binary)
    ha.wait_for(lambda m: m[0] == f"hatest/binary_sensor/{node}/car_presence/config")
    cfg = json.loads(last(ha, sensor))
    assert cfg["state_topic"] == "edgekit/pi-garage/count/traffic_light"
    assert cfg["state_class"] == "measurement" and cfg["name"] == "traffic light count"
    assert cfg["unique_id"] == f"{node}_traffic_light_count"
    assert cfg["availability_topic"] == "edgekit/pi-garage/status"
    assert (cfg["payload_available"], cfg["payload_not_available"]) == ("online", "offline")
    assert cfg["device"]["identifiers"] == [node] and cfg["device"]["manufacturer"] == "edgekit"
    assert cfg["device"]["model"] == "ssd"
    bcfg = json.loads(last(ha, binary))
    assert bcfg["state_topic"] == "edgekit/pi-garage/presence/traffic_light"
    assert (bcfg["payload_on"], bcfg["payload_off"]) == ("ON", "OFF")
    assert bcfg["device_class"] == "occupancy" and bcfg["device"] == cfg["device"]
    # The state topics the configs name carry the state (retained, or live if this subscriber
    # came in while they were being published).
    state = Subscriber(broker, "edgekit/pi-garage")
    state.wait_for(lambda m: m[:2] == ("edgekit/pi-garage/presence/traffic_light", "ON"))
    state.wait_for(lambda m: m[:2] == ("edgekit/pi-garage/count/traffic_light", "1"))
    state.wait_for(lambda m: m == ("edgekit/pi-garage/status", "online", True))
    # Home Assistant restarts and sends its birth message: edgekit announces again.
    before = sum(m[0] == sensor for m in ha.messages)
    ha.client.publish("hatest/status", "online")
    ha.wait_for(lambda m: sum(x[0] == sensor for x in ha.messages) > before)
    sink.close()
    state.wait_for(lambda m: m == ("edgekit/pi-garage/status", "offline", False))
    state.close()
    ha.close()


def test_discovery_config_is_validated():
    ok = from_dict({"mqtt": {"discovery": True, "discovery_prefix": "ha/"}, "pipeline":
                    {"hold_s": 5}})  # fmt: skip
    assert ok.mqtt.discovery_prefix == "ha" and ok.pipeline.hold_s == 5.0
    cases = [
        ({"mqtt": {"discovery_prefix": "home/#"}}, "not a usable topic prefix"),
        ({"mqtt": {"discovery_prefix": ""}}, "not a usable topic prefix"),
        ({"mqtt": {"discovery": "yes"}}, "must be true or false"),
        ({"mqtt": {"discover": True}}, "unknown key mqtt.discover"),
        ({"pipeline": {"hold_s": float("nan")}}, "finite"),
        ({"pipeline": {"hold_s": float("inf")}}, "finite"),
        ({"pipeline": {"hold_s": -1.0}}, "between 0 and 86400"),
    ]
    for data, message in cases:
        with pytest.raises(EdgekitError, match=message):
            from_dict(data)


def test_state_changed_during_a_broker_outage_is_current_after_reconnect(tmp_path):
    from .conftest import free_port
    from .test_mqtt_outage import Broker, wait

    mosquitto = Broker(tmp_path, free_port())
    mosquitto.start()
    sink = MqttSink("127.0.0.1", mosquitto.port, topic="o3", min_interval_s=0.0)
    try:
        assert sink.connected.wait(10)
        pipe = Pipe(sink, hold_s=0.0)
        pipe.feed(0.0, ["car"])
        mosquitto.stop()  # no persistence: the restarted broker has forgotten everything
        wait(lambda: not sink.connected.is_set())
        pipe.feed(1.0, ["person", "person"])  # car left, two people came: all at QoS 0
        mosquitto.start()
        assert sink.connected.wait(40), "no reconnect"
        late = Subscriber(mosquitto.port, "o3")
        try:
            # Retained, or live when this subscriber came in while they were being sent.
            late.wait_for(lambda m: m[:2] == ("o3/presence/car", "OFF"))
            late.wait_for(lambda m: m[:2] == ("o3/presence/person", "ON"))
            late.wait_for(lambda m: m[:2] == ("o3/count/person", "2"))
            late.wait_for(lambda m: m[:2] == ("o3/count/car", "0"))
            late.wait_for(lambda m: m[0] == "o3/counts" and json.loads(m[1]) == {"person": 2})
        finally:
            late.close()
    finally:
        sink.close()
        mosquitto.stop()
