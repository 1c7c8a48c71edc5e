"""``edgekit convert``: thin click layer over :func:`edgekit.host.convert.convert`."""

from __future__ import annotations

import math
import re
import sys

import click

from edgekit.cli.common import StageProgress, compiler_options, echo_json, warn
from edgekit.cli.params import PROBABILITY, count


def _pair(kind):
    def parse(ctx, param, value):
        if value is None:
            return None
        parts = re.split(r"[,x×]" if kind is int else r",", value.strip())
        try:
            if len(parts) != 2:
                raise ValueError
            out = tuple(kind(p) for p in parts)
            if kind is float and not all(math.isfinite(v) and abs(v) <= 1e6 for v in out):
                raise click.BadParameter(f"{value!r}: both numbers must be finite (|x| <= 1e6)")
            if kind is int and not all(1 <= v <= 16384 for v in out):
                raise click.BadParameter(f"{value!r}: sizes must be 1..16384 pixels")
            return out
        except ValueError:
            example = "224x224" if kind is int else "0,1 or -1,1"
            raise click.BadParameter(f"{value!r}: expected two numbers, e.g. {example}") from None

    return parse


@click.command("convert")
@click.argument("model", type=click.Path(path_type=str))
@click.option(
    "-o",
    "--out",
    "--output",
    "out_dir",
    required=True,
    type=click.Path(),
    help="Bundle directory to write.",
)
@click.option(
    "--calib", type=click.Path(), help="Folder of calibration images (searched recursively)."
)
@click.option(
    "--num-calib", default=300, show_default=True, type=count(1), help="Calibration images to use."
)
@click.option(
    "--num-verify", type=count(0), help="Held-out images for verification [default: min(100, 20%)]."
)
@click.option(
    "--group-pattern",
    help="Regex naming the original photo in each file name, e.g. '(?:apple|bana)[-_](\\d+)'; "
    "variants of one photo stay on one side of the calibration/verification split.",
)
@click.option(
    "--synthetic-calib",
    is_flag=True,
    help="Calibrate on random pixels when no images exist (poor accuracy).",
)
@click.option("--input-size", callback=_pair(int), help="HxW for models with dynamic height/width.")
@click.option(
    "--custom-objects",
    type=click.Path(dir_okay=False, path_type=str),
    help="A .py file defining the model's custom layers (imported, then conversion goes on).",
)
@click.option(
    "--input-range",
    callback=_pair(float),
    help="Float range LO,HI that pixels 0..255 map to (as in training) [default: the model's, "
    "else the best of 0,1 / -1,1 / 0,255 measured on a labelled --calib, else 0,1].",
)
@click.option(
    "--keep-input-range",
    is_flag=True,
    help="Keep --input-range even when the float model is near chance with it on labelled "
    "images and another range does much better.",
)
@click.option("--color", type=click.Choice(["rgb", "bgr"]), default="rgb", show_default=True)
@click.option(
    "--resize",
    type=click.Choice(["stretch", "crop", "pad"]),
    help="How photos are fitted to the input [default: the model's (crop for Teachable "
    "Machine), else stretch].",
)
@click.option(
    "--io",
    type=click.Choice(["uint8", "int8"]),
    default="uint8",
    show_default=True,
    help="Input/output tensor type.",
)
@click.option(
    "--labels", type=click.Path(), help="Label file (one per class) copied into the bundle."
)
@click.option(
    "--min-agreement",
    type=PROBABILITY,
    help="Fail (write nothing) if int8 top-1 agreement is below this (0..1).",
)
@click.option(
    "--task",
    type=click.Choice(["classify", "detect"]),
    help="Model task [default: detect for edgekit's detector head, else classify].",
)
@click.option(
    "--min-map",
    type=float,
    help="Detectors: fail (write nothing) if int8 mAP@0.5 on held-out images is below this "
    "(against the labels of a YOLO/COCO --calib dataset, else against float).",
)
@click.option(
    "--score-threshold",
    type=float,
    default=0.5,
    show_default=True,
    help="Detectors: default score threshold stored in the bundle (edgekit's detector scores "
    "a found object 0.5 + 0.5 IoU, so 0.5 keeps the well-placed boxes).",
)
@click.option(
    "--iou", type=float, default=0.45, show_default=True, help="Detectors: NMS IoU threshold."
)
@click.option(
    "--max-detections",
    type=int,
    default=100,
    show_default=True,
    help="Detectors: boxes kept per image after NMS.",
)
@click.option(
    "--classify",
    "classify",
    type=click.Path(path_type=str),
    help="Detectors: a cascade. This crop classifier (a bundle, an int8 .tflite or a Coral "
    "model) is co-compiled with the detector in one edgetpu_compiler call and carried in the "
    "bundle, so `detect` and `serve` classify each detection's crop with it.",
)
@click.option(
    "--classify-labels", type=click.Path(path_type=str),
    help="The classifier's label file (when it is not a bundle).",
)
@click.option(
    "--crop-labels",
    help="Comma-separated detector labels whose crops are classified [default: all].",
)
@click.option(
    "--classify-top-k", type=click.IntRange(1, 1000),
    help="Classes kept per crop, stored in the bundle [default: 3].",
)
@click.option(
    "--anchors",
    type=click.Path(dir_okay=False),
    help="Detectors with YOLOv3 grid heads: darknet anchors file (10,14, 23,27, ...) recorded "
    "in the bundle [default: darknet's yolov3-tiny / yolov3 anchors for 2 / 3 heads].",
)
@click.option("--no-compile", is_flag=True, help="Skip edgetpu_compiler.")
@compiler_options("--compile-timeout")
@click.option(
    "--segments",
    type=click.IntRange(1, 64),
    help="Passed to edgetpu_compiler -n (split for N Edge TPUs).",
)
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def convert(
    model,
    out_dir,
    calib,
    num_calib,
    num_verify,
    group_pattern,
    synthetic_calib,
    input_size,
    custom_objects,
    input_range,
    keep_input_range,
    color,
    resize,
    io,
    labels,
    min_agreement,
    task,
    min_map,
    score_threshold,
    iou,
    max_detections,
    classify,
    classify_labels,
    crop_labels,
    classify_top_k,
    anchors,
    no_compile,
    compiler,
    compile_timeout,
    min_runtime,
    segments,
    force,
    as_json,
):
    """Quantize a Keras MODEL (.h5, .keras or SavedModel dir) to int8, verify it on held-out
    images, compile it for the Edge TPU and write a bundle to OUT."""
    from edgekit.host.convert import convert as run

    bars = StageProgress(enabled=not as_json or sys.stderr.isatty())

    def on_warning(msg: str) -> None:
        bars.close()
        warn(msg)

    try:
        result = run(
            model,
            out_dir,
            calib=calib,
            synthetic_calib=synthetic_calib,
            num_calib=num_calib,
            num_verify=num_verify,
            group_pattern=group_pattern,
            input_size=input_size,
            custom_objects=custom_objects,
            input_range=input_range,
            keep_input_range=keep_input_range,
            color=color,
            resize=resize,
            io=io,
            labels=labels,
            min_agreement=min_agreement,
            task=task,
            min_map=min_map,
            score_threshold=score_threshold,
            iou=iou,
            max_detections=max_detections,
            classify=classify,
            classify_labels=classify_labels,
            crop_labels=tuple(crop_labels.split(",")) if crop_labels is not None else None,
            classify_top_k=classify_top_k,
            anchors=anchors,
            compile=not no_compile,
            compiler_path=compiler,
            compile_timeout=compile_timeout,
            min_runtime=min_runtime,
            segments=segments,
            force=force,
            progress=bars,
            warn=on_warning,
        )
    finally:
        bars.close()
    if as_json:
        echo_json(result.to_dict())
        return
    _summary(result)


