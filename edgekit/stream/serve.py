"""``edgekit serve`` as a library call: config -> source, classifier, sinks, pipeline, systemd.

:func:`run` blocks until the source ends, ``max_frames`` results were produced, ``stop`` is set
(SIGTERM: the CLI sets it) or a fatal error happens. Under systemd (``Type=notify``) it sends
``READY=1`` once the model is loaded and the first frame is classified, ``WATCHDOG=1`` only
while results keep arriving (a hung camera stops the pings and systemd restarts the service),
``STATUS=`` with fps and latency every few seconds and ``STOPPING=1`` on the way out.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Callable

from edgekit.errors import EdgekitError
from edgekit.stream.capture import CaptureThread
from edgekit.stream.config import ServeConfig
from edgekit.stream.devicehealth import DeviceHealth
from edgekit.stream.notify import Notifier
from edgekit.stream.pipeline import FatalError, Pipeline
from edgekit.stream.pool import make_pipeline
from edgekit.stream.presence import Presence, PresenceSink
from edgekit.stream.resilient import ResilientClassifier
from edgekit.stream.serve_status import STATUS_EVERY_S, _source_state, _status, _supervise
from edgekit.stream.sinks import JsonLinesSink
from edgekit.stream.sources import Source, open_source
from edgekit.stream.stats import Stats

__all__ = ["STATUS_EVERY_S", "load_classifier", "load_model", "model_factory", "run",
           "start_workers", "uses_worker", "_status", "_supervise"]  # fmt: skip


def model_factory(config: ServeConfig) -> Callable[[], Any]:
    """A picklable zero-argument callable that builds the task's model
    (:func:`edgekit.tasks.open_task_model`: a Classifier or a Detector, as the bundle says), so
    that a worker process can build it too; the stream code stays model-agnostic. Detection
    settings left at 0 take the bundle's values."""
    from edgekit.tasks import open_task_model

    m = config.model
    if not m.path:
        raise EdgekitError("no model given", "pass --model or set [model] path in the config")
    from edgekit.backends import resolve_model
    from edgekit.detect.cascade import cascade_factory
    from edgekit.errors import named
    from edgekit.labels import read_labels

    with named("[model] path"):  # here, not in a worker: the error names the setting
        resolve_model(m.path)
    if m.labels:
        with named("[model] labels"):
            read_labels(m.labels)

    cascade = cascade_factory(config)  # [cascade], or the classifier a cascade bundle carries
    if cascade is not None:
        return cascade
    return functools.partial(
        open_task_model,
        m.path,
        labels=m.labels or None,
        device=m.device,
        top_k=m.top_k,
        threshold=m.threshold or None,
        iou=m.iou or None,
        max_detections=m.max_detections or None,
        decoder=m.decoder or None,
        threads=m.threads or None,
        **({"anchors": m.anchors} if m.anchors else {}),
    )


def load_classifier(config: ServeConfig):
    """The model in this process."""
    return model_factory(config)()


def uses_worker(config: ServeConfig) -> bool:
    """Whether inference runs in a worker process ([worker] mode; see edgekit.stream.worker)."""
    mode = config.worker.mode
    return mode == "process" or (mode == "auto" and config.model.device.strip().lower() != "cpu")


def load_model(config: ServeConfig, stop: threading.Event | None = None):
    """The model as serve runs it: in worker processes (:func:`start_workers`) or in-process
    (see :func:`uses_worker`).
    ``stop`` interrupts a worker's model load (:class:`~edgekit.stream.worker.Stopped`)."""
    from edgekit.stream.pool import expand_devices
    from edgekit.stream.segment_worker import segment_depth

    # "usb:*", "usb:0,usb:1": one worker each; compiled segments: ONE worker opens all their
    # devices (edgekit.stream.segment_worker)
    devices = expand_devices(config.model.device) if segment_depth(config) is None else None
    if devices is None and not uses_worker(config):
        return load_classifier(config)
    return start_workers(model_factory(config), config, stop)


