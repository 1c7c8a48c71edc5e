"""One check per op type with a limitation in ``edgetpu_compiler`` 16 (Coral's operations table,
refined by what the compiled pairs in ``../shared/data`` show; evidence in docs/DESIGN.md, "Edge
TPU mapping rules"): :data:`SUPPORTED` maps each op the compiler may map to its check (None: no
limit known). A check returns a :class:`~edgekit.edgetpu.limits.Verdict` when the op cannot map.
:mod:`edgekit.edgetpu.ops` runs them after the data-type, op-type, version and rank checks.
"""

from __future__ import annotations

from typing import Callable, Optional

from edgekit.edgetpu.limits import (
    MAX_CHANNEL_TRANSPOSE_ELEMENTS,
    MAX_MEAN_POSITIONS,
    MAX_RELAYOUT_ELEMENTS,
    MAX_RESIZE_OUTPUT_ELEMENTS,
    MAX_SOFTMAX_DEPTH,
    MAX_TRANSPOSE_ELEMENTS,
    STRIDED,
    UNSPECIFIED,
    Verdict,
    const_ints,
    input_tensor,
    output_tensor,
    yxz,
)
from edgekit.tflite import ModelInfo, OpInfo


def _unspecified(reason: str, fix: str | None = None, shrink: float | None = None) -> Verdict:
    return Verdict(UNSPECIFIED, reason, fix, shrink)


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
    out = output_tensor(model, op).shape
    if len(out) > 2 or any(d > 1 for d in out[:-1]):
        return _unspecified(
            f"output shape {list(out)}: FULLY_CONNECTED output must be 1-D (batch 1, units)",
            "flatten before the Dense layer, or use a 1x1 CONV_2D on the 3-D tensor",
        )
    return None


def _mean(op: OpInfo, model: ModelInfo) -> Verdict | None:
    shape = input_tensor(model, op, 0).shape
    axes = const_ints(model, input_tensor(model, op, 1))
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
    positions = 1
    for a in axes:
        if a != rank - 1:
            positions *= shape[a]
    if positions > MAX_MEAN_POSITIONS:
        return _unspecified(
            f"MEAN over {positions:,} positions of {list(shape)} (the compiler maps means over "
            f"up to about {MAX_MEAN_POSITIONS:,})",
            "average in steps (e.g. AveragePooling2D first, or split the tensor and average the "
            "parts' means)",
            MAX_MEAN_POSITIONS / positions,
        )
    return None


def _pad(op: OpInfo, model: ModelInfo) -> Verdict | None:
    pads = const_ints(model, input_tensor(model, op, 1))
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
    rank = len(input_tensor(model, op, k_data).shape)
    vals = const_ints(model, input_tensor(model, op, k_axis))
    if vals is None:
        return _unspecified("the axis is not constant")
    if rank == 4 and 0 in {a % rank for a in vals}:
        if op.opcode == "SPLIT" and op.options.get("num_splits") == 1:
            return None  # one "split" is a copy: no data crosses the batch dimension
        return _unspecified(f"{op.opcode} over the batch dimension")
    return None


def _transpose(op: OpInfo, model: ModelInfo) -> Verdict | None:
    perm = const_ints(model, input_tensor(model, op, 1))
    if perm is None:
        return _unspecified("the permutation is not constant")
    if len(perm) == 4 and perm[0] != 0:
        return _unspecified("transposing the batch dimension")
    n = input_tensor(model, op, 0).num_elements
    moves_channels = perm[-1] != len(perm) - 1
    limit = MAX_CHANNEL_TRANSPOSE_ELEMENTS if moves_channels else MAX_TRANSPOSE_ELEMENTS
    if n > limit:
        kind = "moving the channel axis" if moves_channels else "keeping the channel axis"
        return _unspecified(
            f"TRANSPOSE of {n:,} elements {kind} (the compiler maps such transposes up to "
            f"about {limit:,})",
            "transpose after the model on the CPU, or keep channels last",
            limit / n,
        )
    return None


def _softmax(op: OpInfo, model: ModelInfo) -> Verdict | None:
    depth = yxz(input_tensor(model, op, 0).shape)[2]
    if depth > MAX_SOFTMAX_DEPTH:
        return _unspecified(f"SOFTMAX over {depth:,} values (at most {MAX_SOFTMAX_DEPTH:,})")
    return None


def _squeeze(op: OpInfo, model: ModelInfo) -> Verdict | None:
    shape = input_tensor(model, op, 0).shape
    dims = {d % len(shape) for d in op.options.get("squeeze_dims", ())} if shape else set()
    dims = dims or {i for i, d in enumerate(shape) if d == 1}
    first_big = next((i for i, d in enumerate(shape) if d > 1), len(shape))
    if any(d > first_big for d in dims):
        return _unspecified(f"SQUEEZE that moves data (input shape {list(shape)})")
    return None


