"""``edgekit convert`` on YOLOv3 / YOLOv3-Tiny detectors: grid heads, one output per stride
(1, H/s, W/s, A * (5 + nc)) (the zoo's ``yolov3_tiny`` as built, darknet ports, the Coral
ports' Keras models), or the zoo's older one-output form ``yolo`` (1, N, 3 * (5 + nc)) of both
grids' rows (strides 16, 32). Either becomes a detection bundle with the ``yolov3`` decoder;
the manifest records the anchors, the strides and, for grid heads, each head (stride, grid,
anchors; docs/DESIGN.md "Several output heads").

Anchors: ``--anchors FILE`` (darknet's ``10,14, 23,27, ...``, A per head, small first), else
darknet's yolov3-tiny anchors for 2 heads, yolov3's for 3. A file whose count does not fit the
heads (A per head, A * (5 + classes) channels) is refused in one line.

Everything else is the zoo detector's conversion (:class:`~edgekit.host.convert_detect.
DetectTask`: letterboxed calibration images, float vs int8 mAP@0.5 verification), with the
``yolov3`` decoder in place of ``edgekit-anchor-free``; several heads are verified together
(:mod:`edgekit.host.convert_heads`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgekit.detect.yolov3 import TINY_ANCHORS, YOLOV3_ANCHORS
from edgekit.errors import EdgekitError
from edgekit.host import convert_heads
from edgekit.host.convert_detect import DetectTask, verify
from edgekit.host.detect_eval import LETTERBOX_FILL

HEAD_LAYER = "yolo"
STRIDES = (16, 32)  # the one-output form's rows
DEFAULT_ANCHORS = {2: TINY_ANCHORS, 3: YOLOV3_ANCHORS}  # by number of heads


def is_yolov3(model) -> bool:
    """Grid heads (several rank-4 outputs; the loader has checked they are grids of the input)
    or the zoo's one-output form: last layer ``yolo``, output (1, N, 3 * (5 + nc))."""
    if len(model.outputs) > 1:
        return all(len(o.shape) == 4 for o in model.outputs)
    last = model.layers[-1]
    while getattr(last, "layers", None):  # the batch-1 clone wraps the model as one layer
        last = last.layers[-1]
    if last.name != HEAD_LAYER:
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


def _anchors(options, levels: int, channels: int, model_path) -> tuple:
    """The anchors (``--anchors`` or the defaults) checked against ``levels`` heads of
    ``channels`` channels; (anchors, classes)."""
    from edgekit.detect.yolov3 import read_anchors

    where = f"--anchors {options.anchors}" if options.anchors is not None else None
    if where:
        anchors = tuple(tuple(a) for a in read_anchors(options.anchors))
    elif levels in DEFAULT_ANCHORS:
        anchors = DEFAULT_ANCHORS[levels]
    else:
        raise EdgekitError(
            f"{model_path}: {levels} YOLO heads and no darknet default anchors for that many",
            "pass --anchors FILE (darknet's 10,14, 23,27, ...: the same number per head)",
        )
    per = len(anchors) // levels
    if len(anchors) % levels or channels % per or channels // per <= 5:
        raise EdgekitError(
            f"{where or 'the default anchors'}: {len(anchors)} anchors do not fit {levels} heads "
            f"of {channels} channels (A anchors per head, A * (5 + classes) channels)",
            "give the anchors the model was trained with, the same number per head",
        )
    return anchors, channels // per - 5


@dataclass(frozen=True)
class YoloV3Task(DetectTask):
    """A YOLOv3 detector (see the module docstring). ``heads``: the grid heads, smallest stride
    first (empty for the one-output rows form)."""

    strides: tuple[int, ...] = field(default=STRIDES)
    anchors: tuple[tuple[float, float], ...] = field(default=TINY_ANCHORS)
    heads: tuple[convert_heads.Head, ...] = ()

    @classmethod
    def matches(cls, model) -> bool:
        return is_yolov3(model)

    @classmethod
    def for_model(cls, loaded, options, model_path) -> YoloV3Task:
        if options.min_agreement is not None:
            raise EdgekitError("--min-agreement is for classifiers", "use --min-map for detectors")
        hw = (int(loaded.input_shape[1]), int(loaded.input_shape[2]))
        shapes = loaded.output_shapes or (loaded.output_shape,)
        common = dict(input_hw=hw, score_threshold=options.score_threshold, iou=options.iou,
                      max_detections=options.max_detections)  # fmt: skip
        if len(shapes) > 1:
            anchors, nc = _anchors(options, len(shapes), int(shapes[0][3]), model_path)
            heads = convert_heads.grid_heads(shapes, hw, anchors)
            return cls(num_classes=nc, strides=tuple(h.stride for h in heads),
                       anchors=tuple(anchors), heads=heads, **common)  # fmt: skip
        n = int(loaded.output_shape[1])
        if sum((hw[0] // s) * (hw[1] // s) for s in STRIDES) != n or hw[0] % 32 or hw[1] % 32:
            raise EdgekitError(
                f"{model_path}: yolo output has {n} rows, not the stride 16 + 32 grids of "
                f"{hw[0]}x{hw[1]}",
                "convert the zoo model yolov3_tiny as built (edgekit zoo build yolov3_tiny)",
            )
        anchors, nc = _anchors(options, len(STRIDES), int(loaded.output_shape[-1]), model_path)
        return cls(num_classes=nc, anchors=tuple(anchors), **common)

    def verify(self, data, loaded, prep, images, labels, progress, float_ref=None):
        if self.heads:
            return convert_heads.verify(data, self, loaded, prep, images, labels, progress)
        dec = decoder(self.input_hw, self.num_classes, self.strides, self.anchors)
        result = verify(data, loaded.batched, prep, images, self.input_hw, self.num_classes,
                        self.strides, self.score_threshold, self.iou, labels, progress,
                        decoder=dec, channels=dec.per_level * (5 + self.num_classes))  # fmt: skip
        result["heads"] = _shared_scale_report(data, self.strides, self.input_hw)
        return result

    def manifest_fields(self, options) -> dict[str, Any]:
        params: dict[str, Any] = {
            "anchors": [list(a) for a in self.anchors],
            "strides": list(self.strides),
        }
        if self.heads:
            params["heads"] = [h.to_dict() for h in self.heads]
        params.update(
            score_threshold=float(self.score_threshold),
            iou=float(self.iou),
            max_detections=int(self.max_detections),
            letterbox=True,
            fill=LETTERBOX_FILL,
        )
        return {"task": "detect", "detection": {"decoder": "yolov3", "params": params}}


def _shared_scale_report(data: bytes, strides, input_hw) -> list[dict]:
    """The one-output form: every head's boxes come from the one output's (scale, zero point)."""
    from edgekit.tflite import read_model

    out = read_model(data).outputs[0]
    q = out.quantization
    scale = float(q.scale[0]) if q and q.scale else 0.0
    zp = int(q.zero_point[0]) if q and q.zero_point else 0
    return [
        convert_heads.quant_report(
            convert_heads.Head(s, (input_hw[0] // s, input_hw[1] // s), (), 0),
            out.name, 0, out.shape, out.dtype, scale, zp,
        )
        for s in strides
    ]  # fmt: skip
