"""``edgekit serve`` configuration: a TOML file read into a frozen dataclass tree.

Unknown sections and keys are errors naming the key and the file (a typo such as ``thresold``
must not be silently ignored on a device nobody watches). Relative paths (model, labels) are
relative to the config file. Command-line flags override the file through :func:`override`.
See ``systemd/edgekit.toml`` for an annotated example.
"""

from __future__ import annotations

import dataclasses
import math
import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.9/3.10 on Raspberry Pi OS Bullseye
    import tomli as tomllib


@dataclass(frozen=True)
class ModelConfig:
    path: str = ""  # bundle directory, .tflite or _edgetpu.tflite
    labels: str = ""  # label file (default: the bundle's)
    device: str = "auto"  # auto | cpu | usb | usb:0 | pci:0 ...
    top_k: int = 5  # classification
    threshold: float = 0.0  # detection: 0 = the bundle's score threshold (else 0.25)
    iou: float = 0.0  # detection NMS IoU (0 = the bundle's, else 0.45)
    max_detections: int = 0  # detection: boxes kept per frame (0 = the bundle's, else 100)
    decoder: str = ""  # detection head decoder (default: the bundle's, or guessed)
    anchors: str = ""  # darknet anchors file for a yolov3 head (default: the bundle's)
    threads: int = 0  # CPU interpreter threads (0 = runtime default)
    on_tpu_failure: str = "cpu"  # after reopening failed: "cpu" (continue, degraded) | "fail"
    tpu_retry_s: float = 60.0  # on the CPU fallback, try the Edge TPU again this often (0 = never)
    # Hot reload when `path` is replaced (symlink swap, rename into place): poll it this often
    # (0 = only on SIGHUP / `systemctl reload edgekit`). See edgekit.stream.reload.
    watch_s: float = 2.0


@dataclass(frozen=True)
class SourceConfig:
    uri: str = "/dev/video0"  # /dev/videoN, index, file, rtsp:// / http:// URL, folder, picamera2
    loop: bool = False  # restart files/folders at their end
    realtime: bool = False  # pace files at their native fps, dropping frames like a camera
    width: int = 640
    height: int = 480
    fps: float = 0.0
    backoff_s: float = 0.5  # first wait before reconnecting a lost camera (doubles each time)
    backoff_max_s: float = 30.0


@dataclass(frozen=True)
class PipelineConfig:
    smoothing: int = 1  # frames a new label must persist before it is reported
    max_frames: int = 0  # stop after this many results (0 = run forever)
    stale_after_s: float = 10.0  # /healthz fails and the watchdog stops after this long
    hold_s: float = 2.0  # a label counts as gone after this long unseen (appear/leave events)


@dataclass(frozen=True)
class OutputConfig:
    json_lines: bool = True  # results (and events) as JSON lines on stdout
    events: bool = True  # include event lines ({"event": ...}) in the JSON lines


@dataclass(frozen=True)
class HttpConfig:
    enabled: bool = False
    listen: str = "127.0.0.1:8080"
    jpeg_quality: int = 80


@dataclass(frozen=True)
class MqttConfig:
    enabled: bool = False
    host: str = "localhost"
    port: int = 1883
    topic: str = ""  # default edgekit/<hostname>
    client_id: str = ""
    username: str = ""
    password: str = ""
    publish: str = "change"  # change | every
    min_interval_s: float = 1.0
    qos: int = 0
    keepalive_s: int = 30
    discovery: bool = False  # Home Assistant MQTT discovery (count + presence entity per label)
    discovery_prefix: str = "homeassistant"
    tls: bool = False  # connect with TLS, checking the broker's certificate (system CAs)
    ca_file: str = ""  # CA certificate for the broker's (implies tls)


@dataclass(frozen=True)
class WorkerConfig:
    # "process": inference in a child process that may crash or hang without taking serve
    # down (restarted by a watchdog); "inline": in serve's own process; "auto": a process
    # unless [model] device = "cpu" (see docs/DESIGN.md, "Inference worker process").
    mode: str = "auto"
    hang_timeout_s: float = 10.0  # no result for one frame within this: kill and restart
    start_timeout_s: float = 120.0  # model load in a new worker (the Edge TPU probe included)
    max_restarts: int = 5  # more restarts than this within restart_window_s: exit 1
    restart_window_s: float = 600.0


