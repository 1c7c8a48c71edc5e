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
its predicted mapping, or an ``_edgetpu.tflite`` as the compiler left it; latency_tflite.py) and
:func:`work_from_keras_layers` (``edgekit.host.keras_stats`` rows: a design before conversion;
latency_keras.py). The figures are in latency_figures.py, the work records in latency_work.py.

Every figure's source is in docs/DESIGN.md ("Latency model"); the calibrated constants were fitted
by ``scripts/bench_latency.py --fit`` on the calibration rows of Coral's benchmark table only.
"""

from __future__ import annotations

import math

# The figures, the work records and the front-ends live beside this module; their names are
# re-exported here (the latency model's one import path).
from edgekit.edgetpu.latency_figures import (  # noqa: F401
    CALIBRATION,
    HOSTS,
    LANES,
    LINK_BYTES_PER_S,
    LINK_NAMES,
    LINKS,
    MACS_PER_PARAMETER_BYTE,
    TPU_PEAK_MACS_PER_S,
)
from edgekit.edgetpu.latency_keras import work_from_keras_layers
from edgekit.edgetpu.latency_tflite import (  # noqa: F401
    boundary_tensors,
    compiled_streamed_bytes,
    work_from_tflite,
    work_of_compiled_pair,
)
from edgekit.edgetpu.latency_work import (  # noqa: F401
    OpWork,
    Work,
    conv_work,
    dense_work,
    depthwise_work,
    streamed_parameter_bytes,
)

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
    shown = ", ".join(f"{names[k]} {v:.2f} ms" for k, v in parts.items() if v >= 0.01)
    return (f"predicted {_ms(ms['usb3'])} per inference on a USB 3 Coral; USB 2: "
            f"{_ms(ms['usb2'])}; PCIe: {_ms(ms['pci'])} ({shown})")  # fmt: skip


def _ms(v: float) -> str:
    """A total: 2 decimals under 1 ms (a 0.02 ms model read "predicted 0.0 ms" beside its
    0.02 ms part), 1 under 100, none above."""
    return f"{v:.2f} ms" if v < 1 else f"{v:.1f} ms" if v < 100 else f"{v:.0f} ms"


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
