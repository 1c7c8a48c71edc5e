"""``edgekit convert`` on a detector: scene calibration, detection verification, decoder params.

A Keras model is a detector when it ends in the zoo detector's head (a layer named
``detections`` with output (1, N, 4 + nc), docs/DESIGN.md "edgekit detector head") or when
``--task detect`` says so.

Images: when ``--calib`` is a detection dataset (YOLO txt or COCO json, :mod:`edgekit.detect.
dataset`), calibration uses its train split and verification its held-out split, WITH labels;
any other folder is split like a classifier's (group pattern, sha1 order) and verified without
labels. Pixels are letterboxed (grey 114) exactly as :class:`edgekit.detect.Detector` does.

Verification runs the float Keras model and the int8 model (ai-edge-litert, dequantized output)
on the held-out images and decodes both with the device's ``edgekit-anchor-free`` decoder and
NMS: mAP@0.5 of each against the labels (score threshold 0.001, the usual mAP protocol), and
mAP@0.5 of the int8 detections against the float detections above the bundle's score threshold
(how well int8 reproduces what the float model reports). ``--min-map`` fails the conversion
when the int8 mAP@0.5 (against the labels when there are labels, else against float) is below
it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from edgekit import images
from edgekit.detect.metrics import ImageBoxes, mean_average_precision
from edgekit.errors import EdgekitError
from edgekit.host.train_detect import (
    LETTERBOX_FILL,
    MAP_SCORE_THRESHOLD,
    decoder_for,
    head_params,
)

Progress = Optional[Callable[[str, int, int], None]]
HEAD_LAYER = "detections"
DEFAULT_STRIDES = (8, 16)


@dataclass
class DetectionImages:
    """Letterboxed uint8 pixels: ``calib`` (N, H, W, 3), ``verify`` (M, H, W, 3); for labelled
    verification images their ``letterboxes`` and ``truths`` (original pixels)."""

    calib: np.ndarray
    verify: np.ndarray
    letterboxes: list
    truths: list[ImageBoxes] | None
    stats: dict[str, Any]
    warnings: list[str]

    def representative(self, prep, progress: Progress = None):
        n = len(self.calib)
        for i in range(n):
            yield [prep.to_float(self.calib[i : i + 1])]
            if progress:
                progress("calibrating", i + 1, n)


def is_detector(model) -> bool:
    """The zoo detector's head: last layer ``detections`` with a rank-3 (1, N, 4 + nc) output."""
    last = model.layers[-1]
    while getattr(last, "layers", None):  # the batch-1 clone wraps the model as one layer
        last = last.layers[-1]
    shape = tuple(model.outputs[0].shape) if len(model.outputs) == 1 else ()
    return last.name == HEAD_LAYER and len(shape) == 3 and (shape[-1] or 0) > 4


