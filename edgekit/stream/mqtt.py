"""MQTT sink (paho-mqtt >= 2, imported lazily).

Topics under ``topic`` (default ``edgekit/<hostname>``):

* ``<topic>/status``: retained ``online`` once connected, ``offline`` on a clean stop, and
  ``offline`` as the last will, which the broker publishes itself when the connection dies
  (power cut, kill -9, network loss). Home Assistant's availability topic convention.
* ``<topic>/result``: the JSON result (the stdout line format). With ``publish = "change"`` only
  when the reported (smoothed) label changes; with ``"every"`` every frame. Either way at most
  one message per ``min_interval_s``: a change held back by the rate limit goes out with the
  first frame after the interval that still shows it.
* ``<topic>/event``: faults and recoveries (JSON).

paho's network loop runs in its own thread and reconnects by itself; ``publish`` only queues,
so the inference worker never waits for the network.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time

from edgekit.errors import EdgekitError
from edgekit.stream.sinks import Sink

log = logging.getLogger("edgekit.stream")


class MqttSink(Sink):
    def __init__(
        self,
        host: str = "localhost",
        port: int = 1883,
        topic: str = "",
        client_id: str = "",
        username: str = "",
        password: str = "",
        publish: str = "change",
        min_interval_s: float = 1.0,
        qos: int = 0,
        keepalive_s: int = 30,
    ):
        try:
            import paho.mqtt.client as mqtt
        except ImportError:
            raise EdgekitError(
                "MQTT output needs paho-mqtt, which is not installed",
                "pip install 'paho-mqtt>=2' (or edgekit[device])",
            ) from None
        if publish not in ("change", "every"):
            raise EdgekitError(f"mqtt publish={publish!r} unknown", "use change or every")
        if not hasattr(mqtt, "CallbackAPIVersion"):
            raise EdgekitError("paho-mqtt is too old", "pip install 'paho-mqtt>=2'")
        self.topic = (topic or f"edgekit/{socket.gethostname()}").rstrip("/")
        self.publish_mode, self.min_interval_s, self.qos = publish, float(min_interval_s), qos
        self.connected = threading.Event()
        self.published = 0
        self._last_sent_label: object = object()  # sentinel: nothing sent yet
        self._last_sent_mono = -1e18
        self._lock = threading.Lock()
        client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"edgekit-{socket.gethostname()}-{id(self):x}",
        )
        if username:
            client.username_pw_set(username, password or None)
        # The will is registered with the broker at CONNECT time: if we vanish without a
        # DISCONNECT, the broker itself publishes the retained "offline".
        client.will_set(f"{self.topic}/status", "offline", qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client = client
        try:
            client.connect_async(host, int(port), keepalive=int(keepalive_s))
        except (OSError, ValueError) as e:
            raise EdgekitError(
                f"MQTT broker {host}:{port}: {e}", "check [mqtt] host/port"
            ) from None
        client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties=None):
        if reason_code.is_failure:
            log.warning("MQTT connection refused: %s", reason_code)
            return
        client.publish(f"{self.topic}/status", "online", qos=1, retain=True)
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None):
        self.connected.clear()

    def on_result(self, result) -> None:
        # A change held back by the rate limit is not queued: the next frames carry the same
        # label, still differ from the last one sent, and go out once the interval has passed.
        # A label that flips and flips back within the interval is never published.
        now = time.monotonic()
        with self._lock:
            changed = result.label != self._last_sent_label
            if self.publish_mode == "change" and not changed:
                return
            if now - self._last_sent_mono < self.min_interval_s:
                return
            self._last_sent_label, self._last_sent_mono = result.label, now
        self.client.publish(f"{self.topic}/result", json.dumps(result.to_dict()), qos=self.qos)
        self.published += 1

    def on_event(self, event) -> None:
        self.client.publish(f"{self.topic}/event", json.dumps(event.to_dict()), qos=self.qos)

    def close(self, timeout: float = 1.0) -> None:
        """Clean stop: retained ``offline``, then DISCONNECT (so the will is not used)."""
        try:
            if self.connected.is_set():
                info = self.client.publish(f"{self.topic}/status", "offline", qos=1, retain=True)
                info.wait_for_publish(timeout)
        except (RuntimeError, ValueError):
            pass
        finally:
            self.client.disconnect()
            self.client.loop_stop()
