"""YOLOv3-Tiny (Redmon & Farhadi 2018, arXiv:1804.02767; darknet's ``yolov3-tiny.cfg``), in the
ReLU variant Edge TPU ports use (LeakyReLU becomes ReLU: every op maps, see the edgetpu
mapping), two anchor heads at strides 32 and 16::

    conv 3x3 16 -> maxpool 2/2 -> conv 32 -> mp -> conv 64 -> mp -> conv 128 -> mp
    conv 256 (-> route, stride 16) -> mp -> conv 512 -> maxpool 2/1 (same) -> conv 1024
    conv 1x1 256 (-> route) -> conv 512 -> conv 1x1 3 * (5 + nc)         head "yolo_s32"
    route -> conv 1x1 128 -> nearest 2x -> concat(stride-16 route) -> conv 256
          -> conv 1x1 3 * (5 + nc)                                       head "yolo_s16"
    outputs: [yolo_s32 (batch, H/32, W/32, 3 * (5 + nc)), yolo_s16 (batch, H/16, W/16, same)]

Every conv but the two output convs is conv (no bias) -> BN -> ReLU (BN folds into the conv).
Two outputs, as darknet and the Coral ports have them: ``edgekit convert`` quantizes each with
its own (scale, zero point) and records both heads in the bundle (docs/DESIGN.md "Several
output heads"). ``grids=False`` builds the older one-output form instead, output ``yolo``
(batch, (H/16)(W/16) + (H/32)(W/32), 3 * (5 + nc)): both grids' rows, stride 16 first, each
row-major, sharing one int8 scale. Raw logits: the ``yolov3`` decoder (edgekit.detect.yolov3)
takes sigmoid x, y plus the cell, exp w, h times the anchors, sigmoid objectness times sigmoid
class score. 8.86 M parameters at 416 x 416 and 80 classes (the seed paper: "about 8.5
million").
"""

from __future__ import annotations

from edgekit.errors import EdgekitError

from ._blocks import act, check_activation, check_classes, image_input, keras, size_hw

DEFAULT_INPUT = 416
STRIDES = (16, 32)
# darknet's yolov3-tiny.cfg anchors (w, h in input pixels at 416), small first; the stride-32
# head takes the last three (mask 3,4,5), the stride-16 head the first three (mask 0,1,2)
ANCHORS = ((10, 14), (23, 27), (37, 58), (81, 82), (135, 169), (344, 319))


def _conv(x, filters: int, size: int, activation: str, name: str):
    layers = keras().layers
    x = layers.Conv2D(filters, size, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return act(x, activation, f"{name}_relu")


def build(
    input_size=DEFAULT_INPUT, classes: int = 80, activation: str = "relu", grids: bool = True
):
    """Build YOLOv3-Tiny. Input (batch, H, W, 3) float; outputs ``yolo_s32`` (batch, H/32, W/32,
    3 * (5 + classes)) and ``yolo_s16`` (batch, H/16, W/16, same), raw logits.

    Args:
        input_size: S or (H, W), multiples of 32, at least 64 (416 by default).
        classes: number of object classes.
        activation: ``relu`` (default, as Edge TPU ports) or ``relu6``.
        grids: False for one output ``yolo`` (batch, N, 3 * (5 + classes)) instead, N =
            (H/16)(W/16) + (H/32)(W/32) rows, stride 16 first (one int8 scale for both heads).
    """
    classes = check_classes(classes)
    activation = check_activation(activation)
    h, w = size_hw(input_size)
    if h < 64 or w < 64 or h % 32 or w % 32:
        raise EdgekitError(
            f"yolov3_tiny: input size {h}x{w} is not supported",
            "use multiples of 32, at least 64 (e.g. 416)",
        )
    k = keras()
    layers = k.layers
    x = image_input((h, w))
    inp = x
    for i, f in enumerate((16, 32, 64, 128), start=1):
        x = _conv(x, f, 3, activation, f"conv{i}")
        x = layers.MaxPooling2D(2, 2, name=f"pool{i}")(x)
    route16 = _conv(x, 256, 3, activation, "conv5")
    x = layers.MaxPooling2D(2, 2, name="pool5")(route16)
    x = _conv(x, 512, 3, activation, "conv6")
    x = layers.MaxPooling2D(2, 1, padding="same", name="pool6")(x)
    x = _conv(x, 1024, 3, activation, "conv7")
    route32 = _conv(x, 256, 1, activation, "conv8")
    out = 3 * (5 + classes)
    y = _conv(route32, 512, 3, activation, "conv9")
    s32 = layers.Conv2D(out, 1, name="yolo_s32")(y)
    y = _conv(route32, 128, 1, activation, "conv10")
    # nearest 2x as RESIZE_NEAREST_NEIGHBOR (UpSampling2D can lower to TILE, which the TPU cannot
    # run; see models/detector.py)
    y = layers.Resizing(h // 16, w // 16, interpolation="nearest", name="up")(y)
    y = layers.Concatenate(name="route")([y, route16])
    y = _conv(y, 256, 3, activation, "conv11")
    s16 = layers.Conv2D(out, 1, name="yolo_s16")(y)
    name = f"yolov3_tiny_{h}x{w}"
    if grids:
        return k.Model(inp, [s32, s16], name=name)
    rows = [
        layers.Reshape(((h // s) * (w // s), out), name=f"rows_s{s}")(y)
        for s, y in ((16, s16), (32, s32))
    ]
    return k.Model(inp, layers.Concatenate(axis=1, name="yolo")(rows), name=name)