def strides_for(model, input_hw) -> tuple[int, ...]:
    """The head's strides: the zoo default (8, 16), checked against the row count N."""
    h, w = input_hw
    n = int(model.outputs[0].shape[1])
    if sum((h // s) * (w // s) for s in DEFAULT_STRIDES) != n:
        raise EdgekitError(
            f"detector output has {n} rows, not the (8, 16)-stride head's for {h}x{w}",
            "convert detectors built by `edgekit train --task detect` (zoo model detector)",
        )
    return DEFAULT_STRIDES


def load_images(
    folder: str | os.PathLike,
    input_hw: tuple[int, int],
    num_calib: int,
    num_verify: int | None,
    group_pattern: str | None,
    progress: Progress = None,
) -> DetectionImages:
    folder = Path(folder)
    warnings: list[str] = []
    is_dataset = (folder / "labels").is_dir() or (folder / "annotations").is_dir()
    if is_dataset:
        from edgekit.detect.dataset import load_dataset

        data = load_dataset(folder)
        calib_paths = [s.path for s in data.train]
        val = list(data.val)
        if not val:
            warnings.append(f"{folder} has no validation split: verifying without labels")
        limit = len(val) if num_verify is None else num_verify
        val = val[: min(limit, 100 if num_verify is None else limit)]
        verify_paths = [s.path for s in val]
        truths = [ImageBoxes.make(s.boxes, s.labels) for s in val] if val else None
        source = f"{data.layout} dataset: train split calibrates, val split verifies (labelled)"
    else:
        from edgekit.host.calibration import split

        files = images.find_images(folder)
        if not files:
            raise EdgekitError(f"{folder}: no images found", "point --calib at scene images")
        rels = [f.relative_to(folder).as_posix() for f in files]
        sp = split(rels, group_pattern, num_verify)
        calib_paths = [files[i] for i in sp.calib]
        verify_paths = [files[i] for i in sp.verify]
        truths = None
        source = "image folder: sha1 split by group; verification without labels"
    # Spread calibration over the whole train split rather than its first files.
    if len(calib_paths) > num_calib:
        pick = np.linspace(0, len(calib_paths) - 1, num_calib).round().astype(int)
        calib_paths = [calib_paths[i] for i in pick]
    total = len(calib_paths) + len(verify_paths)
    unreadable: list[str] = []

    def read(paths, offset):
        """Letterboxed pixels of the readable ``paths``, their letterboxes and indices."""
        out, boxes, kept = [], [], []
        for k, p in enumerate(paths):
            try:
                rgb = images.load_rgb(p)
            except EdgekitError:  # skipped and counted, as for classifiers
                unreadable.append(str(Path(p).relative_to(folder)))
                continue
            img, lb = images.letterbox(rgb, input_hw, LETTERBOX_FILL)
            out.append(img)
            boxes.append(lb)
            kept.append(k)
            if progress:
                progress("loading images", offset + k + 1, total)
        h, w = input_hw
        return (np.stack(out) if out else np.zeros((0, h, w, 3), np.uint8)), boxes, kept

    calib, _, _ = read(calib_paths, 0)
    verify, letterboxes, kept = read(verify_paths, len(calib_paths))
    if not len(calib) and not len(verify) and unreadable:
        raise EdgekitError(
            f"{folder}: none of the {len(unreadable)} image files could be read",
            "check the files are valid jpg/png/bmp/webp images",
        )
    if not len(calib):
        raise EdgekitError(f"{folder}: no readable calibration image", "add images")
    verify_paths = [verify_paths[k] for k in kept]
    if truths is not None:
        truths = [truths[k] for k in kept] or None
    if unreadable:
        warnings.append(f"skipped {len(unreadable)} unreadable image file(s), e.g. {unreadable[0]}")
    if len(calib) < 100:
        warnings.append(f"only {len(calib)} calibration images (100-500 recommended)")
    stats = {
        "folder": str(folder),
        "found": total,
        "used": len(calib),
        "verify": len(verify),
        "unreadable": len(unreadable),
        "unreadable_files": unreadable[:10],
        "split": source,
        "verify_files": [str(Path(p).relative_to(folder)) for p in verify_paths],
        "resize": "letterbox",
        "fill": LETTERBOX_FILL,
        "synthetic": False,
    }
    return DetectionImages(calib, verify, letterboxes, truths, stats, warnings)


def _decode_all(raws, letterboxes, decoder, threshold, iou):
    """Each image's detections in original pixels; ``raws``: one decoder input per image
    ({output index: (1, ...) array})."""
    out = []
    for raw, lb in zip(raws, letterboxes):
        boxes, scores, classes = decoder.decode(raw, threshold, iou, 100)
        out.append(ImageBoxes.make(lb.to_original(boxes), classes, scores))
    return out


def verify(
    data: bytes,
    float_fn,
    prep,
    imgs: DetectionImages,
    input_hw,
    num_classes: int,
    strides,
    score_threshold: float,
    iou: float,
    labels: list[str] | None,
    progress: Progress = None,
    decoder=None,
    channels: int | None = None,
) -> dict[str, Any]:
    """Float vs int8 detections on the held-out images (see the module docstring).
    ``decoder``/``channels``: another head's (the zoo YOLOv3-Tiny's, convert_yolov3.py)."""
    from edgekit.host.verify import float_outputs, run_int8

    n = len(imgs.verify)
    if n == 0:
        return {"task": "detect", "images": 0, "map50_int8": None, "skipped": "no held-out images"}
    x = prep.to_float(imgs.verify)
    rows = sum((input_hw[0] // s) * (input_hw[1] // s) for s in strides)
    shape = (n, rows, channels or 4 + num_classes)
    ref = float_outputs(float_fn, x).reshape(shape)
    got = run_int8(data, x, progress).reshape(shape)
    decoder = decoder or decoder_for(input_hw, num_classes, strides)
    result = compare_detections([{0: r[None]} for r in ref], [{0: g[None]} for g in got],
                                imgs, decoder, score_threshold, iou, labels)  # fmt: skip
    err = np.abs(ref - got)
    result.update(mean_abs_error=round(float(err.mean()), 6),
                  max_abs_error=round(float(err.max()), 6))  # fmt: skip
    return result


def compare_detections(ref_raws, got_raws, imgs: DetectionImages, decoder,
                       score_threshold: float, iou: float, labels) -> dict[str, Any]:  # fmt: skip
    """mAP@0.5 of the int8 detections against the float ones (above ``score_threshold``) and,
    when the held-out images are labelled, of both against the labels. ``ref_raws`` /
    ``got_raws``: the float / int8 outputs, one decoder input per held-out image."""
    float_all = _decode_all(ref_raws, imgs.letterboxes, decoder, MAP_SCORE_THRESHOLD, iou)
    int8_all = _decode_all(got_raws, imgs.letterboxes, decoder, MAP_SCORE_THRESHOLD, iou)
    float_kept = [
        ImageBoxes.make(f.boxes[f.scores >= score_threshold], f.labels[f.scores >= score_threshold])
        for f in float_all
    ]
    vs_float = mean_average_precision(int8_all, float_kept, 0.5)
    result: dict[str, Any] = {
        "task": "detect",
        "images": len(ref_raws),
        "labelled": imgs.truths is not None,
        "map_score_threshold": MAP_SCORE_THRESHOLD,
        "map50_int8_vs_float": vs_float.map,
        "float_detections": int(sum(len(f.boxes) for f in float_kept)),
        "score_threshold": score_threshold,
    }
    if imgs.truths is not None:
        f = mean_average_precision(float_all, imgs.truths, 0.5)
        q = mean_average_precision(int8_all, imgs.truths, 0.5)
        result.update(
            map50_float=f.map,
            map50_int8=q.map,
            ap50_float=f.to_dict(labels)["ap_per_class"],
            ap50_int8=q.to_dict(labels)["ap_per_class"],
        )
    else:
        result["map50_int8"] = None
    return result


def check_min_map(result: dict, min_map: float | None) -> None:
    if min_map is None:
        return
    labelled = result.get("map50_int8") is not None
    value = result["map50_int8"] if labelled else result.get("map50_int8_vs_float")
    if value is None:
        raise EdgekitError("--min-map: no held-out images to verify on", "add images")
    result["min_map"] = min_map
    if value < min_map:
        against = "the labels" if labelled else "the float model's detections"
        raise EdgekitError(
            f"int8 mAP@0.5 {value:.3f} against {against} on {result['images']} held-out images "
            f"is below --min-map {min_map:g}; no bundle written",
            "use more/better calibration images, check --input-range, or lower it",
        )


def detection_block(strides, score_threshold: float, iou: float, max_detections: int) -> dict:
    """The manifest's ``detection`` block for the zoo detector."""
    params = head_params(strides)
    params.update(
        score_threshold=float(score_threshold),
        iou=float(iou),
        max_detections=int(max_detections),
        letterbox=True,
        fill=LETTERBOX_FILL,
    )
    return {"decoder": "edgekit-anchor-free", "params": params}



@dataclass(frozen=True)
class DetectTask:
    """The zoo detector (edgekit's anchor-free head, :data:`HEAD_LAYER`) at ``input_hw``
    (height, width in pixels), with the bundle's decoder settings."""

    num_classes: int
    input_hw: tuple[int, int]
    strides: tuple[int, ...] = field(default=DEFAULT_STRIDES)
    score_threshold: float = 0.5
    iou: float = 0.45
    max_detections: int = 100
    name: str = "detect"

    @classmethod
    def matches(cls, model) -> bool:
        from edgekit.host.convert_yolov3 import is_yolov3

        return is_detector(model) or is_yolov3(model)

    @classmethod
    def for_model(cls, loaded, options, model_path) -> DetectTask:
        from edgekit.host.convert_yolov3 import YoloV3Task, is_yolov3

        if cls is DetectTask and is_yolov3(loaded.model):
            return YoloV3Task.for_model(loaded, options, model_path)
        if not is_detector(loaded.model):
            raise EdgekitError(
                f"{model_path}: --task detect, but the model does not end in edgekit's detector "
                "head (a 'detections' layer of shape (1, N, 4 + classes))",
                "convert other detectors with their own exporter; edgekit detect decodes them",
            )
        if options.min_agreement is not None:
            raise EdgekitError("--min-agreement is for classifiers", "use --min-map for detectors")
        if options.anchors is not None:
            raise EdgekitError(
                "--anchors is for YOLO anchor heads; edgekit's detector has none", "drop it"
            )
        hw = (int(loaded.input_shape[1]), int(loaded.input_shape[2]))
        return cls(
            num_classes=int(loaded.output_shape[-1]) - 4,
            input_hw=hw,
            strides=tuple(strides_for(loaded.model, hw)),
            score_threshold=options.score_threshold,
            iou=options.iou,
            max_detections=options.max_detections,
        )

    def resize(self, requested: str | None) -> str:
        return "pad"  # letterboxed; the decoder params say how (fill, letterbox)

    def load_images(self, options, prep, progress, train_split):
        if options.calib is None:
            from edgekit.host.calibration import synthetic_images

            return synthetic_images(prep, options.num_calib)
        return load_images(
            options.calib,
            prep.size,
            options.num_calib,
            options.num_verify,
            options.group_pattern,
            progress,
        )

    def true_classes(self, images, labels) -> None:
        return None  # boxes, not one class per image: no float top-1 to measure

    def verify(self, data, loaded, prep, images, labels, progress, float_ref=None):
        return verify(
            data,
            loaded.batched,
            prep,
            images,
            self.input_hw,
            self.num_classes,
            self.strides,
            self.score_threshold,
            self.iou,
            labels,
            progress,
        )

    def check_verification(self, result: dict[str, Any], options) -> None:
        check_min_map(result, options.min_map)

    def manifest_fields(self, options) -> dict[str, Any]:
        return {
            "task": "detect",
            "detection": detection_block(
                self.strides, self.score_threshold, self.iou, self.max_detections
            ),
        }
