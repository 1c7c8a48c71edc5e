"""Home Assistant MQTT discovery payloads for the per-label topics (pure functions).

Home Assistant creates entities from retained JSON configs published under
``<prefix>/<component>/<node_id>/<object_id>/config``
(https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery). Per label edgekit announces:

* ``sensor`` ``<label> count``: state ``<topic>/count/<slug>`` (an integer, retained),
  ``state_class: measurement`` so HA keeps long-term statistics;
* ``binary_sensor`` ``<label>``: state ``<topic>/presence/<slug>`` (``ON``/``OFF``, retained),
  ``device_class: occupancy``.

Both name ``<topic>/status`` as their availability topic: the retained ``online`` / ``offline``
that the MQTT sink's last will keeps true when the process dies. One device block groups them.
"""

from __future__ import annotations

import re

from edgekit.errors import EdgekitError


def slug(text: str) -> str:
    """``[a-z0-9_]`` only (topic levels and HA object ids); never empty."""
    return re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_") or "label"


def check_prefix(prefix: str) -> str:
    """A discovery prefix is plain topic levels: no wildcards, no empty level."""
    p = str(prefix).strip("/")
    if not p or any(c in p for c in "+#\0") or "//" in p:
        raise EdgekitError(
            f"mqtt.discovery_prefix = {prefix!r} is not a usable topic prefix",
            'use plain topic levels without + or #, e.g. "homeassistant"',
        )
    return p


def device_block(node_id: str, name: str, model: str = "") -> dict:
    from edgekit import __version__

    block = {"identifiers": [node_id], "name": name, "manufacturer": "edgekit",
             "sw_version": __version__}  # fmt: skip
    if model:
        block["model"] = model
    return block


def label_configs(
    prefix: str, topic: str, node_id: str, label: str, label_slug: str, device: dict
) -> list[tuple[str, dict]]:
    """``[(config_topic, payload)]`` for one label's count sensor and presence binary sensor."""
    availability = {
        "availability_topic": f"{topic}/status",
        "payload_available": "online",
        "payload_not_available": "offline",
    }
    count = {
        "name": f"{label} count",
        "unique_id": f"{node_id}_{label_slug}_count",
        "state_topic": f"{topic}/count/{label_slug}",
        "state_class": "measurement",
        "icon": "mdi:counter",
        **availability,
        "device": device,
    }
    presence = {
        "name": label,
        "unique_id": f"{node_id}_{label_slug}_presence",
        "state_topic": f"{topic}/presence/{label_slug}",
        "payload_on": "ON",
        "payload_off": "OFF",
        "device_class": "occupancy",
        **availability,
        "device": device,
    }
    return [
        (f"{prefix}/sensor/{node_id}/{label_slug}_count/config", count),
        (f"{prefix}/binary_sensor/{node_id}/{label_slug}_presence/config", presence),
    ]
