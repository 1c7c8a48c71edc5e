"""``edgekit serve`` configuration sections: one frozen dataclass per TOML table, with its
defaults (times in seconds, sizes in pixels or MiB as named). :class:`ServeConfig` holds them
all; :mod:`edgekit.stream.config` reads a file into it and :mod:`~.config_rules` checks values.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
