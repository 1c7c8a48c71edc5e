"""``edgekit serve``: classify camera frames continuously (see edgekit.stream.serve)."""

from __future__ import annotations

import logging
import signal
import threading

import click

from edgekit.cli.common import libedgetpu_option


@click.command("serve")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="TOML config file (see systemd/edgekit.toml). Flags override it.",
)
@click.option("--model", type=click.Path(), help="Bundle directory, .tflite or _edgetpu.tflite.")
@click.option("--labels", type=click.Path(), help="Label file (default: the bundle's).")
@click.option(
    "--source",
    help="/dev/videoN, camera index, video file, rtsp:// or http:// URL, "
    "image folder, or picamera2[:lores].",
)
@click.option(
    "--device",
    "-d",
    help="auto (Edge TPU if attached, else CPU), cpu, usb, usb:N, pci, pci:N or :N; several "
    "Edge TPUs: usb:* (all attached) or a list usb:0,usb:1 [default: auto].",
)
@click.option(
    "--http",
    "http_listen",
    metavar="HOST:PORT",
    help="Serve the status page, /latest, /healthz, /metrics (e.g. 127.0.0.1:8080).",
)
@click.option("--max-frames", type=int, help="Stop after N results (default: run forever).")
@click.option("--top-k", "-k", type=int, help="Best classes to report per frame [default: 5].")
@click.option(
    "--threshold",
    "-t",
    type=float,
    help="Drop classes or boxes scoring below this (0..1) [default: 0; a detector: the bundle's].",
)
@click.option("--iou", type=float, help="Detection: NMS IoU (0..1) [default: the bundle's].")
@click.option(
    "--max-detections", type=int, help="Detection: boxes kept per frame [default: the bundle's]."
)
@click.option(
    "--decoder",
    help="Detection head decoder: ssd-postprocess, yolov8, yolov5, yolo-end2end, yolov3, "
    "edgekit-anchor-free [default: the bundle's, else guessed].",
)
@click.option("--threads", type=int, help="CPU interpreter threads [default: the runtime's].")
@click.option("--loop/--no-loop", default=None, help="Restart a video file or folder at its end.")
@click.option(
    "--realtime/--no-realtime",
    default=None,
    help="Pace a video file at its own fps, dropping frames like a camera.",
)
@click.option(
    "--smoothing", type=int, help="Frames a new label must persist to be reported [default: 1]."
)
@click.option(
    "--hold",
    "hold_s",
    type=float,
    metavar="SECONDS",
    help="A label counts as gone (label_left, counts down) only after this long unseen "
    "[default: 2].",
)
@click.option(
    "--json-lines/--no-json-lines",
    default=None,
    help="Results as JSON lines on stdout (default on).",
)
@click.option("--summary", is_flag=True, help="Print final stats as JSON on stderr at the end.")
@click.option(
    "--check",
    "check_only",
    is_flag=True,
    help="Check config, model, labels and source, print one line and exit (0: OK, 1: not).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level (default WARNING).")
@click.option(
    "--worker",
    type=click.Choice(["auto", "process", "inline"]),
    help="Run inference in a worker process restarted if it crashes or hangs: auto (unless "
    "--device cpu), process (always) or inline [default: auto].",
)
@click.option(
    "--classify",
    "classifier",
    type=click.Path(),
    help="Cascade: classify each detection's crop with this classifier ([cascade] classifier).",
)
@click.option(
    "--anchors",
    type=click.Path(dir_okay=False),
    help="Anchors file of a yolov3 head (darknet's 10,14, 23,27, ...) [default: the bundle's].",
)
@click.option(
    "--crop-labels",
    help="Cascade: comma-separated detector labels whose crops are classified [default: all].",
)
@click.option("--classify-labels", type=click.Path(),
              help="Cascade: the classifier's label file when it is not a bundle ([cascade] "
              "labels).")  # fmt: skip
@click.option("--classify-top-k", type=click.IntRange(1, 1000),
              help="Cascade: classes kept per crop ([cascade] top_k) [default: the cascade "
              "bundle's, else 3].")  # fmt: skip