def _summary(result) -> None:
    m = result.manifest
    files = [
        f for f in (m.models.get("cpu"), m.models.get("edgetpu"), m.models.get("edgetpu_log")) if f
    ]
    files += (["labels.txt"] if m.labels else []) + ["edgekit.json"]
    if m.cascade:
        files.append(f"{m.cascade['classifier']}/")
    click.echo(
        f"Wrote {result.out_dir}/ ({', '.join(files)}) in {result.timings_s.get('total', 0):.1f} s"
    )
    i = m.input
    click.echo(
        f"  input   {i.dtype} {list(i.shape)} scale {i.scale:.6g} zero_point {i.zero_point}"
        f" ({i.color}, range {i.range[0]:g}..{i.range[1]:g}, {i.resize})"
    )
    c = m.calibration
    _range_summary(result.input_range, m)
    if c.get("synthetic"):
        click.echo(f"  calib   {c['used']} synthetic images")
    else:
        extra = f", {c['unreadable']} unreadable skipped" if c.get("unreadable") else ""
        click.echo(f"  calib   {c['used']} images from {c['folder']}{extra}")
    v = m.verification
    if v.get("task") == "detect":
        _detect_summary(v)
    elif v.get("agreement") is None:
        click.echo("  verify  skipped (no held-out images)")
    else:
        acc = ""
        if "accuracy_float" in v:
            acc = f"; accuracy float {v['accuracy_float']:.1%}, int8 {v['accuracy_int8']:.1%}"
        click.echo(
            f"  verify  top-1 agreement {v['agreement']:.1%} on {v['images']} held-out images, "
            f"score error mean {v['mean_abs_error']:.4f} max {v['max_abs_error']:.4f}{acc}"
        )
    comp = m.compile or {}
    report = comp.get("report")
    if comp.get("latency"):
        from edgekit.edgetpu.latency import format_latency

        click.echo(f"  latency {format_latency(comp['latency'])}")
    if report:
        click.echo(
            f"  edgetpu {report['ops_tpu']}/{report['ops_total']} ops on the Edge TPU, "
            f"{report['subgraphs']} subgraph(s), on-chip {_mib(report['on_chip_bytes'])}, "
            f"off-chip {_mib(report['off_chip_bytes'])} (compiler {report['version']})"
        )
        if comp.get("comparison"):
            from edgekit.edgetpu.compare import format_comparison

            for line in format_comparison(comp["comparison"]):
                click.echo(f"          {line}" if line else "")
    elif comp.get("prediction"):
        p = comp["prediction"]
        tpu, cpu = p.get("tpu_ops"), p.get("cpu_ops")
        click.echo(
            f"  edgetpu not compiled; predicted: {tpu} ops on the Edge TPU, {cpu} on the CPU"
        )
        for op in p.get("ops", []):
            if not op.get("on_tpu"):
                click.echo(f"          CPU: #{op.get('index')} {op.get('op')}: {op.get('reason')}")
                break
        for s in p.get("suggestions", [])[:3]:
            click.echo(f"          fix (+{s['ops_gained']} ops on the Edge TPU): {s['fix']}")
        mem = p.get("memory") or {}
        if mem.get("streams"):
            click.echo(
                f"          warning: parameters {_mib(mem['parameters_bytes'])} exceed the "
                f"on-chip cache ({_mib(mem['on_chip_capacity_bytes'])}); the rest streams"
            )
        elif mem.get("may_stream"):
            click.echo(
                f"          note: parameters {_mib(mem['parameters_bytes'])} nearly fill the "
                "on-chip cache; part may stream"
            )
    if result.cascade:
        _cascade_summary(result.cascade, m)


