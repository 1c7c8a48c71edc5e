"""Detector pixels and measurement shared by ``train --task detect`` and ``convert`` on a
detector: scenes letterboxed as the device does (grey 114), the zoo head's decoder and its
params, and mAP@0.5 of raw head outputs with the device's decoder and NMS (score threshold
0.001 for mAP, as detectors are benchmarked)."""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from edgekit import images
from edgekit.detect.dataset import Scene
from edgekit.detect.metrics import ImageBoxes, mean_average_precision

Progress = Optional[Callable[[str], None]]
LETTERBOX_FILL = 114
MAP_SCORE_THRESHOLD = 0.001
NMS_IOU = 0.45  # the bundle's default (edgekit convert --iou)


def letterbox_scenes(scenes, input_hw, progress: Progress = None):
    """(uint8 (N, H, W, 3), [Letterbox]) for ``scenes`` (read once)."""
    pixels, boxes_in = [], []
    for i, s in enumerate(scenes):
        img, lb = images.letterbox(images.load_rgb(s.path), input_hw, LETTERBOX_FILL)
        pixels.append(img)
        boxes_in.append(lb)
        if progress and (i + 1) % 200 == 0:
            progress(f"  read {i + 1}/{len(scenes)} images")
    return np.stack(pixels), boxes_in


def decoder_for(input_hw, num_classes: int, strides, dtype="float32", scale=0.0, zero_point=0):
    """The device's ``edgekit-anchor-free`` decoder bound to a (1, N, 4 + nc) output."""
    from edgekit.detect.decoders import HeadIO, OutputTensor, get_decoder

    n = sum((input_hw[0] // s) * (input_hw[1] // s) for s in strides)
    out = OutputTensor(0, "detections", (1, n, 4 + num_classes), dtype, scale, zero_point)
    params = head_params(strides)
    return get_decoder("edgekit-anchor-free")(HeadIO(tuple(input_hw), (out,)), params)


def head_params(strides) -> dict:
    """Decoder params of the zoo detector's head (docs/DESIGN.md "edgekit detector head")."""
    return {"strides": list(strides)}


def evaluate(outputs, letterboxes, scenes: list[Scene], decoder, threshold=MAP_SCORE_THRESHOLD,
             evaluate_out=None):  # fmt: skip
    """mAP@0.5 of raw head ``outputs`` (N, cells, 4 + nc) against the scenes' labels, boxes
    mapped back to original pixels. ``evaluate_out(outputs)``: one decoder input per image
    for another head's outputs (YOLOv3's per-head arrays)."""
    raws = evaluate_out(outputs) if evaluate_out else [{0: out[None]} for out in outputs]
    preds = decode_images(raws, letterboxes, decoder, threshold, NMS_IOU)
    truths = [ImageBoxes.make(s.boxes, s.labels) for s in scenes][: len(preds)]
    return mean_average_precision(preds[: len(truths)], truths, 0.5)


def decode_images(raws, letterboxes, decoder, threshold: float, iou: float) -> list[ImageBoxes]:
    """Each image's detections (at most 100, after NMS at ``iou``) in original pixels;
    ``raws``: one decoder input per image ({output index: (1, ...) array})."""
    out = []
    for raw, lb in zip(raws, letterboxes):
        boxes, scores, classes = decoder.decode(raw, threshold, iou, 100)
        out.append(ImageBoxes.make(lb.to_original(boxes), classes, scores))
    return out
