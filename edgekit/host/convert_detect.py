"""``edgekit convert`` on a detector: scene calibration, detection verification, decoder params.

A Keras model is a detector when it ends in the zoo detector's head (a layer named
``detections`` with output (1, N, 4 + nc), docs/DESIGN.md "edgekit detector head") or when
``--task detect`` says so.

Images: a detection dataset's train split calibrates and its held-out split verifies, WITH
labels; any other folder is split like a classifier's (:mod:`edgekit.host.convert_detect_images`).
Verification: float vs int8 mAP@0.5 with the device's decoder and NMS, ``--min-map``
(:mod:`edgekit.host.convert_detect_verify`).

Here: the head recognised, the manifest's ``detection`` block and :class:`DetectTask` (the
convert task).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgekit.errors import EdgekitError
from edgekit.host.convert_detect_images import (  # noqa: F401  (re-exported)
    DetectionImages,
    Progress,
    load_images,
)
from edgekit.host.convert_detect_verify import (  # noqa: F401  (re-exported)
    check_min_map,
    compare_detections,
    verify,
)
from edgekit.host.detect_eval import LETTERBOX_FILL, head_params

HEAD_LAYER = "detections"
DEFAULT_STRIDES = (8, 16)


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
