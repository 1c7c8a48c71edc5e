"""What ``edgetpu_compiler`` 16 accepts, op by op: data plus small checks, no TensorFlow.

:func:`judge` says why one op of an int8 ``.tflite`` cannot be mapped on its own (its data types,
type, version, rank, then the per-op limits of :mod:`edgekit.edgetpu.limit_checks`), in the
compiler's own status words, with a detail line and a fix; partitioning (an op that could map but
sits behind a CPU op) is :mod:`edgekit.edgetpu.mapping`'s business. Every rule and its evidence is
listed in docs/DESIGN.md ("Edge TPU mapping rules").
"""

from __future__ import annotations

from edgekit.edgetpu.limit_checks import SUPPORTED
from edgekit.edgetpu.limits import (  # noqa: F401  (re-exported: the statuses and limits)
    DTYPE,
    MAPPED,
    MAX_CHANNEL_TRANSPOSE_ELEMENTS,
    MAX_RELAYOUT_ELEMENTS,
    MAX_ROW_BYTES,
    MAX_SOFTMAX_DEPTH,
    MAX_TRANSPOSE_ELEMENTS,
    NOT_SUPPORTED,
    PARSE,
    RANK,
    STATUSES,
    STRIDED,
    SUBGRAPH,
    UNSPECIFIED,
    VERSION,
    Verdict,
    activations,
    input_tensor,
    yxz,
)
from edgekit.tflite import FLOAT_DTYPES, ModelInfo, OpInfo

_QUANT = ("int8", "uint8")
_CONVERT_HINT = "convert with full-integer quantization (edgekit convert does)"

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


# Op versions the TFLite inside compiler 16 does not register: the compiler stops before mapping
# anything ("ERROR: Didn't find op for builtin opcode 'CONV_2D' version '6'. ... Registration
# failed. Invalid model: ... Model could not be parsed"), so no op runs on the Edge TPU. Reported
# with compiler 16.0.384591198 for CONV_2D v6 (google-coral/edgetpu#631), TRANSPOSE_CONV v4
# (#845), QUANTIZE v3 (#879) and EXP v2 (google-coral/libedgetpu#71). ADD v4 is read (and
# refused per op: yolov10n-192-edward's twin), FULLY_CONNECTED v9 has no parse report.
UNREADABLE_VERSION = {"CONV_2D": 6, "TRANSPOSE_CONV": 4, "QUANTIZE": 3, "EXP": 2}


def unreadable(op: OpInfo) -> str | None:
    """The compiler's error when it cannot read ``op``'s version at all, else None."""
    low = UNREADABLE_VERSION.get(op.opcode)
    if low is None or op.version < low:
        return None
    return f"Didn't find op for builtin opcode '{op.opcode}' version '{op.version}'"


def needs_version(op: OpInfo, model: ModelInfo) -> bool:
    """Whether ``op`` itself needs its op code's version (a grouped CONV_2D: filter input
    channels differ from the input's), not just carries it; True where that cannot be told."""
    if op.opcode != "CONV_2D":
        return True
    src, w = input_tensor(model, op, 0).shape, input_tensor(model, op, 1).shape
    return not (src and w) or src[-1] != w[-1]


def version_fix(op: OpInfo) -> tuple[str, str]:
    """(what ``op``'s refused version means, what to change), from REFUSED_VERSION."""
    meaning, fix = REFUSED_VERSION.get(op.opcode, (0, "", ""))[1:]
    return (meaning or f"{op.opcode} v{op.version}, newer than compiler 16's TFLite"), (
        fix or f"convert with a TensorFlow that writes {op.opcode} at an older version"
    )


# Highest version each op type can carry for int8/uint8 tensors (TFLite's op_version.cc,
# GetBuiltinOperatorVersion); higher versions exist only for other types (int16, int32, int64,
# bool, string, int4) or more than 4 dimensions. A .tflite holds ONE version per op type: the
# converter's UpdateOpVersion raises it to the highest any op of that type needs. So one int64
# ADD in a model's post-processing makes every int8 ADD "v4", and compiler 16 refuses them all
# ("Operation version not supported"; yolov10n-192-edward: ADD v4, 473 ops on the CPU).
INT8_MAX_VERSION = {
    "ADD": 2, "SUB": 3, "MUL": 3, "CONCATENATION": 2, "LOGISTIC": 2, "TANH": 2, "SOFTMAX": 2,
    "MEAN": 2, "REDUCE_MAX": 2, "REDUCE_MIN": 2, "RELU": 2, "RELU6": 2, "RSQRT": 2,
    "MAX_POOL_2D": 2, "AVERAGE_POOL_2D": 2, "PAD": 2, "TRANSPOSE": 2, "STRIDED_SLICE": 2,
    "SLICE": 2, "SPLIT": 2, "PACK": 2, "MAXIMUM": 3, "MINIMUM": 3, "QUANTIZE": 1,
    "RESIZE_BILINEAR": 3, "RESIZE_NEAREST_NEIGHBOR": 3, "CONV_2D": 3, "DEPTHWISE_CONV_2D": 3,
    "L2_NORMALIZATION": 2, "SQUEEZE": 1,
}  # fmt: skip


