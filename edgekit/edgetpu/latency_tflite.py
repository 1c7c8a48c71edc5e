"""The latency model's TFLite front-end: :class:`~edgekit.edgetpu.latency_work.Work` of an int8
``.tflite`` and its predicted mapping, of an ``_edgetpu.tflite`` as the compiler left it, or of
a compiled model placed op by op from its int8 twin (pure data in, no TensorFlow)."""

from __future__ import annotations

import math

from edgekit.edgetpu.latency_figures import MACS_PER_PARAMETER_BYTE
from edgekit.edgetpu.latency_work import OpWork, Work, conv_work, dense_work, depthwise_work


def work_from_tflite(model, mapping) -> Work:
    """:class:`Work` of an int8 ``.tflite`` (``mapping``: its :func:`~edgekit.edgetpu.mapping.
    predict` result) or of an ``_edgetpu.tflite`` (what the compiler did). The link carries the
    tensors that cross the Edge TPU's boundary (graph inputs or CPU results into mapped ops,
    mapped results to the CPU or the graph's outputs), not the model's own inputs/outputs."""
    if model.is_edgetpu_compiled:
        return _work_from_compiled(model)
    ts = model.main.tensors
    on_tpu = [m.on_tpu for m in mapping.ops]
    ops = tuple(_tflite_op(op, ts, t) for op, t in zip(model.main.operators, on_tpu))
    into, out_of = boundary_tensors(model, on_tpu)
    return Work(
        ops,
        int(mapping.memory.get("parameters_bytes", 0)),
        _io_bytes(ts[i] for i in into),
        _io_bytes(ts[i] for i in out_of),
        "tflite",
        parameter_blob_bytes=mapping.memory.get("parameters_blob_bytes"),
    )


def boundary_tensors(model, on_tpu: list[bool]) -> tuple[set[int], set[int]]:
    """(tensors flowing into mapped ops from outside, tensors mapped ops hand to the CPU or the
    graph outputs); constants excluded."""
    ts = model.main.tensors
    made_on_tpu: set[int] = set()
    for op, t in zip(model.main.operators, on_tpu):
        if t:
            made_on_tpu.update(i for i in op.outputs if i >= 0)
    into, out_of = set(), set()
    for op, t in zip(model.main.operators, on_tpu):
        for i in op.inputs:
            if i < 0 or ts[i].is_constant:
                continue
            if t and i not in made_on_tpu:
                into.add(i)
            if not t and i in made_on_tpu:
                out_of.add(i)
    out_of.update(i for i in model.main.outputs if i in made_on_tpu)
    return into, out_of


def _io_bytes(tensors) -> int:
    return sum(math.prod(max(d, 1) for d in t.shape) * _itemsize(t.dtype) for t in tensors)


def _itemsize(dtype: str) -> int:
    return {"float32": 4, "int32": 4, "float16": 2, "int16": 2, "int64": 8}.get(dtype, 1)


def _shape(ts, i):
    return ts[i].shape if i >= 0 else ()


