"""What ``edgekit inspect`` reports of a decoded ``.tflite`` (:func:`inspect_tflite`, JSON-ready):
op counts, tensors (dtype, shape, quantization), size, inputs/outputs, parameters and
multiply-adds from the tensor shapes, the Edge TPU mapping prediction with its predicted
latency, and for an ``_edgetpu.tflite`` which ops run inside the Edge TPU custom op (the CPU
model it was compiled from, when it sits beside it, tells the ops that went in).

MAC convention (same as keras_stats): one multiply-accumulate per weight use, weighted ops only:
CONV_2D ``out_elems * kh * kw * cin``; DEPTHWISE_CONV_2D ``out_elems * kh * kw``;
FULLY_CONNECTED ``out_elems * in_features``; TRANSPOSE_CONV ``in_pixels * kh * kw * cin * cout``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.edgetpu.mapping import predict
from edgekit.errors import EdgekitError
from edgekit.tflite import EDGETPU_CUSTOM_OP, ModelInfo, TensorInfo, read_model

# Weighted ops -> position of their (int32) bias input.
_WEIGHTED = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "TRANSPOSE_CONV": 3}
COMPILER_LOG_LIMIT = 16 * 2**20  # compiler logs are a few KiB; refuse anything absurd


def inspect_tflite(info: ModelInfo) -> dict[str, Any]:
    """The JSON report of a decoded .tflite (see the module docstring)."""
    params, macs = count_params(info), count_macs(info)
    report: dict[str, Any] = {
        "model": info.path,
        "format": "tflite",
        "size_bytes": info.size_bytes,
        "schema_version": info.version,
        "description": info.description,
        "inputs": [tensor_dict(t) for t in info.inputs],
        "outputs": [tensor_dict(t) for t in info.outputs],
        "op_counts": info.op_counts(),
        "dtype_counts": _dtype_counts(info),
        "params": params,
        "macs": macs,
        "compiled": info.is_edgetpu_compiled,
        "edgetpu": _edgetpu_with_latency(info),
        "tensors": [tensor_dict(t) for t in info.main.tensors],
    }
    if info.is_edgetpu_compiled:
        report["edgetpu_custom_op"] = _compiled_info(info, report)
        if report["edgetpu_custom_op"]["cpu_model"] is None:  # weights inside the executable
            report["params_scope"] = "outside_edgetpu_code"
    return report


def _edgetpu_with_latency(info: ModelInfo) -> dict[str, Any]:
    """The mapping prediction plus the predicted time per inference: ``latency_ms``
    ({"usb3", "usb2", "pci"}) and ``latency`` (parts per link, bytes streamed; see
    :mod:`edgekit.edgetpu.latency`)."""
    from edgekit.edgetpu.latency import latency_of_model

    p = predict(info)
    d = p.to_dict()
    twin = _cpu_twin(info) if info.is_edgetpu_compiled else None
    try:
        lat = latency_of_model(info, None if info.is_edgetpu_compiled else p, twin)
    except (ValueError, OverflowError, ZeroDivisionError):
        # tensor shapes no real model has (a corrupt file): say so, never a wrong number
        d["latency_ms"] = None
        d["latency"] = {"error": "no latency prediction: the tensor shapes are not plausible"}
        return d
    d["latency_ms"] = lat.pop("latency_ms")
    d["latency"] = lat
    return d


def tensor_dict(t: TensorInfo) -> dict[str, Any]:
    q = t.quantization
    return {
        "index": t.index,
        "name": t.name,
        "shape": list(t.shape),
        "shape_signature": None if t.shape_signature is None else list(t.shape_signature),
        "dtype": t.dtype,
        "quantization": None
        if q is None
        else {
            "scale": list(q.scale),
            "zero_point": list(q.zero_point),
            "quantized_dimension": q.quantized_dimension,
        },
        "constant": t.is_constant,
        "nbytes": t.nbytes,
    }


def count_params(info: ModelInfo) -> int:
    """Elements of the constant weight tensors: every constant op input except int32/int64
    shape/axis arguments; int32 biases of weighted ops count (each tensor once)."""
    seen: set[int] = set()
    for op in info.main.operators:
        for k, i in enumerate(op.inputs):
            t = info.main.tensors[i] if i >= 0 else None
            if t is None or not t.is_constant or i in seen:
                continue
            is_bias = _WEIGHTED.get(op.opcode) == k
            if t.dtype not in ("int32", "int64") or is_bias:
                seen.add(i)
    return sum(info.main.tensors[i].num_elements for i in seen)


def count_macs(info: ModelInfo) -> int:
    """Multiply-adds of the convolution and fully-connected ops, from tensor shapes (batch 1)."""
    total = 0
    for op in info.main.operators:
        if op.opcode not in _WEIGHTED or len(op.inputs) < 2 or not op.outputs:
            continue
        t = info.main.tensors
        if min(op.inputs[:2]) < 0 or op.outputs[0] < 0:
            continue
        w = tuple(max(d, 0) for d in t[op.inputs[1]].shape)  # (corrupt files: no negatives)
        out = t[op.outputs[0]].num_elements
        if op.opcode == "CONV_2D" and len(w) == 4:  # weights [cout, kh, kw, cin]
            total += out * w[1] * w[2] * w[3]
        elif op.opcode == "DEPTHWISE_CONV_2D" and len(w) == 4:  # weights [1, kh, kw, cout]
            total += out * w[1] * w[2]
        elif op.opcode == "FULLY_CONNECTED" and len(w) == 2:  # weights [units, in]
            total += out * w[1]
        elif op.opcode == "TRANSPOSE_CONV" and len(w) == 4 and len(op.inputs) > 2:
            # inputs: output shape, weights [cout, kh, kw, cin], input
            x = t[op.inputs[2]].shape if op.inputs[2] >= 0 else ()
            total += _prod(x[:-1]) * w[0] * w[1] * w[2] * w[3]
    return total


def _prod(dims) -> int:
    n = 1
    for d in dims:
        n *= max(d, 0)
    return n


def _dtype_counts(info: ModelInfo) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for t in info.main.tensors:
        row = out.setdefault(t.dtype, {"tensors": 0, "constant": 0, "nbytes": 0})
        row["tensors"] += 1
        row["constant"] += t.is_constant
        row["nbytes"] += t.nbytes
    return out


def _compiled_info(info: ModelInfo, report: dict[str, Any]) -> dict[str, Any]:
    """Which ops run inside the Edge TPU custom op(s) and which stayed on the CPU."""
    tensors = info.main.tensors
    custom = [
        {
            "index": op.index,
            "inputs": [tensors[i].name for i in op.inputs if i >= 0],
            "outputs": [tensors[i].name for i in op.outputs if i >= 0],
            "executable_bytes": len(op.custom_options or b""),
        }
        for op in info.main.operators
        if op.opcode == EDGETPU_CUSTOM_OP
    ]
    cpu: dict[str, int] = {}
    for op in info.main.operators:
        if op.opcode != EDGETPU_CUSTOM_OP:
            cpu[op.opcode] = cpu.get(op.opcode, 0) + 1
    result: dict[str, Any] = {
        "custom_ops": custom,
        "cpu_op_counts": cpu,
        "cpu_model": None,
        "tpu_op_counts": None,
    }
    twin = _cpu_twin(info)
    if twin is not None:
        # Ops the CPU model had that the compiled one no longer has went into the custom op.
        tpu = {k: n - cpu.get(k, 0) for k, n in twin.op_counts().items() if n > cpu.get(k, 0)}
        result.update(cpu_model=twin.path, tpu_op_counts=tpu)
        # Weights and MACs of the whole network are only visible in the CPU model.
        report.update(params=count_params(twin), macs=count_macs(twin))
        # What the compiler did beside what was predicted for the CPU model, with the
        # compiler's log when it sits beside the model too (a bundle from convert has both).
        from edgekit.edgetpu.compare import compare

        log = Path(info.path).with_suffix(".log")
        log_text = None
        if log.is_file() and log.stat().st_size <= COMPILER_LOG_LIMIT:
            log_text = log.read_text(errors="replace")
        report["comparison"] = compare(twin, predict(twin), info, log_text)
    return result


def _cpu_twin(info: ModelInfo) -> ModelInfo | None:
    p = Path(info.path)
    if not p.name.endswith("_edgetpu.tflite"):
        return None
    twin = p.with_name(p.name[: -len("_edgetpu.tflite")] + ".tflite")
    try:
        model = read_model(twin) if twin.is_file() else None
    except EdgekitError:
        return None
    return None if model is None or model.is_edgetpu_compiled else model