def version_note(op: OpInfo) -> str | None:
    """For an op that maps: a caveat when its version is newer than any seen mapped."""
    seen = MAPPED_VERSION.get(op.opcode)
    if seen is None or op.version <= seen:
        return None
    return f"v{op.version} is newer than any version seen mapped (v{seen}): unverified"


def version_verdict(op: OpInfo, model: ModelInfo | None = None) -> Verdict | None:
    refused = REFUSED_VERSION.get(op.opcode)
    if refused is not None and op.version >= refused[0]:
        return Verdict(
            VERSION,
            f"{op.opcode} v{op.version}: {refused[1]}; compiler 16 maps up to v{refused[0] - 1}",
            refused[2],
        )
    top = INT8_MAX_VERSION.get(op.opcode)
    if top is None or op.version <= top:
        return None
    culprit = _version_lifter(op, model) if model is not None else None
    why = (f"op #{culprit[0]} {op.opcode} works on {culprit[1]}" if culprit
           else "another op of this type works on a type other than int8")  # fmt: skip
    what = "5-D" if culprit and culprit[1].endswith("-D tensor") else "non-int8"
    return Verdict(
        VERSION,
        f"{op.opcode} v{op.version}: a .tflite gives every {op.opcode} one version, the "
        f"highest any of them needs, and {why}; compiler 16 maps {op.opcode} up to v{top}",
        f"keep the {what} {op.opcode} out of the model (do it on the CPU after it), then "
        f"every int8 one is back at v{top}",
    )


def _version_lifter(op: OpInfo, model: ModelInfo) -> tuple[int, str] | None:
    """The first op of ``op``'s type that needs a version an int8 4-D op does not: one whose
    first input is not int8/uint8 (index, dtype), else one on more than 4 dimensions
    (index, "a 5-D tensor")."""
    ts = model.main.tensors
    same = [o for o in model.main.operators if o.opcode == op.opcode]
    for other in same:
        t = next((ts[i] for i in other.inputs if i >= 0 and not ts[i].is_constant), None)
        if t is not None and t.dtype not in _QUANT:
            return other.index, t.dtype
    for other in same:
        t = next((ts[i] for i in other.inputs if i >= 0 and not ts[i].is_constant), None)
        if t is not None and len(t.shape) > 4:
            return other.index, f"a {len(t.shape)}-D tensor"
    return None


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
    if op.opcode == "TRANSPOSE" and len(input_tensor(model, op, 0).shape) > 4:
        # compiler 15 logs a 5-D TRANSPOSE (yolov5's detect head) "Operation not supported",
        # not its version (TFLite gives it v4) nor its rank (tetutaro/yolo_various_framework)
        return Verdict(
            NOT_SUPPORTED,
            f"TRANSPOSE of a {len(input_tensor(model, op, 0).shape)}-D tensor: the Edge TPU "
            "transposes up to 4 dimensions",
            "transpose in 4-D (fold the extra dimension into a neighbour first), or transpose "
            "on the CPU after the model",
        )
    v = version_verdict(op, model)
    if v is not None:
        return v
    for t in activations(op, model):
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
    row = max((yxz(t.shape)[1] * yxz(t.shape)[2] for t in activations(op, model)), default=0)
    if row > MAX_ROW_BYTES:
        return Verdict(
            UNSPECIFIED,
            f"a row of {row:,} elements (x * channels of the 3 innermost dimensions) is "
            f"larger than the {MAX_ROW_BYTES:,} the compiler maps",
            "keep this post-processing on the CPU, or split the tensor (e.g. per output "
            "scale) before it grows that wide",
            MAX_ROW_BYTES / row,
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
        if op.is_custom:
            fix = None  # a custom op runs on the CPU whatever its types
        elif op.opcode in ("DEQUANTIZE", "CAST"):
            fix = _REPLACE[op.opcode]
        elif t.dtype in FLOAT_DTYPES:
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


# What to use instead of common ops the Edge TPU does not run.
_REPLACE = {
    "LEAKY_RELU": "use ReLU or ReLU6 instead of LeakyReLU",
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
