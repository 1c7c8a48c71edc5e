"""dsconv: a standard KxK convolution next to its depthwise-separable split.

Howard et al., "MobileNets", 2017, arXiv:1704.04861, section 3.1 (after Sifre's thesis and
Chollet's Xception). A standard conv from C to M channels with a KxK kernel (no bias) has
K*K*C*M parameters; the separable split, a KxK depthwise conv (K*K*C) followed by a 1x1
pointwise conv (C*M), has K*K*C + C*M, a ratio of 1/M + 1/K^2. With C = 100, M = 1000:

    K = 3: 900,000 vs 100,900 (8.9x fewer)     K = 7: 4,900,000 vs 104,900 (46.7x fewer)

Multiply-adds are the parameter counts times the output's H*W (stride 1, ``same`` padding).

``build`` returns one model with both branches side by side on the same (S, S, C) input, so
``edgekit inspect`` shows the two counts layer by layer; ``variant`` keeps only one of them.
"""

from __future__ import annotations

from edgekit.errors import EdgekitError

from ._blocks import image_input, keras

DEFAULT_INPUT = 14
VARIANTS = ("both", "standard", "separable")


def count(kernel_size: int = 3, channels_in: int = 100, channels_out: int = 1000) -> dict:
    """Parameter counts without building anything: {"standard", "depthwise", "pointwise",
    "separable", "ratio"} with ratio = separable / standard = 1/M + 1/K^2."""
    k2 = int(kernel_size) ** 2
    c, m = int(channels_in), int(channels_out)
    standard, dw, pw = k2 * c * m, k2 * c, c * m
    return {
        "standard": standard,
        "depthwise": dw,
        "pointwise": pw,
        "separable": dw + pw,
        "ratio": (dw + pw) / standard,
    }


def build(
    input_size=DEFAULT_INPUT,
    kernel_size: int = 3,
    channels_in: int = 100,
    channels_out: int = 1000,
    variant: str = "both",
):
    """Build the comparison. Input (batch, S, S, C); outputs (batch, S, S, M) per branch.

    Args:
        input_size: S or (H, W) of the feature map (14, a MobileNet stage, by default).
        kernel_size: K.
        channels_in: C.
        channels_out: M.
        variant: ``both`` (two outputs), ``standard`` or ``separable``.
    """
    if variant not in VARIANTS:
        raise EdgekitError(f"dsconv: unknown variant {variant!r}", f"use {', '.join(VARIANTS)}")
    kernel_size, channels_in, channels_out = int(kernel_size), int(channels_in), int(channels_out)
    if min(kernel_size, channels_in, channels_out) < 1:
        raise EdgekitError("dsconv: kernel_size, channels_in, channels_out must be positive")
    k = keras()
    layers = k.layers
    inp = image_input(input_size, channels=channels_in, name="features")
    outputs = []
    if variant in ("both", "standard"):
        std = layers.Conv2D(
            channels_out, kernel_size, padding="same", use_bias=False, name="standard_conv"
        )(inp)
        outputs.append(std)
    if variant in ("both", "separable"):
        dw = layers.DepthwiseConv2D(
            kernel_size, padding="same", use_bias=False, name="depthwise_conv"
        )(inp)
        pw = layers.Conv2D(channels_out, 1, use_bias=False, name="pointwise_conv")(dw)
        outputs.append(pw)
    return k.Model(inp, outputs if len(outputs) > 1 else outputs[0], name=f"dsconv_k{kernel_size}")
