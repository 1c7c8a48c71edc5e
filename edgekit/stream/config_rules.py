"""The rules every ``edgekit serve`` config value passes, from a TOML file or a flag: its type
(the default's), the allowed choices, inclusive ranges, which keys are paths, which key turns
its section on, and which flag names a key in errors. :func:`check_value` applies them.
"""

from __future__ import annotations

import math
from typing import Any

from edgekit.errors import EdgekitError

CHOICES = {
    ("model", "decoder"): ("", "ssd-postprocess", "yolov8", "yolov5", "yolo-end2end", "yolov3",
                          "edgekit-anchor-free"),
    ("model", "on_tpu_failure"): ("cpu", "fail"),
    ("mqtt", "publish"): ("change", "every"),
    ("worker", "mode"): ("auto", "process", "inline"),
}
PATHS = {("model", "path"), ("model", "labels"), ("model", "anchors"), ("fleet", "state_dir"),
          ("mqtt", "ca_file"), ("cascade", "classifier"), ("cascade", "labels")}  # fmt: skip
DAY_S = 86400.0
# Inclusive bounds beyond "not negative": scores are probabilities, a result needs one class,
# ports are 16 bits, MQTT has QoS 0-2; the rest are far beyond any sensible setting but keep
# huge values away from native code (a thread pool of 10^9 segfaults the interpreter) and
# from sleeps that would never end.
RANGES = {
    ("model", "threshold"): (0.0, 1.0),
    ("model", "top_k"): (1, None),
    ("model", "threads"): (0, 256),
    ("model", "tpu_retry_s"): (0.0, 7 * DAY_S),
    ("source", "width"): (0, 16384),
    ("source", "height"): (0, 16384),
    ("source", "fps"): (0.0, 1000.0),
    ("source", "backoff_s"): (0.01, 3600.0),
    ("source", "backoff_max_s"): (0.01, DAY_S),
    ("pipeline", "smoothing"): (1, 100_000),
    ("pipeline", "stale_after_s"): (0.1, DAY_S),
    ("pipeline", "hold_s"): (0.0, DAY_S),
    ("http", "jpeg_quality"): (1, 100),
    ("mqtt", "port"): (1, 65535),
    ("mqtt", "min_interval_s"): (0.0, DAY_S),
    ("mqtt", "qos"): (0, 2),
    ("mqtt", "keepalive_s"): (5, 65535),
    ("worker", "hang_timeout_s"): (0.1, DAY_S),
    ("worker", "start_timeout_s"): (1.0, DAY_S),
    ("worker", "max_restarts"): (1, 1000),
    ("worker", "restart_window_s"): (1.0, 7 * DAY_S),
    ("health", "check_every_s"): (1.0, DAY_S),
    ("health", "max_resets_per_hour"): (0, 60),
    ("health", "reset_backoff_s"): (1.0, DAY_S),
    ("health", "reenumerate_timeout_s"): (1.0, 600.0),
    ("model", "iou"): (0.0, 1.0),
    ("model", "max_detections"): (0, 10_000),
    ("model", "watch_s"): (0.0, DAY_S),
    ("fleet", "max_bundle_mb"): (0.001, 4096.0),
    ("fleet", "fetch_timeout_s"): (1.0, DAY_S),
    ("cascade", "top_k"): (0, 1000),
    ("cascade", "threshold"): (0.0, 1.0),
    ("cascade", "margin"): (0.0, 2.0),
    ("cascade", "min_size"): (0, 16384),
    ("cascade", "max_crops"): (0, 1000),
}
# Setting this key of a section without `enabled` turns the section on: someone who wrote
# where to listen (or which broker to use) wants it; `enabled = false` still turns it off.
ENABLING = {"http": "listen", "mqtt": "host"}
# Flags whose name is not --<key>, for errors that name what the user typed.
FLAGS = {("model", "path"): "--model", ("source", "uri"): "--source", ("http", "listen"): "--http",
          ("pipeline", "hold_s"): "--hold", ("cascade", "classifier"): "--classify"}  # fmt: skip


def check_value(section: str, key: str, value: Any, default: Any, where: str) -> Any:
    """``section.key = value`` checked against the key's default (its type), the choices and the
    range; a float comes back as float. ``where`` names the file (``"flag"``: a command-line
    override, named as the flag). Raises EdgekitError saying what is wrong."""
    name = f"{section}.{key}"
    if where == "flag":  # a command-line override: name the flag, not the TOML key
        where, name = "", FLAGS.get((section, key), f"--{key.replace('_', '-')}")
    prefix = f"{where}: " if where else ""
    kind = type(default)
    ok = (
        isinstance(value, bool)
        if kind is bool
        else isinstance(value, int) and not isinstance(value, bool)
        if kind is int
        else isinstance(value, (int, float)) and not isinstance(value, bool)
        if kind is float
        else isinstance(value, (str, int)) and not isinstance(value, bool)  # uri = 0 is fine
    )
    if not ok:
        want = {bool: "true or false", int: "an integer", float: "a number"}.get(kind, "a string")
        raise EdgekitError(f"{prefix}{name} must be {want}, not {value!r}")
    if kind is float:
        value = float(value)
        if not math.isfinite(value):
            raise EdgekitError(f"{prefix}{name} = {value!r} must be a finite number")
    elif kind is str:
        value = str(value)
    choices = CHOICES.get((section, key))
    if choices and value not in choices:
        raise EdgekitError(f"{prefix}{name} = {value!r} unknown",
                           "use one of: " + ", ".join(c for c in choices if c)
                           + (" (or leave it out)" if "" in choices else ""))  # fmt: skip
    if (section, key) == ("mqtt", "discovery_prefix"):
        from edgekit.stream.homeassistant import check_prefix

        try:
            value = check_prefix(value)
        except EdgekitError as e:
            raise EdgekitError(f"{prefix}{e.message}", e.hint) from None
    if (section, key) == ("http", "listen"):
        from edgekit.stream.http_server import parse_listen

        try:
            parse_listen(value)
        except EdgekitError as e:
            raise EdgekitError(f"{prefix}{name} = {value!r}: {e.message}", e.hint) from None
    lo, hi = RANGES.get((section, key), (None, None))
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f"between {lo:g} and {hi:g}" if hi is not None else f"at least {lo:g}"
        raise EdgekitError(f"{prefix}{name} = {value!r} must be {bounds}")
    if kind in (int, float) and value < 0:
        raise EdgekitError(f"{prefix}{name} must not be negative")
    return value