def _strided_slice(op: OpInfo, model: ModelInfo) -> Verdict | None:
    strides = const_ints(model, input_tensor(model, op, 3)) if len(op.inputs) > 3 else None
    if strides is None or any(s != 1 for s in strides):
        return Verdict(
            STRIDED,
            f"STRIDED_SLICE with strides {list(strides) if strides else '(not constant)'}",
            "slice with stride 1 (e.g. SpaceToDepth instead of a Focus layer's [::2] slices)",
        )
    if op.options.get("ellipsis_mask") or op.options.get("new_axis_mask"):
        return _unspecified("STRIDED_SLICE with an ellipsis or new-axis mask")
    return None


def _reshape(op: OpInfo, model: ModelInfo) -> Verdict | None:
    src, dst = input_tensor(model, op, 0).shape, output_tensor(model, op).shape
    if _squeezed(src) == _squeezed(dst):
        return None  # only leading 1s change: no data moves
    n = input_tensor(model, op, 0).num_elements
    if n > MAX_RELAYOUT_ELEMENTS:
        return _unspecified(
            f"RESHAPE {list(src)} -> {list(dst)} rearranges {n:,} elements (the compiler maps "
            f"such reshapes up to about {MAX_RELAYOUT_ELEMENTS:,})",
            "keep large reshapes of detection heads on the CPU (after the model), or reshape "
            "per output scale",
            MAX_RELAYOUT_ELEMENTS / n,
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
    (h0, w0, _), (h1, w1, _) = (
        yxz(input_tensor(model, op, 0).shape),
        yxz(output_tensor(model, op).shape),
    )
    for a, b in ((h0, h1), (w0, w1)):
        if not _power_of_two_ratio(a, b):
            return _unspecified(
                f"RESIZE_BILINEAR {h0}x{w0} -> {h1}x{w1}: the compiler keeps bilinear "
                "resizes that are not a power-of-two scale on the CPU (precision)",
                f"resize by a power of two (e.g. {h0}x{w0} -> {h0 * 2}x{w0 * 2}), or resize "
                "the final output on the CPU",
            )
    return _resize_size(op, model)


def _resize_size(op: OpInfo, model: ModelInfo) -> Verdict | None:
    """A resize (nearest or bilinear) maps up to MAX_RESIZE_OUTPUT_ELEMENTS output elements
    (coral issues 31 and 597; evidence in limits.py)."""
    out = output_tensor(model, op)
    n = out.num_elements
    if n <= MAX_RESIZE_OUTPUT_ELEMENTS:
        return None
    return _unspecified(
        f"{op.opcode} to {list(out.shape)} writes {n:,} elements (the compiler maps resizes "
        f"up to about {MAX_RESIZE_OUTPUT_ELEMENTS:,} output elements)",
        "resize a smaller tensor (fewer channels or a smaller input), or do the last "
        "upsampling on the CPU after the model",
        MAX_RESIZE_OUTPUT_ELEMENTS / n,
    )


def _power_of_two_ratio(a: int, b: int) -> bool:
    lo, hi = min(a, b), max(a, b)
    if lo <= 0 or hi % lo:
        return False
    r = hi // lo
    return r & (r - 1) == 0


def _prelu(op: OpInfo, model: ModelInfo) -> Verdict | None:
    alpha = input_tensor(model, op, 1).shape
    if any(d > 1 for d in alpha[:-1]):
        return _unspecified(
            f"PRELU alpha of shape {list(alpha)}: only the innermost dimension may exceed 1",
            "use Keras PReLU(shared_axes=[1, 2]) (one alpha per channel)",
        )
    return None


_Check = Optional[Callable[[OpInfo, ModelInfo], Optional[Verdict]]]
SUPPORTED: dict[str, _Check] = {
    **dict.fromkeys(
        (
            "ADD", "SUB", "MUL", "MAXIMUM", "MINIMUM", "LOGISTIC", "RELU", "RELU6",
            "RELU_N1_TO_1", "TANH", "L2_NORMALIZATION", "EXPAND_DIMS", "SLICE",
            "SPACE_TO_DEPTH", "QUANTIZE", "RSQRT", "SQUARED_DIFFERENCE",
            "TRANSPOSE_CONV", "LSTM", "UNIDIRECTIONAL_SEQUENCE_LSTM",
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
    "RESIZE_NEAREST_NEIGHBOR": _resize_size,
    "PRELU": _prelu,
}  # fmt: skip
