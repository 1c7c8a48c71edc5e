"""``edgekit convert`` on the zoo's YOLOv3-Tiny (``models/yolov3_tiny.py``): its one ``yolo``
output (1, N, 3 * (5 + nc)) of both grids' rows (strides 16, 32) becomes a detection bundle
with the ``yolov3`` decoder, its anchors and strides in the manifest.

Everything else is the zoo detector's conversion (:class:`~edgekit.host.convert_detect.
DetectTask`: letterboxed calibration images, float vs int8 mAP@0.5 verification), with the
``yolov3`` decoder in place of ``edgekit-anchor-free``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgekit.detect.yolov3 import TINY_ANCHORS
from edgekit.errors import EdgekitError
from edgekit.host.convert_detect import DetectTask, verify
from edgekit.host.train_detect import LETTERBOX_FILL

HEAD_LAYER = "yolo"
STRIDES = (16, 32)


def is_yolov3(model) -> bool:
    """The zoo YOLOv3-Tiny's head: last layer ``yolo``, one rank-3 output (1, N, 3 * (5 + nc))."""
    last = model.layers[-1]
    while getattr(last, "layers", None):  # the batch-1 clone wraps the model as one layer
        last = last.layers[-1]
    if len(model.outputs) != 1 or last.name != HEAD_LAYER:
        return False
    shape = tuple(model.outputs[0].shape)
    return len(shape) == 3 and bool(shape[2]) and shape[2] % 3 == 0 and shape[2] // 3 > 5


def decoder(input_hw, num_classes: int, strides, anchors, params: dict | None = None):
    """The device's ``yolov3`` decoder bound to the float (1, N, 3 * (5 + nc)) output."""
    from edgekit.detect.decoders import HeadIO, OutputTensor, get_decoder

    n = sum((input_hw[0] // s) * (input_hw[1] // s) for s in strides)
    out = OutputTensor(0, HEAD_LAYER, (1, n, 3 * (5 + num_classes)), "float32")
    p = {"strides": list(strides), "anchors": [list(a) for a in anchors], **(params or {})}
    return get_decoder("yolov3")(HeadIO(tuple(input_hw), (out,)), p)


@dataclass(frozen=True)
class YoloV3Task(DetectTask):
    """The zoo YOLOv3-Tiny (see the module docstring)."""

    strides: tuple[int, ...] = field(default=STRIDES)
    anchors: tuple[tuple[float, float], ...] = field(default=TINY_ANCHORS)

    @classmethod
    def matches(cls, model) -> bool:
        return is_yolov3(model)

    @classmethod
    def for_model(cls, loaded, options, model_path) -> YoloV3Task:
        if options.min_agreement is not None:
            raise EdgekitError("--min-agreement is for classifiers", "use --min-map for detectors")
        hw = (int(loaded.input_shape[1]), int(loaded.input_shape[2]))
        n = int(loaded.output_shape[1])
        if sum((hw[0] // s) * (hw[1] // s) for s in STRIDES) != n or hw[0] % 32 or hw[1] % 32:
            raise EdgekitError(
                f"{model_path}: yolo output has {n} rows, not the stride 16 + 32 grids of "
                f"{hw[0]}x{hw[1]}",
                "convert the zoo model yolov3_tiny as built (edgekit zoo build yolov3_tiny)",
            )
        return cls(
            num_classes=int(loaded.output_shape[-1]) // 3 - 5,
            input_hw=hw,
            score_threshold=options.score_threshold,
            iou=options.iou,
            max_detections=options.max_detections,
        )

    def verify(self, data, loaded, prep, images, labels, progress, float_ref=None):
        dec = decoder(self.input_hw, self.num_classes, self.strides, self.anchors)
        return verify(data, loaded.batched, prep, images, self.input_hw, self.num_classes,
                      self.strides, self.score_threshold, self.iou, labels, progress,
                      decoder=dec, channels=3 * (5 + self.num_classes))  # fmt: skip

    def manifest_fields(self, options) -> dict[str, Any]:
        params = {
            "anchors": [list(a) for a in self.anchors],
            "strides": list(self.strides),
            "score_threshold": float(self.score_threshold),
            "iou": float(self.iou),
            "max_detections": int(self.max_detections),
            "letterbox": True,
            "fill": LETTERBOX_FILL,
        }
        return {"task": "detect", "detection": {"decoder": "yolov3", "params": params}}