@dataclass(frozen=True)
class FleetConfig:
    # Accept only bundles signed by this key (its .pub text or a path): at startup and on
    # every hot reload (edgekit.signing). Required with a topic.
    public_key: str = ""
    # Bundles from `edgekit rollout` over the [mqtt] broker (edgekit.stream.fleet); "" = off.
    topic: str = ""
    device: str = ""  # this device's name under the topic (default: the hostname)
    state_dir: str = ""  # received bundles (default: $STATE_DIRECTORY/fleet, ~/.cache/edgekit)
    max_bundle_mb: float = 64.0  # MiB; larger bundles (archive or unpacked) are refused
    fetch_timeout_s: float = 120.0  # a bundle sent as a URL must be downloaded within this


@dataclass(frozen=True)
class HealthConfig:
    # Device health (edgekit.stream.devicehealth) and self-healing (edgekit.stream.healing).
    check_every_s: float = 30.0  # read link speed, USB resets, autosuspend, power flags
    self_heal: bool = True  # reset a wedged Edge TPU (USBDEVFS_RESET; unbind/bind as root)
    max_resets_per_hour: int = 3  # no reset loop: beyond this, stay on the CPU and say so
    reset_backoff_s: float = 30.0  # first pause after a failed reset (doubles each time)
    reenumerate_timeout_s: float = 20.0  # wait this long for the device to come back


@dataclass(frozen=True)
class CascadeConfig:
    # Detect, then classify each detection's crop (edgekit.detect.cascade): the bird feeder.
    classifier: str = ""  # classifier bundle/.tflite for the crops ("" = no cascade)
    labels: str = ""  # its label file (default: the bundle's)
    crop_labels: str = ""  # comma-separated detector labels whose crops are classified ("" = all)
    top_k: int = 0  # classes kept per crop (0 = a cascade bundle's, else 3)
    threshold: float = 0.0  # classifier score threshold
    margin: float = 0.1  # crop = box + this fraction of its size on each side
    min_size: int = 16  # px: smaller boxes are not classified
    max_crops: int = 8  # at most this many crops classified per frame (best scores first)


