"""Predict which ops of an int8 ``.tflite`` the Edge TPU compiler will map, before compiling.

Rules (Coral, "TensorFlow models on the Edge TPU", for compiler v16):

* every tensor int8/uint8 (constant int32 biases and shape/axis arguments are parameters, fine);
* static shapes (no -1 in a tensor's shape signature);
* tensors of rank <= 3, or only the 3 innermost dimensions larger than 1;
* the op is in Coral's supported-operations table and meets its listed limitation;
* the compiler makes ONE Edge TPU segment from the start of the graph: at the first op it cannot
  map, that op and every op after it in graph order run on the CPU.

The prediction is explainable: every op gets the reason shown to users. What the real compiler
does beyond the documented rules (a Reshape or Resize kept on the CPU "for precision", op versions
newer than it knows) cannot be predicted here; the compile report is the final word.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable, Optional

from edgekit.tflite import EDGETPU_CUSTOM_OP, ModelInfo, OpInfo, TensorInfo

MAPPED = "Mapped to Edge TPU"
AFTER_FIRST_UNMAPPED = "after the first unmapped op"
_QUANT_DTYPES = ("int8", "uint8")
_FLOAT = ("float32", "float16", "float64", "bfloat16")


@dataclass(frozen=True)
class OpMapping:
    """One op of the main subgraph: ``index`` in graph order, ``op`` name, where it runs, why."""

    index: int
    op: str
    on_tpu: bool
    reason: str

    def to_dict(self) -> dict:
        return {"index": self.index, "op": self.op, "on_tpu": self.on_tpu, "reason": self.reason}


@dataclass(frozen=True)
class MappingPrediction:
    tpu_ops: int
    cpu_ops: int
    ops: tuple[OpMapping, ...]

    @property
    def fully_mapped(self) -> bool:
        return self.cpu_ops == 0

    @property
    def first_unmapped(self) -> OpMapping | None:
        return next((o for o in self.ops if not o.on_tpu), None)

    def to_dict(self) -> dict:
        return {
            "tpu_ops": self.tpu_ops,
            "cpu_ops": self.cpu_ops,
            "ops": [o.to_dict() for o in self.ops],
        }


def predict(model: ModelInfo) -> MappingPrediction:
    """Predict the Edge TPU mapping of ``model``'s main subgraph, op by op.

    For a model already compiled by ``edgetpu_compiler`` this reports what the compiler did:
    the ``edgetpu-custom-op`` runs on the TPU, every other op was left on the CPU.
    """
    ops = model.main.operators
    if model.is_edgetpu_compiled:
        result = [
            OpMapping(op.index, op.opcode, True, "compiled into the Edge TPU custom op")
            if op.opcode == EDGETPU_CUSTOM_OP
            else OpMapping(op.index, op.opcode, False, "left on the CPU by edgetpu_compiler")
            for op in ops
        ]
    else:
        result, first = [], None
        graph_inputs = set(model.main.inputs)
        for op in ops:
            problem = _problem(op, model)
            at_input = _float_input_quantize(op, model, graph_inputs)
            if problem is not None and first is None and at_input:
                # The QUANTIZE of a float graph input runs on the CPU *before* the Edge TPU
                # segment, which starts after it: compiled float-I/O MobileNets keep that
                # QUANTIZE on the CPU and map every op after it.
                result.append(OpMapping(op.index, op.opcode, False, f"{problem}; {_AT_INPUT}"))
                continue
            if first is None and problem is not None:
                first = op
            if problem is not None:
                result.append(OpMapping(op.index, op.opcode, False, problem))
            elif first is not None:
                reason = f"{AFTER_FIRST_UNMAPPED} (#{first.index} {first.opcode}): runs on the CPU"
                result.append(OpMapping(op.index, op.opcode, False, reason))
            else:
                result.append(OpMapping(op.index, op.opcode, True, _mapped_reason(op)))
    tpu = sum(o.on_tpu for o in result)
    return MappingPrediction(tpu, len(result) - tpu, tuple(result))


_AT_INPUT = "at the graph input: runs on the CPU before the Edge TPU segment"


def _float_input_quantize(op: OpInfo, model: ModelInfo, graph_inputs: set[int]) -> bool:
    """Whether ``op`` is a QUANTIZE of a float graph input (float32 -> int8)."""
    if op.opcode != "QUANTIZE" or not op.inputs:
        return False
    return op.inputs[0] in graph_inputs and model.main.tensors[op.inputs[0]].dtype in _FLOAT


def _mapped_reason(op: OpInfo) -> str:
    caveat = _CAVEATS.get(op.opcode)
    return f"{MAPPED} (the compiler may still keep it on the CPU: {caveat})" if caveat else MAPPED


def _problem(op: OpInfo, model: ModelInfo) -> str | None:
    """Why ``op`` cannot be mapped, or None if nothing documented stops it."""
    if op.is_custom:
        return f"custom op '{op.opcode}' is not supported by the Edge TPU"
    if op.opcode not in _SUPPORTED:
        return f"{op.opcode} is not supported by the Edge TPU (not in Coral's operations table)"
    tensors = [model.main.tensors[i] for i in (*op.inputs, *op.outputs) if i >= 0]
    if op.opcode in ("QUANTIZE", "DEQUANTIZE") and any(t.dtype in _FLOAT for t in tensors):
        return (
            f"{op.opcode} to or from float: the Edge TPU only requantizes between int8 and uint8 "
            "(give the model integer input/output, e.g. edgekit convert --io uint8)"
        )
    for t in tensors:
        # Constant int32 inputs are biases (accumulated in 32 bits) or shape/axis arguments.
        if t.dtype not in _QUANT_DTYPES and not (t.is_constant and t.dtype == "int32"):
            return (
                f"unsupported data type: tensor '{t.name}' is {t.dtype} "
                "(the Edge TPU runs int8/uint8 only: use full-integer quantization)"
            )
    for t in tensors:
        if t.is_dynamic:
            return (
                f"dynamic shape: tensor '{t.name}' has shape signature {list(t.shape_signature)} "
                "(convert a batch-1 model with static shapes)"
            )
    for t in tensors:
        if not t.is_constant and len(t.shape) > 3 and any(d > 1 for d in t.shape[:-3]):
            return (
                f"unsupported rank: tensor '{t.name}' has shape {list(t.shape)}; only the 3 "
                "innermost dimensions may be larger than 1"
            )
    check = _SUPPORTED[op.opcode]
    try:
        limit = check(op, model) if check else None
    except IndexError:  # fewer inputs/outputs than the op type has: a malformed graph
        limit = f"unexpected inputs/outputs {list(op.inputs)} -> {list(op.outputs)}"
    return f"limitation of {op.opcode}: {limit}" if limit else None


# ---- per-op limitations from Coral's table ---------------------------------------------------


def _tensor(model: ModelInfo, op: OpInfo, k: int, outputs: bool = False) -> TensorInfo:
    i = (op.outputs if outputs else op.inputs)[k]
    if i < 0:
        raise IndexError(f"optional tensor {k} omitted")
    return model.main.tensors[i]


def _const_ints(model: ModelInfo, t: TensorInfo) -> tuple[int, ...] | None:
    """Values of a constant int32 tensor (axes, paddings, strides), None when not constant."""
    if not t.is_constant or t.dtype != "int32":
        return None
    raw = model.buffer_bytes(t.buffer)
    return struct.unpack(f"<{len(raw) // 4}i", raw[: len(raw) // 4 * 4])


def _axes(model: ModelInfo, op: OpInfo, k: int, rank: int) -> tuple[int, ...] | None:
    vals = _const_ints(model, _tensor(model, op, k))
    return None if vals is None else tuple(sorted({a % rank for a in vals})) if rank else ()


def _no_fused_activation(op: OpInfo, model: ModelInfo) -> str | None:
    act = op.options.get("fused_activation_function", "NONE")
    if act != "NONE":
        return f"no fused activation function allowed (has {act})"
    if op.opcode == "CONCATENATION":
        consts = [model.main.tensors[i] for i in op.inputs if model.main.tensors[i].is_constant]
        if consts and (
            len(op.inputs) != 2 or any(model.buffer_bytes(t.buffer).strip(b"\0") for t in consts)
        ):
            return "a constant input is only allowed as one of 2 inputs and all zeros (a zero pad)"
    return None


def _same_dilation(op: OpInfo, model: ModelInfo) -> str | None:
    w, h = op.options.get("dilation_w_factor", 1), op.options.get("dilation_h_factor", 1)
    return None if w == h else f"x and y dilation must be equal (has {w} and {h})"


def _fully_connected(op: OpInfo, model: ModelInfo) -> str | None:
    fmt = op.options.get("weights_format", "DEFAULT")
    if fmt != "DEFAULT":
        return f"only the default weights format is supported (has {fmt})"
    out = _tensor(model, op, 0, outputs=True).shape
    if len(out) > 2 or any(d > 1 for d in out[:-1]):
        return f"the output must be one-dimensional (batch 1, units); has shape {list(out)}"
    return None


def _xy_only(op: OpInfo, model: ModelInfo) -> str | None:
    """MEAN reduces / PAD pads only along y and x (the 2nd and 3rd innermost dims)."""
    shape = _tensor(model, op, 0).shape
    rank = len(shape)
    xy = {rank - 3, rank - 2} if rank >= 3 else set()
    if op.opcode == "MEAN":
        axes = _axes(model, op, 1, rank)
        if axes is None:
            return "the reduction axes must be constant"
        bad = [a for a in axes if a not in xy]
        return f"reduction along x and/or y only (reduces axes {list(axes)})" if bad else None
    pads = _const_ints(model, _tensor(model, op, 1))
    if pads is None:
        return "the paddings must be constant"
    padded = [a for a in range(len(pads) // 2) if pads[2 * a] or pads[2 * a + 1]]
    bad = [a for a in padded if a not in xy]
    return f"padding along x and/or y only (pads axes {padded})" if bad else None


def _no_batch_axis(op: OpInfo, model: ModelInfo) -> str | None:
    """SUM/REDUCE_MAX/REDUCE_MIN/SPLIT/PACK/TRANSPOSE may not work on the batch dimension."""
    if op.opcode == "PACK":
        return "no packing in the batch dimension" if op.options.get("axis", 0) == 0 else None
    if op.opcode == "SPLIT":  # inputs: axis, value
        rank = len(_tensor(model, op, 1).shape)
        axes = _axes(model, op, 0, rank)
    elif op.opcode == "TRANSPOSE":
        perm = _const_ints(model, _tensor(model, op, 1))
        if perm is None:
            return "the permutation must be constant"
        return "no transposing of the batch dimension" if perm and perm[0] != 0 else None
    else:
        rank = len(_tensor(model, op, 0).shape)
        axes = _axes(model, op, 1, rank)
    if axes is None:
        return "the axis must be constant"
    return "cannot operate on the batch dimension" if rank == 4 and 0 in axes else None


def _softmax(op: OpInfo, model: ModelInfo) -> str | None:
    t = _tensor(model, op, 0)
    if sum(d > 1 for d in t.shape) > 1 or t.num_elements > 16_000:
        return f"1-D input of at most 16,000 elements only (has shape {list(t.shape)})"
    return None


def _squeeze(op: OpInfo, model: ModelInfo) -> str | None:
    shape = _tensor(model, op, 0).shape
    dims = {d % len(shape) for d in op.options.get("squeeze_dims", ())} if shape else set()
    dims = dims or {i for i, d in enumerate(shape) if d == 1}
    first_big = next((i for i, d in enumerate(shape) if d > 1), len(shape))
    if any(d > first_big for d in dims):
        return f"only leading 1s can be squeezed (no relayout); input shape {list(shape)}"
    return None


def _strided_slice(op: OpInfo, model: ModelInfo) -> str | None:
    strides = _const_ints(model, _tensor(model, op, 3)) if len(op.inputs) > 3 else None
    if strides is None or any(s != 1 for s in strides):
        return "all strides must be 1"
    if op.options.get("ellipsis_mask") or op.options.get("new_axis_mask"):
        return "ellipsis and new-axis masks must be 0"
    return None


_Check = Optional[Callable[[OpInfo, ModelInfo], Optional[str]]]
_SUPPORTED: dict[str, _Check] = {
    **dict.fromkeys(
        (
            "ADD",
            "SUB",
            "MUL",
            "MAXIMUM",
            "MINIMUM",
            "LOGISTIC",
            "RELU",
            "RELU6",
            "RELU_N1_TO_1",
            "TANH",
            "L2_NORMALIZATION",
            "RESHAPE",
            "EXPAND_DIMS",
            "SLICE",
            "SPACE_TO_DEPTH",
            "QUANTIZE",
            "RSQRT",
            "SQUARED_DIFFERENCE",
            "PRELU",
            "TRANSPOSE_CONV",
            "RESIZE_BILINEAR",
            "RESIZE_NEAREST_NEIGHBOR",
            "LSTM",
            "UNIDIRECTIONAL_SEQUENCE_LSTM",
        )  # fmt: skip
    ),
    "AVERAGE_POOL_2D": _no_fused_activation,
    "MAX_POOL_2D": _no_fused_activation,
    "CONCATENATION": _no_fused_activation,
    "CONV_2D": _same_dilation,
    "DEPTHWISE_CONV_2D": _same_dilation,
    "FULLY_CONNECTED": _fully_connected,
    "MEAN": _xy_only,
    "PAD": _xy_only,
    "SUM": _no_batch_axis,
    "REDUCE_MAX": _no_batch_axis,
    "REDUCE_MIN": _no_batch_axis,
    "SPLIT": _no_batch_axis,
    "PACK": _no_batch_axis,
    "TRANSPOSE": _no_batch_axis,
    "SOFTMAX": _softmax,
    "SQUEEZE": _squeeze,
    "STRIDED_SLICE": _strided_slice,
}

# Documented cases where the compiler may decline an otherwise supported op.
_CAVEATS = {
    "RESIZE_BILINEAR": "depending on sizes it avoids a loss of precision",
    "RESIZE_NEAREST_NEIGHBOR": "depending on sizes it avoids a loss of precision",
}