def start_workers(factory: Callable[..., Any], config: ServeConfig,
                  stop: threading.Event | None = None, **worker_kw):  # fmt: skip
    """serve's worker processes for ``factory``'s model: a
    :class:`~edgekit.stream.pool.DevicePool` with one worker per device of ``[model] device``
    (``usb:*``, ``usb:0,usb:1``), a pool of one for a single device, two frames in flight each,
    so the device never waits for the round trip (docs/DESIGN.md, "Several Edge TPUs"); a
    segment set: one worker with N + 1 frames in flight. ``worker_kw`` replaces ``[worker]``
    settings (scripts/soak.py's quicker backoff)."""
    from edgekit.stream.pool import DevicePool, expand_devices
    from edgekit.stream.segment_worker import segment_depth

    depth = segment_depth(config)  # frames pipelined over the segments' devices
    devices = expand_devices(config.model.device) if depth is None else None
    w = config.worker
    kw = dict(hang_timeout_s=w.hang_timeout_s, start_timeout_s=w.start_timeout_s,
              max_restarts=w.max_restarts, restart_window_s=w.restart_window_s, stop=stop)
    if depth is not None:
        kw["depth"] = depth
    return DevicePool(factory, devices, **{**kw, **worker_kw})


def run(
    config: ServeConfig,
    stop: threading.Event | None = None,
    stdout: IO[str] | None = None,
    notifier: Notifier | None = None,
    classifier: Any = None,
    source: Source | None = None,
    extra_sinks: Sequence[Any] = (),
    on_start: Callable[[dict], None] | None = None,
    reload: threading.Event | None = None,
    root: str = "/",
    resetter: Any = None,
) -> dict:
    """Serve until done; returns the final stats (``Stats.snapshot()`` plus backend info).

    ``classifier``/``source`` replace the ones the config describes (tests inject faults
    there); ``on_start`` receives ``{"http": url, "reload": HotReload}`` etc. once the sinks
    are up. Setting
    ``reload`` (SIGHUP) reloads the model (:mod:`edgekit.stream.reload`). ``root`` is where
    sysfs/devfs are read (device health, self-healing) and ``resetter`` the USB reset
    boundary (:mod:`edgekit.backends.usbreset`); tests pass fakes.
    Raises EdgekitError for configuration problems and for fatal runtime failures.
    """
    from edgekit.stream.reload import HotReload, startup_config

    stop = stop or threading.Event()
    notifier = notifier or Notifier()
    config = startup_config(config)
    s, p = config.source, config.pipeline
    if source is None:
        source = open_source(s.uri, loop=s.loop, width=s.width, height=s.height, fps=s.fps)
    notifier.status(f"loading model {config.model.path}")
    owned = classifier is None
    if owned:
        from edgekit.stream.worker import Stopped

        try:
            classifier = load_model(config, stop)
        except Stopped:  # SIGTERM while the Edge TPU was being opened
            notifier.stopping()
            notifier.close()
            return {}
    stats = Stats()
    sinks: list[Any] = []
    started: dict = {}
    pipeline: Pipeline | None = None
    reloader: HotReload | None = None
    healer = resilient = None
    health = DeviceHealth(None, root, config.health.check_every_s,
                          backend=lambda: resilient.backend if resilient else "?")  # fmt: skip
    try:
        if config.output.json_lines:
            sinks.append(JsonLinesSink(stdout, events=config.output.events))
        infer_holder: dict = {}
        # Labels in view, held against flicker: label_appeared/left events for every sink.
        # After the HTTP sink (its event thumbnails show the frame the event is about), before
        # MQTT (which then publishes this frame's counts).
        presence = Presence(p.hold_s)
        presence_sink = PresenceSink(presence, lambda *a: None)
        model_name = Path(str(config.model.path)).name if config.model.path else ""
        title = f"edgekit · {model_name}" if model_name else "edgekit"

        def info() -> dict:
            r = infer_holder.get("r")
            out = r.info() if r is not None else {}
            cap = infer_holder.get("capture")
            if cap is not None:
                out.update(_source_state(cap, stats, p.stale_after_s))
            if infer_holder.get("mqtt") is not None:
                out["mqtt"] = infer_holder["mqtt"].state()
            if infer_holder.get("reload") is not None:
                out["model"] = infer_holder["reload"].info()
            out["device_health"] = health.snapshot()
            return out

        if config.http.enabled:
            from edgekit.stream.http import HttpSink, parse_listen

            host, port = parse_listen(config.http.listen)
            h = HttpSink(host, port, stats, p.stale_after_s, info, config.http.jpeg_quality,
                         presence=presence, title=title)  # fmt: skip
            sinks.append(h)
            started["http"] = h.url
        sinks.append(presence_sink)
        if config.mqtt.enabled:
            from edgekit.stream.mqtt import MqttSink

            q = config.mqtt
            infer_holder["mqtt"] = MqttSink(
                q.host, q.port, q.topic, q.client_id, q.username, q.password, q.publish,
                q.min_interval_s, q.qos, q.keepalive_s, presence=presence,
                discovery=q.discovery, discovery_prefix=q.discovery_prefix, model_name=model_name,
                tls=q.tls, ca_file=q.ca_file,
            )  # fmt: skip
            sinks.append(infer_holder["mqtt"])
            started["mqtt"] = f"{q.host}:{q.port}"
        sinks.extend(extra_sinks)
        sinks.append(health)
        health.mqtt = infer_holder.get("mqtt")
        capture = CaptureThread(
            source,
            realtime=s.realtime,
            backoff_s=s.backoff_s,
            backoff_max_s=s.backoff_max_s,
            prepare=_resizer(classifier),
        )
        pipeline = make_pipeline(classifier, capture, sinks, p.smoothing, p.max_frames, stats)
        presence_sink.emit = pipeline.emit
        if hasattr(classifier, "on_event"):  # a worker process reports crashes and restarts
            classifier.on_event = pipeline.emit
        infer_holder["capture"] = capture
        if infer_holder.get("mqtt") is not None:  # broker outages: log, JSON lines, page, metrics
            infer_holder["mqtt"].report = pipeline.emit
        health.emit = pipeline.emit
        hc = config.health
        one = not any(c in config.model.device for c in ",*")  # a device list: not yet healed
        if hc.self_heal and hc.max_resets_per_hour > 0 and config.model.device != "cpu" and one:
            from edgekit.stream.healing import Healer

            healer = Healer(pipeline.emit, config.model.device, root, resetter,
                            hc.max_resets_per_hour, hc.reset_backoff_s,
                            hc.reenumerate_timeout_s)  # fmt: skip
        resilient = ResilientClassifier(
            classifier, pipeline.emit, config.model.on_tpu_failure, config.model.tpu_retry_s,
            healer=healer,
        )
        infer_holder["r"] = resilient
        reloader = HotReload(config, resilient, pipeline.emit,
                             lambda c: load_model(c, stop), _resizer, capture,
                             public_key=config.fleet.public_key or None,
                             trigger=reload)  # fmt: skip
        infer_holder["reload"] = pipeline.infer = reloader
        started["reload"] = reloader  # library callers: reloader.reload(path) / .request()
        if on_start:
            on_start(started)
        notifier.status(f"waiting for frames from {source.name}")
        pipeline.start()
        reloader.start()
        health.start()
        if config.fleet.topic:  # `edgekit rollout` over the broker (edgekit.stream.fleet)
            from edgekit.stream.fleet import FleetAgent

            fleet_health = lambda: (stats.frames, stats.last_result_age())  # noqa: E731
            fleet = FleetAgent(config, reloader, fleet_health, pipeline.emit).start()
            sinks.insert(0, fleet)  # closed with the sinks: its "offline" goes out on stop
        _supervise(pipeline, stop, notifier, stats, resilient, p.stale_after_s)
    finally:
        notifier.stopping()
        health.close()
        if healer is not None:
            healer.close()
        if reloader is not None:
            reloader.stop()
        if pipeline is not None:
            pipeline.stop(timeout=1.0)
        current = reloader.resilient.classifier if reloader is not None else classifier
        if (owned or current is not classifier) and hasattr(current, "close"):
            current.close()  # the model serving now: the first one, or the last reloaded
        if pipeline is not None:  # a frame still in inference ends (result, or the worker's
            pipeline.done.wait(config.worker.hang_timeout_s + 2.0)  # watchdog): final counts
        for sink in sinks:
            try:
                sink.close()
            except Exception:  # closing must not hide the real error
                pass
        notifier.close()
    err = pipeline.error
    if isinstance(err, FatalError):
        raise EdgekitError(str(err), "check the Edge TPU connection; see the log above")
    if err is not None:
        raise err
    return {**stats.snapshot(), **resilient.info()}


def _resizer(classifier) -> Callable | None:
    """The classifier's own resize step (same function, same pixels), to run in the capture
    thread: ``classify()`` then finds the frame at input size and skips it. On a 2-core Pi
    this takes the resize of every camera frame off the inference worker."""
    size, mode = getattr(classifier, "input_size", None), getattr(classifier, "resize", None)
    if size is None or mode is None or getattr(classifier, "task", "classify") != "classify":
        return None  # a detector's boxes are in the pixels of the frame it is given
    from edgekit.images import resize

    return lambda rgb: resize(rgb, size, mode)
