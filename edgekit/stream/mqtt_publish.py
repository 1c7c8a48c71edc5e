"""What :class:`~edgekit.stream.mqtt.MqttSink` publishes per frame and per event: the result
under the ``change``/``every`` rule and the rate limit, held counts and per-label count and
presence topics (one unique topic level per label), Home Assistant discovery configs when a
label is first seen (topics in :mod:`edgekit.stream.mqtt`'s docstring)."""

from __future__ import annotations

import json
import time

from edgekit.stream import homeassistant as ha


class MqttPublishing:
    """The publishing half of :class:`~edgekit.stream.mqtt.MqttSink` (its connection half,
    ``client``, ``topic``, lock and state, lives there)."""

    def _slug(self, label: str) -> str:
        with self._lock:
            s = self._slugs.get(label)
            if s is None:
                base = s = ha.slug(label)
                taken = set(self._slugs.values())
                i = 2
                while s in taken:
                    s, i = f"{base}_{i}", i + 1
                self._slugs[label] = s
                return s
        return s

    def _announce(self, labels) -> None:
        for label in labels:
            configs = ha.label_configs(
                self.prefix, self.topic, self.node_id, label, self._slugs[label], self.device
            )
            for topic, payload in configs:
                self.client.publish(topic, json.dumps(payload), qos=1, retain=True)

    def on_result(self, result) -> None:
        self._publish_counts(result)
        # A change held back by the rate limit is not queued: the next frames carry the same
        # label, still differ from the last one sent, and go out once the interval has passed.
        # A label that flips and flips back within the interval is never published.
        now = time.monotonic()
        payload = json.dumps(result.to_dict())
        with self._lock:
            key = _change_key(result)
            self._latest = (key, payload)
            if not self.connected.is_set():
                return  # QoS 0 would be dropped: _on_connect sends the latest result instead
            changed = key != self._last_sent_label
            if self.publish_mode == "change" and not changed:
                return
            if now - self._last_sent_mono < self.min_interval_s:
                return
            self._last_sent_label, self._last_sent_mono = key, now
        self.client.publish(f"{self.topic}/result", payload, qos=self.qos, retain=True)
        self.published += 1

    def _publish_state(self) -> None:
        """Counts and presence of every label seen, retained: after a (re)connect, whatever
        changed while the broker was away (QoS 0 publishes are dropped then) is current again."""
        with self._lock:
            held = self.presence.counts() if self.presence is not None else self._present
            if not held and not self._slugs and not self._sent_counts:
                return  # nothing seen yet
            self._sent_counts, self._counts_mono = dict(held), time.monotonic()
            labels = list(dict.fromkeys([*self._slugs, *held]))
        self.client.publish(f"{self.topic}/counts", json.dumps(held), qos=self.qos, retain=True)
        for label in labels:
            s, n = self._slug(label), held.get(label, 0)
            self.client.publish(f"{self.topic}/count/{s}", str(n), qos=self.qos, retain=True)
            self._presence(label, bool(n))

    def _publish_counts(self, result) -> None:
        held = self.presence.counts() if self.presence is not None else result.present
        now = time.monotonic()
        with self._lock:
            self._present = held
            if not self.connected.is_set():
                return  # dropped at QoS 0: _publish_state sends the state on reconnect
            if held == self._sent_counts or now - self._counts_mono < self.min_interval_s:
                return
            changed = {k: held.get(k, 0) for k in {*held, *self._sent_counts}
                       if held.get(k, 0) != self._sent_counts.get(k, 0)}  # fmt: skip
            self._sent_counts, self._counts_mono = dict(held), now
        self.client.publish(f"{self.topic}/counts", json.dumps(held), qos=self.qos, retain=True)
        for label, n in changed.items():
            self.client.publish(f"{self.topic}/count/{self._slug(label)}", str(n),
                                qos=self.qos, retain=True)  # fmt: skip

    def on_event(self, event) -> None:
        if event.kind == "label_appeared":
            label = str(event.details.get("label"))
            new = label not in self._slugs
            self._slug(label)
            if new and self.discovery:
                self._announce([label])
            self._presence(label, True)
        elif event.kind == "label_left":
            self._presence(str(event.details.get("label")), False)
        self.client.publish(f"{self.topic}/event", json.dumps(event.to_dict()), qos=self.qos)

    def _presence(self, label: str, on: bool) -> None:
        """Retained ``ON``/``OFF`` on ``<topic>/presence/<slug>``; the labels left ON are
        remembered for :meth:`publish_all_off`."""
        with self._lock:
            (self._on.add if on else self._on.discard)(label)
        self.client.publish(f"{self.topic}/presence/{self._slug(label)}", "ON" if on else "OFF",
                            qos=self.qos, retain=True)  # fmt: skip

    def publish_all_off(self):
        """On a clean stop: retained ``OFF`` for every label left ``ON``, ``0`` on its count topic
        and ``{}`` on ``<topic>/counts`` (the retained state must not say "in view" for a
        service that no longer looks). Returns the last message's info (None: nothing sent)."""
        with self._lock:
            on, self._on = sorted(self._on), set()
            counted = sorted(k for k, n in self._sent_counts.items() if n)
            self._sent_counts = {}
        info = None
        for label in dict.fromkeys([*on, *counted]):
            s = self._slug(label)
            info = self.client.publish(f"{self.topic}/count/{s}", "0", qos=self.qos, retain=True)
            if label in on:
                info = self.client.publish(f"{self.topic}/presence/{s}", "OFF", qos=self.qos,
                                           retain=True)  # fmt: skip
        if on or counted:
            info = self.client.publish(f"{self.topic}/counts", "{}", qos=self.qos, retain=True)
        return info


def _change_key(result) -> object:
    """What "changed" means for ``publish = "change"``: the reported label of a classifier,
    the per-label counts of a detector (its label is always None)."""
    if getattr(result, "detections", None) is None:
        return result.label
    return tuple(sorted(result.present.items()))
