"""MQTT sink (paho-mqtt >= 2, imported lazily).

Topics under ``topic`` (default ``edgekit/<hostname>``):

* ``<topic>/status``: retained ``online`` once connected, ``offline`` on a clean stop, and
  ``offline`` as the last will, which the broker publishes itself when the connection dies
  (power cut, kill -9, network loss). Home Assistant's availability topic convention.
* ``<topic>/result``: the JSON result (the stdout line format), retained so that it always
  holds the current state for a subscriber that arrives later. With ``publish = "change"`` only
  when the reported (smoothed) label changes (a detector's: its per-label counts); with
  ``"every"`` every frame. Either way at most
  one message per ``min_interval_s``: a change held back by the rate limit goes out with the
  first frame after the interval that still shows it.
* ``<topic>/event``: faults and recoveries (JSON), and ``label_appeared`` / ``label_left``
  (held against flicker: :mod:`edgekit.stream.presence`).
* ``<topic>/counts``: retained JSON ``{label: n}`` of the labels in view (held counts), when
  it changes (at most once per ``min_interval_s``; the next frame carries a held-back change);
  ``<topic>/count/<slug>``: the same per label as a plain retained integer (0 once it left);
  ``<topic>/presence/<slug>``: retained ``ON`` / ``OFF``, on appear and leave. Both tasks:
  a classifier's "in view" is its reported label. A clean stop turns every label ``OFF`` (count
  ``0``, counts ``{}``) before ``offline``; after a crash they keep their last value and only
  the will's ``offline`` says the values are stale.
* ``<topic>/health``: retained JSON of the device panel (link health of every Edge TPU, the
  Pi's power flags, latency drift), when it changes (:mod:`edgekit.stream.devicehealth`).
* With ``discovery``, Home Assistant MQTT discovery configs under ``<discovery_prefix>/``
  for a count sensor and a presence binary sensor per label (:mod:`~.homeassistant`), sent
  for each label when first seen, again on every (re)connect and when Home Assistant says
  ``online`` on ``<discovery_prefix>/status`` (its birth message, after a restart).

paho's network loop runs in its own thread and reconnects by itself; ``publish`` only queues,
so the inference worker never waits for the network.

A broker outage loses nothing that matters: with QoS 0 paho drops what is published while
disconnected, so results are not marked as sent then, and on every (re)connect the current
result is published retained on ``<topic>/result``. Connection failures and recoveries are
reported through ``report(kind, message, details)`` (serve passes the pipeline's ``emit``: log,
JSON lines, status page, /metrics) as ``mqtt_disconnected`` / ``mqtt_connected``, once per
change of state, and ``state()`` gives the current one.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
import time

from edgekit.errors import EdgekitError
from edgekit.stream import homeassistant as ha
from edgekit.stream.mqtt_publish import MqttPublishing
from edgekit.stream.sinks import Sink

log = logging.getLogger("edgekit.stream")


class MqttSink(MqttPublishing, Sink):
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
        *,
        presence=None,
        discovery: bool = False,
        discovery_prefix: str = "homeassistant",
        model_name: str = "",
        tls: bool = False,
        ca_file: str = "",
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
        if not math.isfinite(float(min_interval_s)) or min_interval_s < 0:
            raise EdgekitError(f"mqtt min_interval_s = {min_interval_s!r} must be >= 0")
        if qos not in (0, 1, 2) or isinstance(qos, bool):
            raise EdgekitError(f"mqtt qos = {qos!r} unknown", "use 0, 1 or 2")
        self.broker = f"{host}:{port}"
        self._report_fn = None  # (kind, message, details) -> None; set through .report
        self._pending: list[tuple[str, str]] = []  # state changes before .report was set
        self._up: bool | None = None  # None: never connected yet
        self._latest: tuple[object, str] | None = None  # (label, result JSON) of the last frame
        self.topic = (topic or f"edgekit/{socket.gethostname()}").rstrip("/")
        self.publish_mode, self.min_interval_s, self.qos = publish, float(min_interval_s), qos
        self.presence = presence
        self.discovery = bool(discovery)
        self.prefix = ha.check_prefix(discovery_prefix) if discovery else ""
        self.node_id = ha.slug(self.topic)
        self.device = ha.device_block(self.node_id, f"edgekit {self.topic}", model_name)
        self._slugs: dict[str, str] = {}  # label -> topic level (unique)
        self._sent_counts: dict[str, int] = {}
        self._on: set[str] = set()  # labels whose presence topic says ON
        self._present: dict[str, int] = {}  # the latest counts, sent or not
        self._counts_mono = -1e18
        self.connected = threading.Event()
        self.published = 0
        self._last_sent_label: object = object()  # sentinel: nothing sent yet
        self._last_sent_mono = -1e18
        self._lock = threading.Lock()
        self._closing = False
        client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"edgekit-{socket.gethostname()}-{id(self):x}",
        )
        if username:
            client.username_pw_set(username, password or None)
        if tls or ca_file:  # the broker's certificate is checked (the system's CAs, or ca_file)
            from edgekit.stream.fleet_wire import use_tls

            use_tls(client, ca_file)
        # The will is registered with the broker at CONNECT time: if we vanish without a
        # DISCONNECT, the broker itself publishes the retained "offline".
        client.will_set(f"{self.topic}/status", "offline", qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
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
            self._went_down(f"broker refused the connection ({reason_code})")
            return
        client.publish(f"{self.topic}/status", "online", qos=1, retain=True)
        if self.discovery:
            client.subscribe(f"{self.prefix}/status", qos=1)
            self._announce(list(self._slugs))
        with self._lock:
            latest = self._latest
            if latest is not None:  # what subscribers missed while we were away
                self._last_sent_label, self._last_sent_mono = latest[0], time.monotonic()
        if latest is not None:
            client.publish(f"{self.topic}/result", latest[1], qos=self.qos, retain=True)
        self._publish_state()
        # Only now: whoever waits for the connection finds the current state already sent.
        self.connected.set()
        was_down, self._up = self._up is False, True
        if was_down:
            self._report("mqtt_connected", f"MQTT broker {self.broker}: connected again")

    def _on_connect_fail(self, client, userdata):
        self._went_down("cannot connect")

    def _went_down(self, why: str) -> None:
        self.connected.clear()
        if self._up is not False:  # report each outage once, not every retry
            self._up = False
            self._report(
                "mqtt_disconnected",
                f"MQTT broker {self.broker}: {why}; retrying, the current result is re-sent "
                "on reconnect",
            )

    @property
    def report(self):
        return self._report_fn

    @report.setter
    def report(self, fn) -> None:
        """Set the reporter; state changes seen before (the broker may already have refused us
        while serve was still starting) are delivered to it now."""
        with self._lock:
            self._report_fn, pending, self._pending = fn, self._pending, []
        for kind, message in pending:
            fn(kind, message, {"broker": self.broker})

    def _report(self, kind: str, message: str) -> None:
        with self._lock:
            fn = self._report_fn
            if fn is None:
                self._pending.append((kind, message))
                return
        fn(kind, message, {"broker": self.broker})

    def state(self) -> dict:
        """``{"broker", "connected"}`` for the status page and /metrics."""
        return {"broker": self.broker, "connected": self.connected.is_set()}

    def _on_message(self, client, userdata, msg):
        # Home Assistant's birth message: it restarted and forgot non-retained state.
        if msg.topic == f"{self.prefix}/status" and msg.payload == b"online":
            self._announce(list(self._slugs))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None):
        if self._closing:
            self.connected.clear()
            return
        self._went_down(f"connection lost ({reason_code})")

    def close(self, timeout: float = 1.0) -> None:
        """Clean stop: retained ``OFF`` for the labels in view (:meth:`publish_all_off`), then
        retained ``offline``, then DISCONNECT (so the will is not used). The broker handles one
        connection's messages in order: once ``offline`` is acknowledged, the OFFs were in."""
        self._closing = True
        try:
            if self.connected.is_set():
                self.publish_all_off()
                info = self.client.publish(f"{self.topic}/status", "offline", qos=1, retain=True)
                info.wait_for_publish(timeout)
        except (RuntimeError, ValueError):
            pass
        finally:
            self.client.disconnect()
            self.client.loop_stop()
