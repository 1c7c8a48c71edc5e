"""`edgekit classify` and `edgekit bench`: the device-side commands (never import TensorFlow)."""

from __future__ import annotations

import sys

import click

from edgekit.cli.common import StageProgress, echo_json, libedgetpu_option, warn
from edgekit.cli.params import PROBABILITY, THREADS, count
from edgekit.errors import EdgekitError, one_line

DEVICE_HELP = "auto (Edge TPU if attached, else CPU), cpu, usb, usb:N, pci, pci:N or :N."


@click.command()
@click.argument("model", type=click.Path(dir_okay=True))
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--labels", type=click.Path(), help="Label file (overrides the bundle's labels).")
@click.option("--top-k", "-k", default=5, show_default=True, type=count(1),
              help="Best classes to report per image.")  # fmt: skip
@click.option("--threshold", "-t", default=0.0, show_default=True, type=PROBABILITY,
              help="Drop classes scoring below this (scores are 0..1; a class scoring 0 is "
              "never listed).")  # fmt: skip
@click.option("--device", "-d", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--threads", type=THREADS,
              help="CPU interpreter threads [default: the runtime's].")  # fmt: skip
@libedgetpu_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def classify(model, images, labels, top_k, threshold, device, threads, as_json):
    """Classify IMAGES with MODEL (a bundle directory, .tflite or _edgetpu.tflite).

    One line per image; an unreadable image gets an error line, the others are still classified,
    and the exit status is 1 at the end.
    """
    from edgekit.classify import Classifier

    clf = Classifier(model, labels=labels, device=device, top_k=top_k, threshold=threshold,
                     threads=threads, on_warning=warn)  # fmt: skip
    from edgekit.backends.segment_pipeline import frames_in_flight, map_ordered

    results, failed = [], 0
    # compiled segments on their Edge TPUs: several images in flight, results in this order
    for path, res in zip(images, map_ordered(clf.classify_path, images, frames_in_flight(clf))):
        try:
            if isinstance(res, BaseException):
                raise res
        except EdgekitError as e:
            failed += 1
            results.append({"image": path, "classes": [], "error": str(e)})
            if not as_json:
                click.echo(f"Error: {one_line(str(e))}", err=True)
            continue
        results.append(_classes_json(path, res.classes))
        if not as_json:
            tops = "  ".join(f"{_name(c)} ({c.score:.3f})" for c in res.classes)
            click.echo(f"{one_line(path)}: {tops or '(no class above the threshold)'}")
    if as_json:
        echo_json(results)
    clf.close()
    if failed:
        raise click.exceptions.Exit(1)


def _classes_json(path: str, classes) -> dict:
    """One image of ``classify --json``: scores to 4 decimals (a uint8 score steps by 1/256; a
    float32 score printed in full read 0.30000001192092896); ``raw_scores`` when they are not
    probabilities (no softmax: the warning on stderr says so, the JSON must too)."""
    out = {"image": path, "classes": [{**c.to_dict(), "score": round(c.score, 4)}
                                      for c in classes]}  # fmt: skip
    if any(not 0.0 <= c.score <= 1.0 for c in classes):
        out["raw_scores"] = True
    return out


def _name(c) -> str:
    return str(c.id) if c.label == str(c.id) else f"{c.id} {c.label}"


@click.command()
@click.argument("model", type=click.Path(dir_okay=True))
@click.option("--device", "-d", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--runs", "-n", default=100, show_default=True, type=count(1),
              help="Timed steady-state inferences.")  # fmt: skip
@click.option("--warmup", default=10, show_default=True, type=count(0),
              help="Untimed inferences between the first one and the timed runs.")  # fmt: skip
@click.option("--threads", type=THREADS,
              help="CPU interpreter threads [default: the runtime's].")  # fmt: skip
@libedgetpu_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("--plot", type=click.Path(dir_okay=False),
              help="Write a latency plot (.png, .svg or .pdf).")
@click.option("--image", type=click.Path(dir_okay=False),
              help="Feed this image instead of random pixels (a detector's decode + NMS, timed "
                   "apart, then run on its real objects).")  # fmt: skip
@click.option("--classify", "classifier", type=click.Path(dir_okay=True),
              help="Cascade: time MODEL (a detector) plus this classifier on each crop, per "
              "frame and per model (use --image with objects the detector finds).")
@click.option("--crop-labels", help="Cascade: comma-separated detector labels to classify.")
@click.option("--classify-labels", type=click.Path(dir_okay=False),
              help="Cascade: label file of a bare classifier model (a bundle has its own).")
@click.option("--anchors", type=click.Path(dir_okay=False),
              help="Anchors file of a yolov3 head (darknet's 10,14, 23,27, ...).")  # fmt: skip
def bench(model, device, runs, warmup, threads, as_json, plot, image, classifier, crop_labels,
          classify_labels, anchors):  # fmt: skip
    """Measure inference latency of MODEL on a device.

    The first inference (which loads the model onto the Edge TPU) is reported apart from the
    steady state: min, mean, p50, p90, p99, max and inferences per second. For a detector,
    decode + NMS of its output is timed too, beside invoke.
    """
    from edgekit import bench as lib
    from edgekit.detect.cascade_bundle import carried

    found = carried(model) if classifier is None else None
    if found is not None:  # a cascade bundle (convert --classify): its cascade is what runs
        classifier = str(found[0])
        if crop_labels is None and found[1].get("crop_labels"):
            crop_labels = ",".join(found[1]["crop_labels"])
    if classifier is not None:
        return _bench_cascade(model, classifier, device, runs, warmup, threads, as_json, plot,
                              image, crop_labels, classify_labels, anchors)  # fmt: skip
    if crop_labels is not None or classify_labels is not None:
        flag = "--crop-labels" if crop_labels is not None else "--classify-labels"
        raise click.UsageError(f"{flag} needs --classify CLASSIFIER")
    if plot:  # fail before a long run, not after it
        lib.plot_format(plot)
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise EdgekitError(
                "--plot needs matplotlib, which is not installed",
                "pip install matplotlib   (or pip install 'edgekit[plot]')",
            ) from None
        from edgekit.atomic import check_destination

        check_destination(plot)
        from pathlib import Path

        if image is not None and Path(plot).resolve() == Path(image).resolve():
            raise EdgekitError(f"--plot {plot} is the --image file: the plot would replace "
                               "the photo", "name the plot another file")  # fmt: skip
    bar = StageProgress(enabled=not as_json and sys.stderr.isatty())
    try:
        res = lib.bench(model, device, runs, warmup, threads, on_warning=warn, progress=bar,
                        image=image, anchors=anchors)  # fmt: skip
    finally:
        bar.close()
    if plot:
        lib.plot(res, plot)
    check = _expectation(res)
    if as_json:
        echo_json(lib.rounded({**res.to_dict(), **({"expected": check} if check else {})}))
        return
    first_note = " (includes loading it onto the Edge TPU)" if res.backend == "edgetpu" else ""
    click.echo(f"model   {res.model}")
    threads_note = f", {res.threads} thread{'s' if res.threads != 1 else ''}" if res.threads else ""
    click.echo(f"device  {res.device} ({res.provider}{threads_note})")
    click.echo(f"first   {res.first_ms:.2f} ms{first_note}")
    click.echo(
        f"steady  {res.runs} runs: min {res.min_ms:.2f}  mean {res.mean_ms:.2f}  "
        f"p50 {res.p50_ms:.2f}  p90 {res.p90_ms:.2f}  p99 {res.p99_ms:.2f}  "
        f"max {res.max_ms:.2f} ms  ({res.fps:.1f} inferences/s)"
    )
    if res.pipeline is not None:
        q = res.pipeline
        click.echo(f"pipelined over {q['over']}: {q['frames_in_flight']} frames in "
                   f"flight, {q['fps']:.1f} inferences/s ({q.get('vs_one_at_a_time', 0):.2f} x "
                   "one frame at a time)")  # fmt: skip
    if res.decode is not None:
        d = res.decode
        click.echo(
            f"decode  {d['runs']} runs: p50 {d['p50_ms']:.2f}  mean {d['mean_ms']:.2f}  "
            f"max {d['max_ms']:.2f} ms  (decode + NMS, {d['detections']} objects on the "
            f"{d['input']}; {d['p50_ms'] / res.p50_ms:.3f} x invoke)"
        )
    if check:
        from edgekit.bench_check import format_expectation

        for line in format_expectation(check):
            click.echo(line)
    if plot:
        click.echo(f"plot    {plot}")


def _expectation(res):
    """On an Edge TPU: the predicted latency for its link beside the measured p50, and the
    likely causes when it is far slower (edgekit.bench_check); None elsewhere or when the model
    gives no prediction."""
    if res.backend != "edgetpu":
        return None
    from edgekit import backends
    from edgekit.backends.devices import select_device
    from edgekit.bench_check import expectation, system_load

    try:
        found = backends.get_backend("edgetpu").list_devices()
        # compiled segments run over several ("usb:0+usb:1"): the slowest link names the set's
        devices = [select_device(found, d) for d in str(res.device).split("+")]
        device = min((d for d in devices if d is not None), default=None,
                     key=lambda d: d.speed_mbps if d.speed_mbps is not None else 5000)
    except Exception:  # a registry without list_devices: the link stays unknown
        device = None
    power = None
    try:
        from edgekit.backends.linkstate import read_power

        power = read_power().to_dict()
    except Exception:  # no firmware word here (not a Pi)
        power = None
    try:
        return expectation(res.p50_ms, res.model, device, system_load(), power)
    except (EdgekitError, ValueError, OverflowError):
        return None


def _bench_cascade(model, classifier, device, runs, warmup, threads, as_json, plot, image,
                   crop_labels, classify_labels=None, anchors=None):  # fmt: skip
    from edgekit.bench_cascade import bench_cascade, format_cascade
    from edgekit.cli.detect import _crop_labels

    if plot:
        raise click.UsageError("--plot times one model: leave it out with --classify")
    res = bench_cascade(model, classifier, device, runs, warmup, threads, on_warning=warn,
                        image=image, crop_labels=_crop_labels(crop_labels),
                        classify_labels=classify_labels, anchors=anchors)  # fmt: skip
    if as_json:
        from edgekit.bench import rounded

        echo_json(rounded(res))
        return
    for line in format_cascade(res):
        click.echo(line)
