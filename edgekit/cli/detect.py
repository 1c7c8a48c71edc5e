"""`edgekit detect`: objects in images, as text, JSON or annotated copies (device path, no
TensorFlow)."""

from __future__ import annotations

import math
from pathlib import Path

import click

from edgekit.cli.common import echo_json, libedgetpu_option, warn
from edgekit.cli.params import THREADS
from edgekit.cli.runtime import DEVICE_HELP
from edgekit.detect.decoders import MAX_DETECTIONS, available_decoders
from edgekit.errors import EdgekitError, one_line


def _finite(ctx, param, value):
    if value is not None and not math.isfinite(value):  # FloatRange lets NaN through
        raise click.BadParameter(f"{value} is not a number in 0..1")
    return value


@click.command()
@click.argument("model", type=click.Path(dir_okay=True))
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option(
    "--threshold",
    "-t",
    type=click.FloatRange(0, 1),
    callback=_finite,
    help="Drop objects scoring below this [default: the bundle's, else 0.25].",
)
@click.option(
    "--iou",
    type=click.FloatRange(0, 1),
    callback=_finite,
    help="NMS: drop a box overlapping a better one of its class by more than this "
    "[default: the bundle's, else 0.45].",
)
@click.option(
    "--max-detections",
    type=click.IntRange(1, MAX_DETECTIONS),
    help="Objects kept per image [default: the bundle's, else 100].",
)
@click.option(
    "--decoder",
    type=click.Choice(available_decoders()),
    help="How to read the model's outputs [default: the bundle's, else guessed].",
)
@click.option(
    "--anchors",
    type=click.Path(dir_okay=False),
    help="Anchors file of an anchor head (yolov3; darknet's 10,14, 23,27, ...) "
    "[default: the bundle's, else darknet's].",
)
@click.option("--labels", type=click.Path(), help="Label file (overrides the bundle's labels).")
@click.option(
    "--annotate",
    type=click.Path(file_okay=False),
    help="Write a copy of each image with its boxes drawn into this folder.",
)
@click.option(
    "--classify",
    "classifier",
    type=click.Path(dir_okay=True),
    help="Cascade: classify the crop of each detection with this classifier (a bundle, "
    ".tflite or _edgetpu.tflite), e.g. a species classifier behind a bird detector "
    "[default: the classifier a cascade bundle carries].",
)
@click.option(
    "--no-classify",
    is_flag=True,
    help="Run only the detector of a cascade bundle (`convert --classify`).",
)
@click.option(
    "--classify-labels",
    type=click.Path(),
    help="The classifier's label file (when it is not a bundle).",
)
@click.option(
    "--crop-labels",
    help="Comma-separated detector labels whose crops are classified [default: all].",
)
@click.option(
    "--classify-top-k",
    type=click.IntRange(1, 1000),
    help="Classes kept per crop [default: the cascade bundle's, else 3].",
)
@click.option("--device", "-d", default="auto", show_default=True, help=DEVICE_HELP)
@click.option(
    "--threads",
    type=THREADS,
    help="CPU interpreter threads [default: the runtime's].",
)
@libedgetpu_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")  # fmt: skip
def detect(model, images, threshold, iou, max_detections, decoder, anchors, labels, annotate,
           classifier, no_classify,
           classify_labels, crop_labels, classify_top_k, device, threads, as_json):  # fmt: skip
    """Detect objects in IMAGES with MODEL (a bundle directory, .tflite or _edgetpu.tflite).

    Boxes are x0,y0,x1,y1 in pixels of each original image; ids are the model's own class
    indices. Images run in the order given (a stateful video model carries its state from one
    to the next). An unreadable image gets an error line, the others are still processed, and
    the exit status is 1 at the end.

    With --classify, or with a cascade bundle (`convert --classify`), each detection's crop
    (the box plus 10 % each side; boxes under 16 px and beyond the best 8 of an image are
    skipped) also goes through the classifier, with the classifier's own preprocessing, and
    gets its "classes". Both models run on the same device.
    """
    if annotate:
        from edgekit.atomic import check_destination

        probe = Path(annotate) / "x.png"  # any file in the folder: the folder must take files
        try:
            check_destination(probe)
        except EdgekitError as e:  # name the folder the user gave, not the probe's name
            message = e.message.replace(f"{probe}: ", f"--annotate {annotate}: ", 1)
            raise EdgekitError(message, e.hint, e.exit_code) from None
    from edgekit.detect.cascade_bundle import choose

    if no_classify and classifier is not None:
        raise click.UsageError("--no-classify and --classify CLASSIFIER: choose one")
    names = _crop_labels(crop_labels)
    pick = None if no_classify else choose(model, classifier, names, classify_top_k)
    if pick is None and (classify_labels or crop_labels or classify_top_k):
        raise click.UsageError("--classify-labels, --crop-labels and --classify-top-k need "
                               "--classify CLASSIFIER (or a cascade bundle)")  # fmt: skip
    kw = dict(labels=labels, device=device, threshold=threshold, iou=iou,
              max_detections=max_detections, decoder=decoder, threads=threads,
              on_warning=warn, anchors=anchors)  # fmt: skip
    if pick is not None:
        from edgekit.detect.cascade import open_cascade

        det = open_cascade(model, pick.classifier, classify_labels=classify_labels,
                           top_k=pick.top_k, crop_labels=pick.crop_labels, **kw)  # fmt: skip
    else:
        from edgekit.detect.detector import Detector

        det = Detector(model, **kw)
    from edgekit.backends.segment_pipeline import frames_in_flight, map_ordered

    def load_and_detect(path: str):
        rgb = _load(path)
        return rgb, det.detect(rgb)

    # the input images are taken too: --annotate photos/ wrote photos/parrot.jpg's annotated
    # copy over photos/parrot.jpg itself
    results, failed, written = [], 0, {Path(p).resolve() for p in images}
    # compiled segments on their Edge TPUs: several images in flight, results in this order
    for path, got in zip(images, map_ordered(load_and_detect, images, frames_in_flight(det))):
        try:
            if isinstance(got, BaseException):
                raise got
            rgb, res = got
            if annotate:
                out = _annotated_path(Path(annotate), Path(path), written)
                _write_annotated(rgb, res, out)
        except EdgekitError as e:
            failed += 1
            results.append({"image": path, "detections": [], "error": str(e)})
            if not as_json:
                click.echo(f"Error: {one_line(str(e))}", err=True)
            continue
        results.append({"image": path, "detections": [_rounded(d.to_dict())
                                                      for d in res.detections],
                        **_timings(res)})  # fmt: skip
        if not as_json:
            _echo_text(path, res)
    det.close()
    if as_json:
        echo_json(results[0] if len(results) == 1 else results)
    if failed:
        raise click.exceptions.Exit(1)


