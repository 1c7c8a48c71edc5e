"""``edgekit convert``: thin click layer over :func:`edgekit.host.convert.convert`."""

from __future__ import annotations

import math
import re
import sys

import click

from edgekit.cli.common import StageProgress, compiler_options, echo_json, warn
from edgekit.cli.convert_summary import summary
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
    summary(result)
