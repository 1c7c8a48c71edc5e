"""The latency model's Keras front-end: :class:`~edgekit.edgetpu.latency_work.Work` of a design
before conversion, from ``edgekit.host.keras_stats`` rows, with the converter's folding of
BatchNormalization / ReLU layers (pure data in, no TensorFlow)."""

from __future__ import annotations

import math

from edgekit.edgetpu.latency_work import OpWork, Work, conv_work, dense_work, depthwise_work
from edgekit.edgetpu.latency_work import up_to_lanes as _up
from edgekit.edgetpu.memory import BLOB_BYTES_PER_CHANNEL

_KERAS_FREE = {  # layers the converter folds away or that cost nothing on the Edge TPU
    "BatchNormalization", "Dropout", "SpatialDropout2D", "GaussianNoise", "Activation",
    "ReLU", "Flatten", "Reshape", "InputLayer", "Rescaling", "Normalization", "Identity",
}  # fmt: skip
# What the TFLite converter (TF 2.21) folds a BatchNormalization / ReLU into: a BN right after
# a weighted layer becomes its weights and bias; anywhere else (after a Concatenate, an Add, a
# pool: DenseNet's and the ResNet V2s' pre-activation BN) it stays as MUL + ADD, the ReLU
# after it fused into the ADD. A ReLU after a Concatenate or a pool stays a RELU op. Checked on
# converted models (docs/DESIGN.md, "Latency model").
_FOLDS_BN = {"Conv1D", "Conv2D", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D",
             "SeparableConv2D", "Conv2DTranspose", "Dense"}  # fmt: skip
_FOLDS_RELU = _FOLDS_BN | {"BatchNormalization", "Add"}
_PER_CHANNEL = BLOB_BYTES_PER_CHANNEL


def _unfolded(kind: str, source: str | None) -> tuple[str, ...]:
    """The element-wise ops a BN / activation layer stays as, given the layer feeding it
    (unknown: assume it folds)."""
    if not source:
        return ()
    if kind == "BatchNormalization" and source not in _FOLDS_BN:
        return ("MUL", "ADD")
    if kind in ("ReLU", "Activation") and source not in _FOLDS_RELU:
        return ("RELU",)
    return ()


def work_from_keras_layers(layers: list[dict], input_shapes: list, output_shapes: list) -> Work:
    """:class:`Work` of a Keras design from ``edgekit.host.keras_stats`` rows (``type``,
    ``input_shape``, ``output_shape``, ``kernel``, ``groups``, ``depth_multiplier``), assuming
    every layer maps (convert and inspect the .tflite to know). Batch-1 shapes without batch."""
    ops: list[OpWork] = []
    params = blob = 0
    for r in layers:
        kind = r["type"]
        out = r.get("output_shape")
        if not out or isinstance(out[0], list):
            out = out[0] if out else []
        out = [d for d in out[1:]] if out and out[0] is None else list(out or [])
        inp = r.get("input_shape") or []
        elements = math.prod(d or 1 for d in out) if out else 0
        if kind in _KERAS_FREE:
            ops.extend(OpWork(op, True, 0, 0, elements)
                       for op in _unfolded(kind, r.get("input_from")))  # fmt: skip
            continue
        k = r.get("kernel")
        if kind in ("Conv2D", "Conv1D") and k and inp:
            hw, cin, cout = elements // max(out[-1], 1), inp[-1], out[-1]
            kh, kw = (k[0], k[1]) if len(k) > 1 else (k[0], 1)
            ops.append(conv_work("CONV_2D", hw, kh, kw, cin, cout, r.get("groups", 1)))
            params += _up(cout) * kh * kw * _up(cin // r.get("groups", 1)) + _up(cout) * 4
            blob += _up(cout) * (kh * kw * (cin // r.get("groups", 1)) + _PER_CHANNEL)
        elif kind in ("DepthwiseConv2D", "DepthwiseConv1D") and k and inp:
            ch = out[-1]
            kh, kw = (k[0], k[1]) if len(k) > 1 else (k[0], 1)
            ops.append(depthwise_work("DEPTHWISE_CONV_2D", elements // max(ch, 1), kh, kw, ch))
            params += kh * kw * _up(ch) + _up(ch) * 4
            blob += _up(ch) * (kh * kw + _PER_CHANNEL)
        elif kind in ("SeparableConv2D", "SeparableConv1D") and k and inp:
            mid = inp[-1] * r.get("depth_multiplier", 1)
            hw = elements // max(out[-1], 1)
            kh, kw = (k[0], k[1]) if len(k) > 1 else (k[0], 1)
            ops.append(depthwise_work("DEPTHWISE_CONV_2D", hw, kh, kw, mid))
            ops.append(conv_work("CONV_2D", hw, 1, 1, mid, out[-1]))
            params += kh * kw * _up(mid) + _up(mid) * 4 + _up(out[-1]) * _up(mid)
            params += _up(out[-1]) * 4
            blob += _up(mid) * (kh * kw + _PER_CHANNEL) + _up(out[-1]) * (mid + _PER_CHANNEL)
        elif kind == "Conv2DTranspose" and k and inp:
            hw = math.prod(d or 1 for d in inp[:-1])
            ops.append(conv_work("TRANSPOSE_CONV", hw, k[0], k[1], inp[-1], out[-1]))
            params += _up(out[-1]) * k[0] * k[1] * _up(inp[-1]) + _up(out[-1]) * 4
            blob += _up(out[-1]) * (k[0] * k[1] * inp[-1] + _PER_CHANNEL)
        elif kind == "Dense" and inp:
            rows = max(1, elements // max(out[-1], 1))
            ops.append(dense_work("FULLY_CONNECTED", inp[-1], out[-1], rows))
            params += _up(inp[-1]) * _up(out[-1]) + _up(out[-1]) * 4
            blob += _up(out[-1]) * (inp[-1] + _PER_CHANNEL)
        else:
            ops.append(OpWork(kind, True, 0, 0, elements))
    io_in = sum(math.prod(d or 1 for d in s) for s in input_shapes)
    io_out = sum(math.prod(d or 1 for d in s) for s in output_shapes)
    return Work(tuple(ops), params, io_in, io_out, "keras",
                ("Keras design: assumes every layer maps to the Edge TPU",), blob)  # fmt: skip
