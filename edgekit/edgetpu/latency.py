"""Predicted time per inference on a Coral Edge TPU, before anyone owns one (no TensorFlow).

``latency(work) -> dict`` turns a model's :class:`Work` (what runs on the Edge TPU, what stays on
the host's CPU, the parameter bytes, the input/output bytes) into milliseconds per inference on
a USB 3 Coral, a USB 2 Coral and a PCIe Coral (M.2 / Mini PCIe), with the parts that make it up:

* ``tpu_compute``: the mapped ops on the Edge TPU's 64x64 int8 multiply-accumulate array
  (4 TOPS peak = 2e12 MAC/s), channels padded to the array's 64 lanes, depthwise convolutions
  at a calibrated extra cost, plus a fixed cost per op (instruction dispatch);
* ``parameters_streamed``: parameters beyond the ~7.7 MiB on-chip cache cross the link on EVERY
  inference, as the compiled executable stores them (:mod:`edgekit.edgetpu.memory`: the cache
  holds them padded, the link carries the blob; a compiled model: its EXECUTION_ONLY part);
* ``io_transfer``: the input and output tensors crossing the link, plus a fixed cost per
  inference (a USB/PCIe round trip and the runtime's dispatch);
* ``cpu_ops``: ops left on the CPU, on a Raspberry Pi 4's cores.

Front-ends (pure data in, :class:`Work` out): :func:`work_from_tflite` (an int8 ``.tflite`` and
its predicted mapping, or an ``_edgetpu.tflite`` as the compiler left it) and
:func:`work_from_keras_layers` (``edgekit.host.keras_stats`` rows: a design before conversion).

Every figure's source is in docs/DESIGN.md ("Latency model"); the calibrated constants were fitted
by ``scripts/bench_latency.py --fit`` on the calibration rows of Coral's benchmark table only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from edgekit.edgetpu.memory import BLOB_BYTES_PER_CHANNEL, ON_CHIP_BYTES

# ---- published hardware figures ----------------------------------------------------------------
TPU_PEAK_MACS_PER_S = 2e12  # 4 TOPS int8 (Coral), 2 ops (multiply + add) per MAC
LANES = 64  # 64x64 MAC array: 4 TOPS / 2 / 64**2 = ~500 MHz (libedgetpu "max" clock)
# Link payload rates, bytes/s. USB 3.0 Gen 1: 5 Gbit/s signalling, 8b/10b -> 500 MB/s. USB 2.0
# High-Speed bulk: 13 packets of 512 B per 125 us microframe -> 53.248 MB/s (USB 2.0 spec 5.8.4).
# PCIe Gen 2 x1 (Coral M.2 / Mini PCIe): 5 GT/s, 8b/10b -> 500 MB/s.
LINK_BYTES_PER_S = {"usb3": 500e6, "usb2": 53.248e6, "pci": 500e6}
LINKS = ("usb3", "usb2", "pci")
LINK_NAMES = {"usb3": "USB 3 Coral", "usb2": "USB 2 Coral", "pci": "PCIe Coral"}

# ---- calibrated on Coral's table 1 (calibration rows only; scripts/bench_latency.py --fit) -----
CALIBRATION = {
    "tpu_efficiency": 0.411,  # fraction of the padded peak the array sustains
    "depthwise_cost": 28.116,  # a depthwise MAC costs this many padded conv MACs (of 64 lanes)
    "op_overhead_us": 5.697,  # per mapped op (instruction dispatch)
    "invoke_overhead_us": 695.827,  # per inference (link round trips, runtime dispatch)
    "link_efficiency": 1.0,  # fraction of the link payload rate achieved when streaming
    # an activation (op output) larger than this does not stay in the on-chip memory: it
    # crosses the link out and back (what the compiler's "large activation tensors" refers to)
    "activation_budget_mib": 2.343,
}
# PCIe has no USB transaction round trip: Coral's Dev Board (Edge TPU on PCIe) runs MobileNet v1
# in the same 2.4 ms as the USB 3 Accelerator, so the same overhead is kept (not fitted).

# ---- host CPU (ops the compiler leaves on the CPU) ------------------------------------------
# Raspberry Pi 4: 4x Cortex-A72 @ 1.5 GHz. Rates from Coral's table's "Embedded CPU" column
# (4x Cortex-A53 @ 1.5 GHz: MobileNet v1 224, 569 M MACs in 164 ms -> 3.5 GMAC/s): the Pi 4's
# A72 is faster per clock, so CPU parts are on the slow side. Element-wise/data-movement ops:
# 0.5 G int8 elements/s (an assumption: a few instructions per element, memory bound).
HOSTS = {
    "pi4": {"macs_per_s": 3.5e9, "elements_per_s": 0.5e9, "op_overhead_us": 20.0},
    # Coral's "Desktop CPU" (Xeon, table 1 footnote): MobileNet v1 in 53 ms -> 10.7 GMAC/s;
    # used only to remove the CPU part of the calibration rows (their host was a desktop).
    "desktop": {"macs_per_s": 10.7e9, "elements_per_s": 2e9, "op_overhead_us": 5.0},
}


@dataclass(frozen=True)
class OpWork:
    """One op: ``op`` name, where it runs, its ``macs`` (0 for non-weighted ops), the MACs the
    64-lane array really spends on it (``padded_macs``: channels rounded up to 64; for a
    depthwise conv its padded MACs before the depthwise cost) and ``elements`` it writes."""

    op: str
    on_tpu: bool
    macs: int = 0
    padded_macs: int = 0
    elements: int = 0
    depthwise: bool = False


@dataclass(frozen=True)
class Work:
    """What one inference does. Bytes are int8 (1 byte per element)."""

    ops: tuple[OpWork, ...]
    parameter_bytes: int  # of the mapped ops, padded as they sit in the on-chip cache
    input_bytes: int
    output_bytes: int
    source: str = "tflite"  # tflite | compiled | keras
    notes: tuple[str, ...] = field(default=())
    # the same parameters as the executable's blob (input channels unpadded): what crosses the
    # link for the part that does not fit; None = parameter_bytes
    parameter_blob_bytes: int | None = None
    # known bytes streamed per inference (a compiled model's EXECUTION_ONLY parameters): used
    # as they are instead of the cache estimate
    streamed_bytes: int | None = None


def streamed_parameter_bytes(work: Work) -> int:
    """Parameter bytes crossing the link on every inference: the blob of the share of the
    padded parameters beyond the on-chip cache (:mod:`edgekit.edgetpu.memory`)."""
    if work.streamed_bytes is not None:
        return max(0, int(work.streamed_bytes))
    excess = max(0, work.parameter_bytes - ON_CHIP_BYTES)
    if not excess:
        return 0
    blob = work.parameter_blob_bytes
    return int(excess * (blob / work.parameter_bytes)) if blob else excess


def _up(n: int, k: int = LANES) -> int:
    return -(-max(int(n), 0) // k) * k


def conv_work(op: str, out_hw: int, kh: int, kw: int, cin: int, cout: int, groups: int = 1,
              on_tpu: bool = True) -> OpWork:  # fmt: skip
    """A convolution producing ``out_hw`` positions (for TRANSPOSE_CONV: its input positions).
    The array takes ``kh * kw * cin`` (im2col) inputs and ``cout`` outputs per position, each
    rounded up to 64 lanes."""
    macs = out_hw * kh * kw * (cin // groups) * cout
    padded = out_hw * _up(kh * kw * cin // groups) * _up(cout) * groups
    return OpWork(op, on_tpu, macs, padded, out_hw * cout)


def depthwise_work(op: str, out_hw: int, kh: int, kw: int, channels: int,
                   on_tpu: bool = True) -> OpWork:  # fmt: skip
    macs = out_hw * kh * kw * channels
    return OpWork(op, on_tpu, macs, out_hw * kh * kw * _up(channels), out_hw * channels, True)


def dense_work(op: str, cin: int, cout: int, rows: int = 1, on_tpu: bool = True) -> OpWork:
    return OpWork(op, on_tpu, rows * cin * cout, rows * _up(cin) * _up(cout), rows * cout)


# ---- the model ----------------------------------------------------------------------------------


def latency(work: Work, host: str = "pi4", calibration: dict | None = None) -> dict:
    """Predicted milliseconds per inference per link, with the parts (see the module docstring).

    Returns ``{"latency_ms": {"usb3", "usb2", "pci"}, "parts_ms": {link: {"tpu_compute",
    "parameters_streamed", "io_transfer", "cpu_ops"}}, "streamed_bytes", "parameter_bytes",
    "tpu_ops", "cpu_ops", "host", "source"}``; all times >= 0, rounded to 0.01 ms. Raises
    ValueError (or OverflowError) for shapes no real model has (a corrupt file).
    """
    c = {**CALIBRATION, **(calibration or {})}
    h = HOSTS[host]
    rate = TPU_PEAK_MACS_PER_S * c["tpu_efficiency"]
    compute = 0.0
    cpu = 0.0
    spilled = 0
    budget = c["activation_budget_mib"] * 2**20
    for o in work.ops:
        if o.on_tpu and o.elements > budget:
            spilled += 2 * o.elements  # written out to the host and read back
        if o.on_tpu:
            eq = o.padded_macs * (c["depthwise_cost"] if o.depthwise else 1.0)
            # ops without weights (add, pool, concat, ...) move their elements through the
            # array's 64 lanes once per element
            eq = max(eq, o.elements * LANES if not o.padded_macs else 0)
            compute += eq / rate + c["op_overhead_us"] * 1e-6
        else:
            cpu += (o.macs / h["macs_per_s"] + o.elements / h["elements_per_s"]
                    + h["op_overhead_us"] * 1e-6)  # fmt: skip
    tpu_ops = sum(o.on_tpu for o in work.ops)
    streamed = streamed_parameter_bytes(work) if tpu_ops else 0
    out_ms: dict[str, float] = {}
    parts: dict[str, dict[str, float]] = {}
    for link in LINKS:
        bw = LINK_BYTES_PER_S[link] * c["link_efficiency"]
        io = (work.input_bytes + work.output_bytes) / bw + c["invoke_overhead_us"] * 1e-6
        p = {
            "tpu_compute": compute if tpu_ops else 0.0,
            "parameters_streamed": streamed / bw,
            "activations_streamed": spilled / bw,
            "io_transfer": io if tpu_ops else 0.0,
            "cpu_ops": cpu,
        }
        if not all(math.isfinite(v) and v >= 0 for v in p.values()):
            raise ValueError("no finite latency for these shapes")
        parts[link] = {k: round(v * 1e3, 2) for k, v in p.items()}
        out_ms[link] = round(sum(p.values()) * 1e3, 2)
    return {
        "latency_ms": out_ms,
        "parts_ms": parts,
        "parameter_bytes": int(work.parameter_bytes),
        "streamed_bytes": int(streamed),
        "activation_bytes_streamed": int(spilled),
        "tpu_ops": tpu_ops,
        "cpu_ops": len(work.ops) - tpu_ops,
        "host": host,
        "source": work.source,
        "notes": list(work.notes),
    }


def format_latency(d: dict) -> str:
    """One line: 'predicted 2.6 ms per inference on a USB 3 Coral; USB 2: 9.1 ms; PCIe: 2.5 ms'
    with the biggest parts of the USB 3 figure."""
    ms = d["latency_ms"]
    parts = d["parts_ms"]["usb3"]
    names = {"tpu_compute": "Edge TPU compute", "parameters_streamed": "parameters streamed",
             "activations_streamed": "activations streamed",
             "io_transfer": "input/output transfer", "cpu_ops": "CPU ops on a Pi 4"}  # fmt: skip
    shown = ", ".join(f"{names[k]} {v:g} ms" for k, v in parts.items() if v >= 0.01)
    return (f"predicted {_ms(ms['usb3'])} per inference on a USB 3 Coral; USB 2: "
            f"{_ms(ms['usb2'])}; PCIe: {_ms(ms['pci'])} ({shown})")  # fmt: skip


def _ms(v: float) -> str:
    return f"{v:.1f} ms" if v < 100 else f"{v:.0f} ms"


# ---- front-ends ---------------------------------------------------------------------------------


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


# Median compute-equivalent MACs (padded, depthwise at depthwise_cost, element-wise ops at 64 per
# element) per padded parameter byte over the 12 calibration models, each scaled to a 224x224
# input (scripts/bench_latency.py): a compiled model's compute is estimated from its
# executable's size, scaled by its input area.
MACS_PER_PARAMETER_BYTE = 325.3

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


def latency_of_keras_stats(stats: dict, host: str = "pi4") -> dict:
    """:func:`latency` of ``edgekit.host.keras_stats.inspect_keras``'s summary."""
    work = work_from_keras_layers(
        stats["layers"], stats.get("input_shapes", []), stats.get("output_shapes", [])
    )
    return latency(work, host)


def latency_of_model(model, mapping=None, cpu_twin=None, host: str = "pi4") -> dict:
    """:func:`latency` of a ``.tflite`` (:class:`~edgekit.tflite.ModelInfo`). For a compiled
    model with the int8 model it was compiled from (``cpu_twin``), the twin's ops placed where
    the compiler put them (its compute per op), else the compiled model's own estimate."""
    if model.is_edgetpu_compiled and cpu_twin is not None:
        return latency(work_of_compiled_pair(model, cpu_twin), host)
    if mapping is None:
        from edgekit.edgetpu.mapping import predict

        mapping = predict(model)
    return latency(work_from_tflite(model, mapping), host)


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