def _cascade_summary(c: dict, m) -> None:
    """The carried classifier and, when co-compiled, each model's share of the on-chip cache."""
    crops = ", ".join(c["crop_labels"]) if c.get("crop_labels") else "every label"
    click.echo(f"  cascade {c['classifier']} ({c['classifier_name']}, "
               f"{c['classifier_labels'] or 'no'} labels) classifies the crops of {crops}"
               + (f", top {c['top_k']}" if c.get("top_k") else ""))  # fmt: skip
    if not c.get("cocompiled"):
        click.echo("          not co-compiled (no compiler run): each model alone on the Edge TPU")
        return
    click.echo("          co-compiled in one edgetpu_compiler call, detector first:")
    streamed = []
    for who, r in (("detector", c.get("detector_report")),
                   ("classifier", c.get("classifier_report"))):  # fmt: skip
        r = r or {}
        click.echo(f"          {who:<10} {r.get('output')}: on-chip {_mib(r.get('on_chip_bytes'))}"
                   f", off-chip {_mib(r.get('off_chip_bytes'))}")  # fmt: skip
        if r.get("off_chip_bytes"):
            streamed.append(who)
    left = (c.get("classifier_report") or {}).get("on_chip_remaining_bytes")
    click.echo(f"          on-chip cache left {_mib(left)}; "
               + (f"streamed every inference: {', '.join(streamed)}" if streamed
                  else "both models' parameters stay on-chip"))  # fmt: skip


def _range_summary(decision: dict, m) -> None:
    """Which input range, why, and the float accuracy measured under each candidate."""
    if not decision:
        return
    click.echo(f"  range   {decision['range'][0]:g}..{decision['range'][1]:g} "
               f"({decision['source']}: {decision['reason']})")  # fmt: skip
    hint = decision.get("hint")
    if hint:  # what the model itself says (e.g. a Teachable Machine export), in one line
        said = [f"range {hint['range'][0]:g}..{hint['range'][1]:g}"] if hint.get("range") else []
        if hint.get("resize"):
            size = hint.get("size")
            said.append(f"{hint['resize']}" + (f" to {size[0]}x{size[1]}" if size else ""))
        if m.labels and m.source.get("labels"):
            said.append(f"{len(m.labels)} labels from {m.source['labels']}")
        click.echo(f"  model   {hint['reason']}: {', '.join(said)}")
    acc = decision.get("float_accuracy")
    if acc:
        parts = ", ".join(f"{r} {a:.1%}" for r, a in acc.items())
        n = decision["measured_images"]
        click.echo(f"          float top-1 {parts} on {n} labelled images, class-balanced")


def _detect_summary(v) -> None:
    if not v.get("images"):
        click.echo("  verify  skipped (no held-out images)")
        return
    vs = v.get("map50_int8_vs_float")
    vs = "n/a (no float detections)" if vs is None else f"{vs:.3f}"
    if v.get("map50_int8") is not None:
        click.echo(
            f"  verify  mAP@0.5 float {v['map50_float']:.3f}, int8 {v['map50_int8']:.3f} on "
            f"{v['images']} held-out labelled images; int8 vs float {vs}"
        )
    else:
        click.echo(f"  verify  int8 vs float mAP@0.5 {vs} on {v['images']} held-out images")
    for h in v.get("heads") or ():  # YOLOv3 heads: what each int8 output scale does to a box
        if "xy_step_px" in h:
            click.echo(f"  head    stride {h['stride']}: output {h['output']} scale "
                       f"{h['scale']:.4g}, box centre step <= {h['xy_step_px']:.3g} px, size "
                       f"step {100 * h['wh_step']:.3g} %")  # fmt: skip


def _mib(n) -> str:
    if n is None:
        return "?"
    for unit, f in (("MiB", 1024**2), ("KiB", 1024)):
        if n >= f:
            return f"{n / f:.2f} {unit}"
    return f"{n} B"
