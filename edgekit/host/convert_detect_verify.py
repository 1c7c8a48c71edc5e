"""A converted detector verified: float vs int8 detections on the held-out images, decoded with
the device's decoder and NMS (:func:`verify`, :func:`compare_detections`), and ``--min-map``
(:func:`check_min_map`).

Verification runs the float Keras model and the int8 model (ai-edge-litert, dequantized output)
on the held-out images and decodes both with the device's ``edgekit-anchor-free`` decoder and
NMS: mAP@0.5 of each against the labels (score threshold 0.001, the usual mAP protocol), and
mAP@0.5 of the int8 detections against the float detections above the bundle's score threshold
(how well int8 reproduces what the float model reports). ``--min-map`` fails the conversion
when the int8 mAP@0.5 (against the labels when there are labels, else against float) is below
it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.detect.metrics import ImageBoxes, mean_average_precision
from edgekit.errors import EdgekitError
from edgekit.host.convert_detect_images import DetectionImages, Progress
from edgekit.host.detect_eval import MAP_SCORE_THRESHOLD, decode_images, decoder_for


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
    float_all = decode_images(ref_raws, imgs.letterboxes, decoder, MAP_SCORE_THRESHOLD, iou)
    int8_all = decode_images(got_raws, imgs.letterboxes, decoder, MAP_SCORE_THRESHOLD, iou)
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
