"""What ``edgetpu_compiler`` 16 accepts, op by op: data plus small checks, no TensorFlow.

:func:`judge` says why one op of an int8 ``.tflite`` cannot be mapped on its own (its type,
version, data types, rank, options, sizes), in the compiler's own status words, with a detail
line and a fix; partitioning (an op that could map but sits behind a CPU op) is
:mod:`edgekit.mapping`'s business. Every rule and its evidence is listed in docs/DESIGN.md
("Edge TPU mapping rules"); the numbers here come from the compiled pairs in
``../shared/data`` (Google's and third parties', with compiler 16 logs) and Coral's
"TensorFlow models on the Edge TPU" operations table.

Tensor layout: the Edge TPU holds a tensor as its 3 innermost dimensions ``(y, x, z)``
(``z`` = channels); outer dimensions must be 1. A "row" is ``x * z`` elements (bytes at int8).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable, Optional

from edgekit.tflite import FLOAT_DTYPES, ModelInfo, OpInfo, TensorInfo

# ---- the compiler's status strings (its log's "Status" column) --------------------------------
MAPPED = "Mapped to Edge TPU"
NOT_SUPPORTED = "Operation not supported"
UNSPECIFIED = "Operation is otherwise supported, but not mapped due to some unspecified limitation"
SUBGRAPH = "More than one subgraph is not supported"
VERSION = "Operation version not supported"
DTYPE = "Operation is working on an unsupported data type"
RANK = "Tensor has unsupported rank (up to 3 innermost dimensions mapped)"
STATUSES = (MAPPED, NOT_SUPPORTED, UNSPECIFIED, SUBGRAPH, VERSION, DTYPE, RANK)

_QUANT = ("int8", "uint8")
_CONVERT_HINT = "convert with full-integer quantization (edgekit convert does)"

# Largest row (x * z bytes) of any tensor the compiler maps. Evidence (yolo pairs): rows of
# 230,400 B mapped (v8 RESHAPE to [1,144,1600]); 537,600 B and more never (v8 [1,64,8400]
# slices, LOGISTIC/QUANTIZE/CONCATENATION on [1,80..144,8400], v5 [1,25200,85]).
MAX_ROW_BYTES = 256 * 1024
# A RESHAPE that changes the (y, x, z) layout maps only while every dimension stays within
# this size. Evidence: [1,16,20,36] -> [1,2880,4] (retinanet) and [1,40,40,255] ->
# [1,1600,3,85] (yolov5) mapped; reshapes producing or reading 4,800, 6,400 and 8,400 did not.
MAX_RELAYOUT_DIM = 4096
# TRANSPOSE maps up to this many elements. Evidence (yolov8): [1,20,20,144] (57,600) mapped,
# [1,40,40,144] (230,400) and larger did not.
MAX_TRANSPOSE_ELEMENTS = 1 << 17
# Coral's table: SOFTMAX over at most 16,000 elements; the yolov8 pair shows a softmax over the
# innermost 16 of a [1,4,8400,16] tensor is otherwise accepted, so the limit is on that axis.
MAX_SOFTMAX_DEPTH = 16_000


@dataclass(frozen=True)
class Verdict:
    """Why one op cannot be mapped: ``status`` in the compiler's words, ``reason`` with the
    numbers, ``fix`` what to change (None when there is nothing to say)."""

    status: str
    reason: str
    fix: str | None = None


# ---- op versions ------------------------------------------------------------------------------
# Highest version of each op that compiler 16 is known to map (seen mapped in a compiled twin), and
# the lowest version reported refused with "Operation version not supported". A version between
# the two is not refused (unverified); ops absent here have no version evidence.
MAPPED_VERSION = {
    "ADD": 2, "AVERAGE_POOL_2D": 1, "CONCATENATION": 2, "CONV_2D": 3, "DEPTHWISE_CONV_2D": 3,
    "FULLY_CONNECTED": 4, "LOGISTIC": 2, "MAX_POOL_2D": 2, "MUL": 2, "PAD": 2, "QUANTIZE": 1,
    "RELU": 2, "RESHAPE": 1, "RESIZE_BILINEAR": 3, "RESIZE_NEAREST_NEIGHBOR": 3, "SOFTMAX": 2,
    "SPLIT": 1, "STRIDED_SLICE": 2, "SUB": 2, "TILE": 1, "TRANSPOSE": 2,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": 1,
}  # fmt: skip
# op -> (lowest refused version, what that version means in TFLite's op_version.cc, the fix)
REFUSED_VERSION = {
    "CONV_2D": (6, "grouped convolution (Conv2D groups > 1)",
                "use groups=1, or split the input and CONCATENATION per-group convolutions"),
    "FULLY_CONNECTED": (9, "hybrid FULLY_CONNECTED with asymmetrically quantized inputs",
                        "quantize every tensor to int8 (full-integer post-training quantization)"),
    "TRANSPOSE_CONV": (4, "TRANSPOSE_CONV with a fused activation (newer converters fuse it)",
                       "keep the activation out of the fusion (e.g. a separate ReLU layer "
                       "after a layer the converter cannot fuse into), or convert with an older "
                       "TensorFlow that does not fuse it"),
    "EXP": (2, "int8 EXP", "EXP is not an Edge TPU op in any version: compute it on the CPU"),
}  # fmt: skip


def version_verdict(op: OpInfo) -> Verdict | None:
    refused = REFUSED_VERSION.get(op.opcode)
    if refused is None or op.version < refused[0]:
        return None
    return Verdict(
        VERSION,
        f"{op.opcode} v{op.version}: {refused[1]}; compiler 16 maps up to v{refused[0] - 1}",
        refused[2],
    )


# ---- tensors -----------------------------------------------------------------------------------


def yxz(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """The 3 innermost dimensions (y, x, z) of a shape, padded with leading 1s."""
    s = (1, 1, 1, *shape)[-3:]
    return s[0], s[1], s[2]


def _activations(op: OpInfo, model: ModelInfo) -> list[TensorInfo]:
    """Non-constant input/output tensors of ``op`` (what flows through the Edge TPU)."""
    ts = model.main.tensors
    return [ts[i] for i in (*op.inputs, *op.outputs) if i >= 0 and not ts[i].is_constant]


def _const_ints(model: ModelInfo, t: TensorInfo) -> tuple[int, ...] | None:
    """Values of a constant int32 tensor (axes, paddings, strides), None when not constant."""
    if not t.is_constant or t.dtype != "int32":
        return None
    raw = model.buffer_bytes(t.buffer)
    return struct.unpack(f"<{len(raw) // 4}i", raw[: len(raw) // 4 * 4])


def _input(model: ModelInfo, op: OpInfo, k: int) -> TensorInfo:
    i = op.inputs[k]
    if i < 0:
        raise IndexError(f"optional input {k} omitted")
    return model.main.tensors[i]


def _output(model: ModelInfo, op: OpInfo, k: int = 0) -> TensorInfo:
    i = op.outputs[k]
    if i < 0:
        raise IndexError(f"output {k} omitted")
    return model.main.tensors[i]


# ---- the verdict for one op --------------------------------------------------------------------


def judge(op: OpInfo, model: ModelInfo, graph_inputs: frozenset[int]) -> Verdict | None:
    """Why ``op`` cannot be mapped on its own, or None when nothing stops it.

    Check order follows the compiler's logs: data types first (a custom op on float tensors
    and DEQUANTIZE report "unsupported data type"), then the op type, version, rank and the
    per-op limitations ("otherwise supported ... unspecified limitation").
    """
    try:
        return _judge(op, model, graph_inputs)
    except IndexError:  # fewer inputs/outputs than the op type has: a malformed graph
        return Verdict(
            UNSPECIFIED,
            f"unexpected inputs/outputs {list(op.inputs)} -> {list(op.outputs)}",
        )


def _judge(op: OpInfo, model: ModelInfo, graph_inputs: frozenset[int]) -> Verdict | None:
    ts = model.main.tensors
    if op.opcode == "QUANTIZE" and op.inputs and op.inputs[0] >= 0:
        src = ts[op.inputs[0]]
        if src.dtype in FLOAT_DTYPES:
            # mnist4-floatio (compiler 15) and movenet: the float->int8 QUANTIZE of the input
            # stays on the CPU with this status, the body behind it maps.
            where = "the float model input" if op.inputs[0] in graph_inputs else "a float tensor"
            return Verdict(
                UNSPECIFIED,
                f"QUANTIZE of {where} '{src.name}' ({src.dtype} -> int8) runs on the CPU",
                "give the model integer input (edgekit convert --io uint8 or int8)",
            )
    bad = _dtype_problem(op, model)
    if bad is not None:
        return bad
    if op.is_custom:
        return Verdict(
            NOT_SUPPORTED,
            f"custom op '{op.opcode}' runs on the CPU (the Edge TPU runs builtin ops only)",
            "keep it as CPU post-processing at the end of the graph",
        )
    if op.opcode not in SUPPORTED:
        return Verdict(
            NOT_SUPPORTED,
            f"{op.opcode} is not an Edge TPU operation (not in Coral's operations table)",
            _REPLACE.get(op.opcode, "replace it with supported ops, or move it after the model"),
        )
    v = version_verdict(op)
    if v is not None:
        return v
    for t in _activations(op, model):
        if len(t.shape) > 3 and any(d > 1 for d in t.shape[:-3]):
            return Verdict(
                RANK,
                f"tensor '{t.name}' has shape {list(t.shape)}: only the 3 innermost "
                "dimensions may be larger than 1",
                "fold the extra dimension into y, x or channels (reshape to rank <= 3)",
            )
        if any(d <= 0 for d in t.shape):
            return Verdict(
                UNSPECIFIED,
                f"tensor '{t.name}' has no static shape ({list(t.shape)})",
                "convert a batch-1 model with static shapes",
            )
    row = max((yxz(t.shape)[1] * yxz(t.shape)[2] for t in _activations(op, model)), default=0)
    if row > MAX_ROW_BYTES:
        return Verdict(
            UNSPECIFIED,
            f"a row of {row:,} elements (x * channels of the 3 innermost dimensions) is "
            f"larger than the {MAX_ROW_BYTES:,} the compiler maps",
            "keep this post-processing on the CPU, or split the tensor (e.g. per output "
            "scale) before it grows that wide",
        )
    check = SUPPORTED[op.opcode]
    return check(op, model) if check else None


def _dtype_problem(op: OpInfo, model: ModelInfo) -> Verdict | None:
    ts = model.main.tensors
    lstm = "LSTM" in op.opcode
    for i in (*op.inputs, *op.outputs):
        if i < 0:
            continue
        t = ts[i]
        if t.dtype in _QUANT:
            continue
        if t.is_constant and t.dtype == "int32":
            continue  # biases (accumulated in 32 bits) and shape/axis arguments
        if lstm and t.dtype == "int16":
            continue  # the int16 cell state of an integer LSTM (keras_lstm_mnist maps fully)
        if t.dtype in FLOAT_DTYPES:
            fix = _CONVERT_HINT
        elif op.opcode == "SHAPE" or model.dynamic_tensors():
            # A -1 batch makes the converter compute shapes at run time (SHAPE, STRIDED_SLICE,
            # PACK on int32 feeding a RESHAPE); the compiler itself compiles the static shape.
            fix = "convert a batch-1 model (a -1 batch adds int32 shape arithmetic)"
        else:
            fix = "keep it at the model's end (CPU post-processing), or compute it in int8"
        return Verdict(
            DTYPE, f"tensor '{t.name}' is {t.dtype}; the Edge TPU computes on int8/uint8 only", fix
        )
    return None


# ---- per-op limitations (Coral's table, refined by the compiled pairs) ------------------------


def _unspecified(reason: str, fix: str | None = None) -> Verdict:
    return Verdict(UNSPECIFIED, reason, fix)


def _no_fused_activation(op: OpInfo, model: ModelInfo) -> Verdict | None:
    act = op.options.get("fused_activation_function", "NONE")
    if act != "NONE":
        return _unspecified(
            f"{op.opcode} with a fused {act} activation", "apply the activation separately"
        )
    if op.opcode == "CONCATENATION":
        consts = [model.main.tensors[i] for i in op.inputs if model.main.tensors[i].is_constant]
        if consts and (
            len(op.inputs) != 2 or any(model.buffer_bytes(t.buffer).strip(b"\0") for t in consts)
        ):
            return _unspecified(
                "a constant CONCATENATION input is only allowed as one of 2 inputs, all zeros",
                "concatenate only computed tensors (use PAD for zero padding)",
            )
    return None


def _same_dilation(op: OpInfo, model: ModelInfo) -> Verdict | None:
    w, h = op.options.get("dilation_w_factor", 1), op.options.get("dilation_h_factor", 1)
    if w != h:
        return _unspecified(f"x and y dilation differ ({w} and {h})", "use equal dilations")
    return None


def _fully_connected(op: OpInfo, model: ModelInfo) -> Verdict | None:
    fmt = op.options.get("weights_format", "DEFAULT")
    if fmt != "DEFAULT":
        return _unspecified(f"weights format {fmt} (only DEFAULT maps)")
    out = _output(model, op).shape
    if len(out) > 2 or any(d > 1 for d in out[:-1]):
        return _unspecified(
            f"output shape {list(out)}: FULLY_CONNECTED output must be 1-D (batch 1, units)",
            "flatten before the Dense layer, or use a 1x1 CONV_2D on the 3-D tensor",
        )
    return None


def _mean(op: OpInfo, model: ModelInfo) -> Verdict | None:
    shape = _input(model, op, 0).shape
    axes = _const_ints(model, _input(model, op, 1))
    if axes is None:
        return _unspecified("the reduction axes are not constant")
    rank = len(shape) or 1
    axes = tuple(sorted({a % rank for a in axes}))
    if rank == 4 and 0 in axes:
        return _unspecified("reduction over the batch dimension")
    if rank - 1 in axes and shape and shape[-1] % 4:
        return _unspecified(
            f"reduction over channels needs a multiple of 4 channels (has {shape[-1]})",
            "pad the channels to a multiple of 4",
        )
    return None


def _pad(op: OpInfo, model: ModelInfo) -> Verdict | None:
    pads = _const_ints(model, _input(model, op, 1))
    if pads is None:
        return _unspecified("the paddings are not constant")
    rank = len(pads) // 2
    if rank == 4 and (pads[0] or pads[1]):
        return _unspecified("padding in the batch dimension")
    return None


def _no_batch_axis(op: OpInfo, model: ModelInfo) -> Verdict | None:
    """SUM/REDUCE_MAX/REDUCE_MIN/SPLIT/PACK may not work on the batch dimension."""
    if op.opcode == "PACK":
        if op.options.get("axis", 0) == 0:
            return _unspecified("packing in the batch dimension")
        return None
    k_axis, k_data = (0, 1) if op.opcode == "SPLIT" else (1, 0)
    rank = len(_input(model, op, k_data).shape)
    vals = _const_ints(model, _input(model, op, k_axis))
    if vals is None:
        return _unspecified("the axis is not constant")
    if rank == 4 and 0 in {a % rank for a in vals}:
        return _unspecified(f"{op.opcode} over the batch dimension")
    return None


def _transpose(op: OpInfo, model: ModelInfo) -> Verdict | None:
    perm = _const_ints(model, _input(model, op, 1))
    if perm is None:
        return _unspecified("the permutation is not constant")
    if len(perm) == 4 and perm[0] != 0:
        return _unspecified("transposing the batch dimension")
    n = _input(model, op, 0).num_elements
    if n > MAX_TRANSPOSE_ELEMENTS:
        return _unspecified(
            f"TRANSPOSE of {n:,} elements (the compiler maps up to about "
            f"{MAX_TRANSPOSE_ELEMENTS:,})",
            "transpose after the model on the CPU, or keep channels last",
        )
    return None


def _softmax(op: OpInfo, model: ModelInfo) -> Verdict | None:
    depth = yxz(_input(model, op, 0).shape)[2]
    if depth > MAX_SOFTMAX_DEPTH:
        return _unspecified(f"SOFTMAX over {depth:,} values (at most {MAX_SOFTMAX_DEPTH:,})")
    return None


def _squeeze(op: OpInfo, model: ModelInfo) -> Verdict | None:
    shape = _input(model, op, 0).shape
    dims = {d % len(shape) for d in op.options.get("squeeze_dims", ())} if shape else set()
    dims = dims or {i for i, d in enumerate(shape) if d == 1}
    first_big = next((i for i, d in enumerate(shape) if d > 1), len(shape))
    if any(d > first_big for d in dims):
        return _unspecified(f"SQUEEZE that moves data (input shape {list(shape)})")
    return None


def _strided_slice(op: OpInfo, model: ModelInfo) -> Verdict | None:
    strides = _const_ints(model, _input(model, op, 3)) if len(op.inputs) > 3 else None
    if strides is None or any(s != 1 for s in strides):
        return _unspecified("STRIDED_SLICE with strides other than 1")
    if op.options.get("ellipsis_mask") or op.options.get("new_axis_mask"):
        return _unspecified("STRIDED_SLICE with an ellipsis or new-axis mask")
    return None


def _reshape(op: OpInfo, model: ModelInfo) -> Verdict | None:
    src, dst = _input(model, op, 0).shape, _output(model, op).shape
    if _squeezed(src) == _squeezed(dst):
        return None  # only leading 1s change: no data moves
    big = max((*src, *dst), default=0)
    if big > MAX_RELAYOUT_DIM:
        return _unspecified(
            f"RESHAPE {list(src)} -> {list(dst)} rearranges a dimension of {big:,} (the "
            f"compiler maps such reshapes up to about {MAX_RELAYOUT_DIM:,})",
            "keep large reshapes of detection heads on the CPU (after the model), or reshape "
            "per output scale",
        )
    return None


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    i = 0
    while i < len(shape) - 1 and shape[i] == 1:
        i += 1
    return tuple(shape[i:])


def _resize_bilinear(op: OpInfo, model: ModelInfo) -> Verdict | None:
    """Maps when each spatial size is unchanged or scaled by a power of two.

    Evidence: 33->33 (cityscapes, align_corners) and 6->12->24->48 (movenet, half-pixel
    centers) mapped; 33->513 (both deeplabs and cityscapes) and 1->33 (pascal deeplabs) did
    not. Coral: "may not be mapped to avoid loss in precision": with a power-of-two factor the
    interpolation weights are exact binary fractions.
    """
    (h0, w0, _), (h1, w1, _) = yxz(_input(model, op, 0).shape), yxz(_output(model, op).shape)
    for a, b in ((h0, h1), (w0, w1)):
        if not _power_of_two_ratio(a, b):
            return _unspecified(
                f"RESIZE_BILINEAR {h0}x{w0} -> {h1}x{w1}: the compiler keeps bilinear "
                "resizes that are not a power-of-two scale on the CPU (precision)",
                f"resize by a power of two (e.g. {h0}x{w0} -> {h0 * 2}x{w0 * 2}), or resize "
                "the final output on the CPU",
            )
    return None


def _power_of_two_ratio(a: int, b: int) -> bool:
    lo, hi = min(a, b), max(a, b)
    if lo <= 0 or hi % lo:
        return False
    r = hi // lo
    return r & (r - 1) == 0


_Check = Optional[Callable[[OpInfo, ModelInfo], Optional[Verdict]]]
SUPPORTED: dict[str, _Check] = {
    **dict.fromkeys(
        (
            "ADD", "SUB", "MUL", "MAXIMUM", "MINIMUM", "LOGISTIC", "RELU", "RELU6",
            "RELU_N1_TO_1", "TANH", "L2_NORMALIZATION", "EXPAND_DIMS", "SLICE",
            "SPACE_TO_DEPTH", "QUANTIZE", "RSQRT", "SQUARED_DIFFERENCE", "PRELU",
            "TRANSPOSE_CONV", "RESIZE_NEAREST_NEIGHBOR", "LSTM", "UNIDIRECTIONAL_SEQUENCE_LSTM",
            "TILE",  # not in Coral's table, but mapped in the cityscapes deeplab twin
        )
    ),
    "AVERAGE_POOL_2D": _no_fused_activation,
    "MAX_POOL_2D": _no_fused_activation,
    "CONCATENATION": _no_fused_activation,
    "CONV_2D": _same_dilation,
    "DEPTHWISE_CONV_2D": _same_dilation,
    "FULLY_CONNECTED": _fully_connected,
    "MEAN": _mean,
    "PAD": _pad,
    "SUM": _no_batch_axis,
    "REDUCE_MAX": _no_batch_axis,
    "REDUCE_MIN": _no_batch_axis,
    "SPLIT": _no_batch_axis,
    "PACK": _no_batch_axis,
    "TRANSPOSE": _transpose,
    "SOFTMAX": _softmax,
    "SQUEEZE": _squeeze,
    "STRIDED_SLICE": _strided_slice,
    "RESHAPE": _reshape,
    "RESIZE_BILINEAR": _resize_bilinear,
}  # fmt: skip

# What to use instead of common ops the Edge TPU does not run.
_REPLACE = {
    "LEAKY_RELU": "use ReLU (or PReLU with shared_axes=[1, 2]) instead of LeakyReLU",
    "HARD_SWISH": "use ReLU6 (or x * ReLU6(x + 3) / 6 from MUL/ADD) instead of hard-swish",
    "ELU": "use ReLU instead of ELU",
    "GELU": "use ReLU instead of GELU",
    "DIV": "multiply by a constant reciprocal instead of dividing",
    "EXP": "compute it on the CPU after the model",
    "ARG_MAX": "take the argmax on the CPU after the model (output the scores)",
    "BATCH_MATMUL": "use FULLY_CONNECTED / 1x1 CONV_2D with constant weights",
    "DEQUANTIZE": "give the model integer output (edgekit convert --io uint8 or int8)",
    "CAST": "feed the model the dtype its first layer expects (no Cast layer)",
    "GATHER": "slice with STRIDED_SLICE/SLICE, or gather on the CPU after the model",
    "GATHER_ND": "gather on the CPU after the model",
    "SQRT": "compute it on the CPU after the model",
}
