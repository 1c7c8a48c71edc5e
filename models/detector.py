"""edgekit's own object detector: a MobileNet-style backbone and an anchor-free head at 2 strides.

Anchor-free one-stage design after FCOS (Tian et al. 2019, arXiv:1904.01355: per-cell
distances to the four box sides, centre sampling) and YOLOX (Ge et al. 2021, arXiv:2107.08430:
decoupled from anchors, per-class sigmoid scores), on MobileNet v1's depthwise-separable blocks
(Howard et al. 2017, arXiv:1704.04861). Everything in the graph is an op the Edge TPU runs:
CONV_2D, DEPTHWISE_CONV_2D (BN folded), RELU6, RESIZE_NEAREST_NEIGHBOR (2x), RESHAPE (to
rank 3), CONCATENATION and one LOGISTIC at the end. Decoding and NMS run outside the model
(``edgekit.detect``, decoder ``edgekit-anchor-free``); the output layout is documented in
docs/DESIGN.md ("edgekit detector head")::

    conv 3x3/2 (16a) -> BN -> ReLU6                                        stride 2
    DS blocks (DW 3x3 -> BN -> ReLU6 -> PW 1x1 -> BN -> ReLU6), (filters, stride):
        (32a,1) (48a,2) (48a,1)                                            stride 4
        (64a,2) (64a,1) (64a,1)          -> P3                             stride 8
        (128a,2) (128a,1) (128a,1)       -> P4                             stride 16
    P3 <- concat(P3, nearest 2x upsample of P4)   (top-down context, ``context=True``)
    head per level: DS block (head_filters) -> 1x1 conv to 4 + classes (bias)
        -> reshape (H/s * W/s, 4 + classes); concat over levels; sigmoid
    output "detections" (batch, N, 4 + classes), N = (H/8)(W/8) + (H/16)(W/16)

Columns 0..3 are the (l, t, r, b) distances from the cell centre to the box sides divided by the
input width (l, r) or height (t, b); columns 4.. the per-class scores. The final 1x1 convs start
with biases that put every score at 0.01 (the focal-loss prior of Lin et al. 2017) and every
distance at 0.06 of the input, so training starts from "nothing here, small boxes".
"""

from __future__ import annotations

import math

from edgekit.errors import EdgekitError

from ._blocks import act, check_activation, check_classes, image_input, keras, size_hw

DEFAULT_INPUT = 160
STRIDES = (8, 16)
# (pointwise filters before alpha, depthwise stride); "P3"/"P4" mark the head's inputs.
STAGES = (
    ((32, 1), (48, 2), (48, 1)),
    ((64, 2), (64, 1), (64, 1)),
    ((128, 2), (128, 1), (128, 1)),
)
SCORE_PRIOR = 0.01
DISTANCE_PRIOR = 0.06


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _ds_block(x, filters: int, stride: int, activation: str, momentum: float, name: str):
    layers = keras().layers
    x = layers.DepthwiseConv2D(
        3, strides=stride, padding="same", use_bias=False, name=f"{name}_dw"
    )(x)
    x = layers.BatchNormalization(momentum=momentum, name=f"{name}_dw_bn")(x)
    x = act(x, activation, f"{name}_dw_relu")
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pw")(x)
    x = layers.BatchNormalization(momentum=momentum, name=f"{name}_pw_bn")(x)
    return act(x, activation, f"{name}_pw_relu")