def _tflite_op(op, ts, on_tpu: bool) -> OpWork:
    out = _shape(ts, op.outputs[0]) if op.outputs else ()
    elements = math.prod(max(d, 1) for d in out) if out else 0
    try:
        if op.opcode == "CONV_2D":
            w = _shape(ts, op.inputs[1])  # [cout, kh, kw, cin]
            cin_total = _shape(ts, op.inputs[0])[-1]
            groups = max(1, cin_total // w[3]) if w[3] else 1
            return conv_work(op.opcode, elements // max(w[0], 1), w[1], w[2], cin_total, w[0],
                             groups, on_tpu)  # fmt: skip
        if op.opcode == "DEPTHWISE_CONV_2D":
            w = _shape(ts, op.inputs[1])  # [1, kh, kw, cout]
            return depthwise_work(op.opcode, elements // max(w[3], 1), w[1], w[2], w[3], on_tpu)
        if op.opcode == "FULLY_CONNECTED":
            w = _shape(ts, op.inputs[1])  # [cout, cin]
            return dense_work(op.opcode, w[1], w[0], max(1, elements // max(w[0], 1)), on_tpu)
        if op.opcode == "TRANSPOSE_CONV":
            w = _shape(ts, op.inputs[1])  # [cout, kh, kw, cin]
            src = _shape(ts, op.inputs[2])
            hw = math.prod(src[1:-1]) if len(src) >= 3 else 1
            return conv_work(op.opcode, hw, w[1], w[2], w[3], w[0], 1, on_tpu)
    except (IndexError, ValueError, TypeError):
        pass  # malformed weights: count it as an element-wise op
    return OpWork(op.opcode, on_tpu, 0, 0, elements)


def _work_from_compiled(model) -> Work:
    """An ``_edgetpu.tflite``: the custom op holds the compiled executable (parameters and
    instructions; its bytes stand for the parameters), the other ops run on the CPU. The
    compiled op no longer says how many MACs it does: they are estimated from its parameter
    bytes at the median MACs per parameter byte of the calibration models."""
    ts = model.main.tensors
    ops = []
    params = 0
    into, out_of = set(), set()
    for op in model.main.operators:
        if op.opcode == "edgetpu-custom-op":
            size = len(op.custom_options or b"")
            params += size
            # convolution MACs grow with the image area, the parameters do not
            pixels = max((math.prod(ts[i].shape[1:3]) for i in op.inputs
                          if i >= 0 and len(ts[i].shape) == 4), default=224 * 224)  # fmt: skip
            macs = int(size * MACS_PER_PARAMETER_BYTE * pixels / (224 * 224))
            ops.append(OpWork(op.opcode, True, macs, macs, 0))
            into.update(i for i in op.inputs if i >= 0 and not ts[i].is_constant)
            out_of.update(i for i in op.outputs if i >= 0)
        else:
            ops.append(_tflite_op(op, ts, False))
    return Work(
        tuple(ops), params, _io_bytes(ts[i] for i in into), _io_bytes(ts[i] for i in out_of),
        "compiled",
        ("compiled model: Edge TPU compute estimated from the executable's size; predict from "
         "the int8 model before compiling for a per-op estimate",),
        streamed_bytes=compiled_streamed_bytes(model),
    )  # fmt: skip


def compiled_streamed_bytes(model) -> int | None:
    """The parameters a compiled model streams on every inference, as the compiler decided:
    its EXECUTION_ONLY executables' parameters (:func:`edgekit.edgetpu.cocompile.caching`).
    None when the package cannot be read (then the cache estimate applies)."""
    from edgekit.edgetpu.cocompile import caching
    from edgekit.flatbuffer import Corrupt

    try:
        c = caching(model)
    except (Corrupt, IndexError, ValueError, TypeError):
        return None
    return None if c is None else int(c["off_chip_bytes"])


def work_of_compiled_pair(model, cpu_twin) -> Work:
    """:class:`Work` of a compiled model from the int8 model it was compiled from: the twin's
    ops (compute per op) placed where the compiler put them, the parameters it streams as its
    executables say."""
    from edgekit.edgetpu.compare import actual_cpu_ops
    from edgekit.edgetpu.mapping import predict

    left = actual_cpu_ops(cpu_twin, model)
    p = predict(cpu_twin)
    placed = tuple(
        OpWork(o.op, i not in left, o.macs, o.padded_macs, o.elements, o.depthwise)
        for i, o in enumerate(work_from_tflite(cpu_twin, p).ops)
    )
    into, out_of = boundary_tensors(cpu_twin, [o.on_tpu for o in placed])
    ts = cpu_twin.main.tensors
    compiled_bytes = sum(len(op.custom_options or b"") for op in model.main.operators
                         if op.is_custom)  # fmt: skip
    return Work(placed, max(int(p.memory.get("parameters_bytes", 0)), 0),
                _io_bytes(ts[i] for i in into), _io_bytes(ts[i] for i in out_of),
                "compiled", (f"placement as compiled; compiled code and parameters "
                             f"{compiled_bytes:,} bytes",),
                p.memory.get("parameters_blob_bytes"), compiled_streamed_bytes(model))  # fmt: skip