@libedgetpu_option
def serve(config_path, model, labels, source, device, http_listen, max_frames, top_k,
          threshold, iou, max_detections, decoder, threads, loop, realtime, smoothing,
          hold_s, json_lines, summary, check_only, verbose, worker, classifier,
          anchors, crop_labels, classify_labels, classify_top_k):  # fmt: skip
    """Classify or detect objects in frames from a camera, stream or file; publish the results.

    Results are JSON lines on stdout: frame, timestamp, classes [{id, label, score}],
    inference_ms, latency_ms, label; for a detector frame, timestamp, detections [{id, label,
    score, box: [x0, y0, x1, y1]}] (pixels of the frame), counts {label: n}, decode_ms,
    image_size, inference_ms, latency_ms; with a cascade (--classify) each detection has its
    crop's classes, counts are per species, and detect_ms, classify_ms, crop_ms, crops are
    added. Scores have 4 decimals, times (ms) 3. Events (faults, recoveries,
    label_appeared/label_left) are lines with an "event" key. Under systemd (Type=notify) it
    reports readiness, watchdog and status.
    """
    from edgekit.stream import serve as serve_lib
    from edgekit.stream.config import load_config, override

    handler = logging.StreamHandler()
    handler.setFormatter(_CliFormatter())
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])
    config = load_config(config_path)
    config = override(
        config,
        model__path=model, model__labels=labels, model__device=device,
        model__top_k=top_k, model__threshold=threshold, model__threads=threads,
        model__iou=iou, model__max_detections=max_detections, model__decoder=decoder,
        model__anchors=anchors,
        source__uri=source, source__loop=loop, source__realtime=realtime,
        pipeline__max_frames=max_frames, pipeline__smoothing=smoothing, pipeline__hold_s=hold_s,
        output__json_lines=json_lines,
        http__enabled=True if http_listen else None, http__listen=http_listen,
        worker__mode=worker, cascade__classifier=classifier, cascade__crop_labels=crop_labels,
        cascade__labels=classify_labels, cascade__top_k=classify_top_k,
    )  # fmt: skip
    if crop_labels is not None and not any(n.strip() for n in crop_labels.split(",")):
        raise click.BadParameter("give one or more detector labels, e.g. bird,cat",
                                 param_hint="--crop-labels")  # fmt: skip  (as detect says)
    given = [f for f, v in (("--crop-labels", crop_labels), ("--classify-labels",
             classify_labels), ("--classify-top-k", classify_top_k)) if v is not None]  # fmt: skip
    if given and not config.cascade.classifier:
        from edgekit.detect.cascade_bundle import choose

        if choose(config.model.path or "", None) is None:  # nor a cascade bundle's own
            raise click.UsageError(f"{' and '.join(given)} need{'s' if len(given) == 1 else ''} "
                                   "--classify CLASSIFIER ([cascade] classifier) or a cascade "
                                   "bundle")  # fmt: skip

    if check_only:
        from edgekit.stream.check import check

        summary_line = check(config)
        click.echo(f"OK: {config_path or 'flags'}: {summary_line}")
        return

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    reload = threading.Event()  # SIGHUP (systemctl reload edgekit): hot-reload the model
    signal.signal(signal.SIGHUP, lambda signum, frame: reload.set())

    def on_start(started: dict) -> None:
        if "http" in started:
            click.echo(f"edgekit: status page on {started['http']}", err=True)

    stats = serve_lib.run(config, stop=stop, on_start=on_start, reload=reload)
    if summary:
        with click.get_text_stream("stderr") as err:
            import json

            err.write(json.dumps(stats) + "\n")


class _CliFormatter(logging.Formatter):
    """``Warning: ...`` / ``Info: ...`` on stderr, like every other edgekit command's notices."""

    def format(self, record: logging.LogRecord) -> str:
        from edgekit.errors import one_line

        text = f"{record.levelname.capitalize()}: {one_line(record.getMessage())}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text