@dataclass(frozen=True)
class ServeConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    fleet: FleetConfig = field(default_factory=FleetConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    cascade: CascadeConfig = field(default_factory=CascadeConfig)


MAX_CONFIG_BYTES = 1024 * 1024  # a real config is a few KiB

_CHOICES = {
    ("model", "decoder"): ("", "ssd-postprocess", "yolov8", "yolov5", "yolo-end2end", "yolov3",
                          "edgekit-anchor-free"),
    ("model", "on_tpu_failure"): ("cpu", "fail"),
    ("mqtt", "publish"): ("change", "every"),
    ("worker", "mode"): ("auto", "process", "inline"),
}
_PATHS = {("model", "path"), ("model", "labels"), ("model", "anchors"), ("fleet", "state_dir"),
          ("mqtt", "ca_file"), ("cascade", "classifier"), ("cascade", "labels")}  # fmt: skip
DAY_S = 86400.0
# Inclusive bounds beyond "not negative": scores are probabilities, a result needs one class,
# ports are 16 bits, MQTT has QoS 0-2; the rest are far beyond any sensible setting but keep
# huge values away from native code (a thread pool of 10^9 segfaults the interpreter) and
# from sleeps that would never end.
_RANGES = {
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
_ENABLING = {"http": "listen", "mqtt": "host"}
# Flags whose name is not --<key>, for errors that name what the user typed.
_FLAGS = {("model", "path"): "--model", ("source", "uri"): "--source", ("http", "listen"): "--http",
          ("pipeline", "hold_s"): "--hold", ("cascade", "classifier"): "--classify"}  # fmt: skip


def load_config(path: str | os.PathLike | None) -> ServeConfig:
    """Read a TOML file (None -> all defaults). Raises EdgekitError naming file and key."""
    if path is None:
        return ServeConfig()
    path = Path(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise EdgekitError(f"{path}: not a regular file", "pass a TOML config file")
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise EdgekitError(f"{path}: no such config file", "check --config") from None
    except IsADirectoryError:
        raise EdgekitError(f"{path}: is a folder", "pass a TOML config file") from None
    except OSError as e:
        raise EdgekitError(f"{path}: cannot read config ({e})", "check permissions") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise EdgekitError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes", "is it a config?")
    try:
        text = raw.decode("utf-8-sig")  # a BOM from a Windows editor is not part of the TOML
    except UnicodeDecodeError as e:
        raise EdgekitError(
            f"{path}: not UTF-8 text (byte {e.start})", "save the config as UTF-8"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise EdgekitError(f"{path}: not valid TOML ({e})", "fix the syntax") from None
    except RecursionError:
        raise EdgekitError(f"{path}: not valid TOML (nested too deeply)", "fix it") from None
    return from_dict(data, where=str(path), base=path.parent)


def from_dict(data: dict, where: str = "config", base: Path | None = None) -> ServeConfig:
    """Build a ServeConfig from nested dicts, validating every key and value type."""
    sections = {f.name: f for f in dataclasses.fields(ServeConfig)}
    built: dict[str, Any] = {}
    for name, value in data.items():
        if name not in sections:
            raise EdgekitError(
                f"{where}: unknown section [{name}]", f"known sections: {', '.join(sections)}"
            )
        if not isinstance(value, dict):
            raise EdgekitError(f"{where}: {name} must be a [{name}] table")
        cls = sections[name].default_factory()  # type: ignore[misc]
        built[name] = _section(type(cls), name, value, where, base)
    return ServeConfig(**built)


def _section(cls, section: str, values: dict, where: str, base: Path | None):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    out = {}
    for key, value in values.items():
        if key not in fields:
            raise EdgekitError(
                f"{where}: unknown key {section}.{key}",
                f"known keys in [{section}]: {', '.join(fields)}",
            )
        default = fields[key].default
        out[key] = _check(section, key, value, default, where)
        if (section, key) == ("fleet", "public_key") and base is not None:
            out[key] = _key_or_path(out[key], base)
        elif (section, key) in _PATHS and out[key] and base is not None:
            out[key] = str(base / Path(out[key]).expanduser())
        elif (section, key) == ("source", "uri") and base is not None:
            out[key] = resolve_uri(out[key], base)
    if _ENABLING.get(section) in values and "enabled" in fields and "enabled" not in values:
        out["enabled"] = True  # [http] listen = ... alone served nothing and said nothing
    return cls(**out)


def _check(section: str, key: str, value: Any, default: Any, where: str) -> Any:
    name = f"{section}.{key}"
    if where == "flag":  # a command-line override: name the flag, not the TOML key
        where, name = "", _FLAGS.get((section, key), f"--{key.replace('_', '-')}")
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
    choices = _CHOICES.get((section, key))
    if choices and value not in choices:
        raise EdgekitError(f"{prefix}{name} = {value!r} unknown", f"use one of: {choices}")
    if (section, key) == ("mqtt", "discovery_prefix"):
        from edgekit.stream.homeassistant import check_prefix

        try:
            value = check_prefix(value)
        except EdgekitError as e:
            raise EdgekitError(f"{prefix}{e.message}", e.hint) from None
    if (section, key) == ("http", "listen"):
        from edgekit.stream.http import parse_listen

        try:
            parse_listen(value)
        except EdgekitError as e:
            raise EdgekitError(f"{prefix}{name} = {value!r}: {e.message}", e.hint) from None
    lo, hi = _RANGES.get((section, key), (None, None))
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f"between {lo:g} and {hi:g}" if hi is not None else f"at least {lo:g}"
        raise EdgekitError(f"{prefix}{name} = {value!r} must be {bounds}")
    if kind in (int, float) and value < 0:
        raise EdgekitError(f"{prefix}{name} must not be negative")
    return value


def _key_or_path(value: str, base: Path) -> str:
    """``[fleet] public_key``: the key's text stays as it is, a relative path is relative to the
    config file's folder."""
    text = value.strip()
    if not text or text.startswith(("ssh-", "-----BEGIN")) or Path(text).is_absolute():
        return text
    from edgekit.signing import looks_like_raw_key

    return text if looks_like_raw_key(text) else str(base / Path(text).expanduser())


def resolve_uri(uri: str, base: Path) -> str:
    """A relative file or folder path in ``[source] uri`` is relative to the config file's
    folder (like ``[model] path``); devices, camera indexes, URLs and picamera2 are kept."""
    text = str(uri).strip()
    if (
        not text
        or text.isdigit()
        or "://" in text
        or text.lower().startswith("picamera2")
        or Path(text).expanduser().is_absolute()
    ):
        return text
    return str(base / text)


def override(config: ServeConfig, **flags: Any) -> ServeConfig:
    """Apply flags ``section__key=value`` (None = not given) on top of ``config``."""
    changes: dict[str, dict[str, Any]] = {}
    for dotted, value in flags.items():
        if value is None:
            continue
        section, key = dotted.split("__", 1)
        default = getattr(getattr(ServeConfig(), section), key)
        changes.setdefault(section, {})[key] = _check(section, key, value, default, "flag")
    return dataclasses.replace(
        config,
        **{s: dataclasses.replace(getattr(config, s), **kv) for s, kv in changes.items()},
    )