def build(
    input_size=DEFAULT_INPUT,
    classes: int = 2,
    alpha: float = 1.0,
    head_filters: int = 64,
    context: bool = True,
    activation: str = "relu6",
    bn_momentum: float = 0.9,
):
    """Build the detector. Input (batch, H, W, 3) float; output (batch, N, 4 + classes) in [0, 1].

    Args:
        input_size: S or (H, W), each a multiple of 16 and at least 32 (160 by default: maps of
            20x20 and 10x10, N = 500 cells).
        classes: number of object classes.
        alpha: width multiplier of the backbone (filters ``max(8, int(f * alpha))``).
        head_filters: channels of each level's head block.
        context: feed the stride-8 head the upsampled stride-16 features too (top-down).
        activation: ``relu6`` (default; quantizes well) or ``relu``.
        bn_momentum: BatchNormalization momentum (0.9: settles within a few hundred steps).
    """
    classes = check_classes(classes)
    activation = check_activation(activation)
    alpha = float(alpha)
    if not (math.isfinite(alpha) and 0 < alpha <= 4):
        raise EdgekitError(f"detector: alpha must be > 0 and <= 4, got {alpha}", "e.g. 1 or 0.5")
    head_filters = int(head_filters)
    if not 1 <= head_filters <= 1024:
        raise EdgekitError(f"detector: head_filters must be 1..1024, got {head_filters}")
    h, w = size_hw(input_size)
    if h < 32 or w < 32 or h % STRIDES[-1] or w % STRIDES[-1]:
        raise EdgekitError(
            f"detector: input size {h}x{w} is not supported",
            f"use multiples of {STRIDES[-1]}, at least 32 (e.g. 160)",
        )
    k = keras()
    layers = k.layers
    m = bn_momentum

    def width(f: int) -> int:
        return max(8, int(f * alpha))

    inp = image_input((h, w))
    x = layers.Conv2D(width(16), 3, strides=2, padding="same", use_bias=False, name="stem")(inp)
    x = layers.BatchNormalization(momentum=m, name="stem_bn")(x)
    x = act(x, activation, "stem_relu")
    features = []
    for s, stage in enumerate(STAGES, start=1):
        for b, (filters, stride) in enumerate(stage, start=1):
            x = _ds_block(x, width(filters), stride, activation, m, f"stage{s}_block{b}")
        if s >= 2:
            features.append(x)  # stride 8 after stage 2, stride 16 after stage 3

    if context:
        # Top-down context for the stride-8 level (a minimal FPN, Lin et al. 2017): the stride-16
        # map upsampled 2x (nearest: RESIZE_NEAREST_NEIGHBOR, a power-of-two step the Edge TPU
        # maps) and concatenated, so small boxes are classified with the wider view.
        # (keras.layers.UpSampling2D lowers to TILE on rank-5 tensors, which the TPU cannot run.)
        up = layers.Resizing(h // 8, w // 8, interpolation="nearest", name="p16_up")(features[1])
        features[0] = layers.Concatenate(name="p8_context")([features[0], up])
    outputs = 4 + classes
    bias = [_logit(DISTANCE_PRIOR)] * 4 + [_logit(SCORE_PRIOR)] * classes
    rows = []
    for stride, feat in zip(STRIDES, features):
        y = _ds_block(feat, head_filters, 1, activation, m, f"head_p{stride}")
        y = layers.Conv2D(
            outputs,
            1,
            name=f"head_p{stride}_out",
            bias_initializer=k.initializers.Constant(bias),
            kernel_initializer=k.initializers.RandomNormal(stddev=0.01),
        )(y)
        rows.append(
            layers.Reshape(((h // stride) * (w // stride), outputs), name=f"rows_p{stride}")(y)
        )
    y = layers.Concatenate(axis=1, name="concat")(rows)
    out = layers.Activation("sigmoid", name="detections")(y)
    return k.Model(inp, out, name=f"detector_{alpha:g}_{h}x{w}")


def cells(input_size, strides=STRIDES):
    """Cell centres of the output rows: (N, 2) float32 (cx, cy) in input pixels and (N,) strides.

    Row order is the head's: stride by stride (ascending), row-major within a stride.
    """
    import numpy as np

    h, w = size_hw(input_size)
    centres, per_row = [], []
    for s in strides:
        ys, xs = np.meshgrid(np.arange(h // s), np.arange(w // s), indexing="ij")
        c = np.stack([(xs.ravel() + 0.5) * s, (ys.ravel() + 0.5) * s], axis=1)
        centres.append(c)
        per_row.append(np.full(len(c), s))
    return np.concatenate(centres).astype(np.float32), np.concatenate(per_row).astype(np.float32)