def _rounded(d: dict) -> dict:
    """A detection as --json prints it: scores (its own, its crop's classes) to 4 decimals."""
    out = {**d, "score": round(d["score"], 4)}
    if "classes" in d:
        out["classes"] = [{**c, "score": round(c["score"], 4)} for c in d["classes"]]
    return out


def _timings(res) -> dict:
    """What the text line says besides the objects: ms to 3 decimals (and a cascade's crops)."""
    out = {"inference_ms": round(res.inference_ms, 3), "decode_ms": round(res.decode_ms, 3)}
    crops = getattr(res, "crops", None)
    if crops is not None:
        out.update(crops=crops, classify_ms=round(res.classify_ms, 3))
    return out


def _crop_labels(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise click.BadParameter("give one or more detector labels, e.g. bird,cat",
                                 param_hint="--crop-labels")  # fmt: skip
    return names


def _load(path: str):
    from edgekit.images import load_rgb

    return load_rgb(path)


def _echo_text(path: str, res) -> None:
    n = len(res.detections)
    click.echo(
        f"{one_line(path)}: {n} object{'s' if n != 1 else ''} "
        f"({res.inference_ms:.1f} ms inference, {res.decode_ms:.1f} ms decode)"
    )
    crops = getattr(res, "crops", None)
    if crops is not None:
        click.echo(f"  {crops} crop{'s' if crops != 1 else ''} classified "
                   f"({res.classify_ms:.1f} ms inference)")  # fmt: skip
    for d in res.detections:
        name = str(d.id) if d.label == str(d.id) else f"{d.label} ({d.id})"
        box = ", ".join(f"{v:.0f}" for v in d.box)
        classes = getattr(d, "classes", ())
        species = (f"  -> {classes[0].label} ({classes[0].id}) {classes[0].score:.3f}"
                   if classes else "")  # fmt: skip
        click.echo(f"  {name:<24} {d.score:.3f}  [{box}]{species}")


def _annotated_path(folder: Path, image: Path, taken: set[Path]) -> Path:
    """DIR/<name of the image> (PNG for formats Pillow cannot write back), never twice and
    never over an input image (``taken`` starts with them, resolved)."""
    suffix = image.suffix.lower() if image.suffix.lower() in (".jpg", ".jpeg", ".png") else ".png"
    out = folder / f"{image.stem}{suffix}"
    n = 1
    while out.resolve() in taken:
        n += 1
        out = folder / f"{image.stem}-{n}{suffix}"
    taken.add(out.resolve())
    return out


def _write_annotated(rgb, res, out: Path) -> None:
    import io

    from PIL import Image, ImageDraw

    from edgekit.atomic import write_bytes

    img = Image.fromarray(rgb)
    draw = ImageDraw.Draw(img)
    width = max(2, round(max(img.size) / 300))
    font = _font(max(11, round(max(img.size) / 60)))
    # weakest first, so the best box and its tag are drawn last, on top of overlapping ones
    for d in sorted(res.detections, key=lambda d: d.score):
        colour = _PALETTE[d.id % len(_PALETTE)]
        draw.rectangle(d.box, outline=colour, width=width)
        classes = getattr(d, "classes", ())
        text = f"{d.label} {d.score:.2f}"
        if classes:  # the species beside the box: "bird 0.75: Blue Jay 0.91"
            text += f": {classes[0].label} {classes[0].score:.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tw, th = right - left + 2 * width, bottom - top + 2 * width
        x0, y0 = d.box[0], d.box[1] - th
        if y0 < 0:  # no room above the box: label inside it
            y0 = d.box[1]
        draw.rectangle((x0, y0, x0 + tw, y0 + th), fill=colour)
        draw.text((x0 + width - left, y0 + width - top), text, fill=(0, 0, 0), font=font)
    buf = io.BytesIO()
    img.save(buf, format="JPEG" if out.suffix in (".jpg", ".jpeg") else "PNG", quality=92)
    write_bytes(out, buf.getvalue())


def _font(size: int):
    """Pillow's built-in font at ``size`` px (needs FreeType), else its small bitmap font."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow < 10.1 or no FreeType
        return ImageFont.load_default()


# Distinct, readable on photos; black label text stays legible on each.
_PALETTE = [
    (255, 56, 56), (255, 157, 151), (255, 112, 31), (255, 178, 29), (207, 210, 49),
    (72, 249, 10), (146, 204, 23), (61, 219, 134), (26, 147, 52), (0, 212, 187),
    (44, 153, 168), (0, 194, 255), (52, 69, 147), (100, 115, 255), (0, 24, 236),
    (132, 56, 255), (82, 0, 133), (203, 56, 255), (255, 149, 200), (255, 55, 199),
]  # fmt: skip
