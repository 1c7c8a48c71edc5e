"""``edgekit inspect``: what is inside a model file, and what will run on the Edge TPU.

``inspect_model(path) -> dict`` (JSON-ready) and ``format_report(dict) -> str`` (aligned text).

* ``.tflite``: op counts, tensors (dtype, shape, quantization), size, inputs/outputs, parameters
  and multiply-adds computed from the tensor shapes, and the Edge TPU mapping prediction
  (:mod:`edgekit.edgetpu.mapping`). For an ``_edgetpu.tflite`` it says which ops run inside the
  Edge TPU custom op and which were left on the CPU; when the CPU model it was compiled from
  sits beside it (same name without ``_edgetpu``), the difference of op counts tells which ops
  went into the TPU.
* Keras (``.h5``, ``.hdf5``, ``.keras``, SavedModel directory): per-layer output shape,
  parameters and multiply-adds from :func:`edgekit.host.keras_stats.inspect_keras`; TensorFlow
  is imported only in that branch.

MAC convention (same as keras_stats): one multiply-accumulate per weight use, weighted ops only:
CONV_2D ``out_elems * kh * kw * cin``; DEPTHWISE_CONV_2D ``out_elems * kh * kw``;
FULLY_CONNECTED ``out_elems * in_features``; TRANSPOSE_CONV ``in_pixels * kh * kw * cin * cout``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from edgekit.edgetpu.compare import format_comparison
from edgekit.edgetpu.mapping import predict
from edgekit.errors import EdgekitError
from edgekit.manifest import is_bundle, load_bundle
from edgekit.safeio import open_regular
from edgekit.tflite import EDGETPU_CUSTOM_OP, ModelInfo, TensorInfo, read_model

KERAS_SUFFIXES = (".h5", ".hdf5", ".keras")
_HINT = "pass a bundle, a .tflite, .h5 or .keras file, or a SavedModel directory"
# Weighted ops -> position of their (int32) bias input.
_WEIGHTED = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "TRANSPOSE_CONV": 3}


def inspect_model(
    path: str | os.PathLike,
    compiled: str | os.PathLike | None = None,
    log: str | os.PathLike | None = None,
    custom_objects: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Describe a model file. Raises EdgekitError for a missing file or an unknown format.

    ``compiled`` (the model's ``_edgetpu.tflite``) and/or ``log`` (the compiler's log or stdout)
    add ``report["comparison"]``: what the compiler did beside the prediction (a CPU .tflite).
    """
    p = Path(path)
    if compiled is not None or log is not None:
        return _inspect_against_compiler(p, compiled, log)
    if not p.exists():
        raise EdgekitError(f"{p}: no such file or directory", "check the path")
    if is_bundle(p):  # a bundle from `edgekit convert`: its compiled model if any, else int8
        bundle = load_bundle(p)
        report = inspect_model(bundle.edgetpu_model or bundle.cpu_model)
        report.update(_task(read_model(bundle.cpu_model), bundle.manifest))
        if bundle.manifest.cascade:  # convert --classify: the crop classifier it carries
            from edgekit.detect.cascade_bundle import describe

            report["cascade"] = describe(bundle)
        return report
    if p.is_dir():
        if not (p / "saved_model.pb").exists():
            raise EdgekitError(f"{p}: a directory but not a SavedModel (no saved_model.pb)", _HINT)
        return _inspect_keras(p, custom_objects)
    if p.suffix.lower() in KERAS_SUFFIXES:
        return _inspect_keras(p, custom_objects)
    with open_regular(p, "model") as f:
        head = f.read(8)
    if head == b"\x89HDF\r\n\x1a\n" or head[:4] == b"PK\x03\x04":  # Keras under any name
        return _inspect_keras(p, custom_objects)
    if p.suffix.lower() == ".tflite" or head[4:8] == b"TFL3":
        info = read_model(p)
        return {**inspect_tflite(info), **_task(info)}
    raise EdgekitError(f"{p}: unknown model format '{p.suffix or p.name}'", _HINT)


def _task(info: ModelInfo, manifest=None) -> dict[str, Any]:
    """``task`` (classify/detect) and, for a detector, its head (edgekit.tasks.describe_task)."""
    from edgekit.tasks import describe_task

    return describe_task(info, manifest)


_LOG_LIMIT = 16 * 2**20  # compiler logs are a few KiB; refuse anything absurd


def _inspect_against_compiler(p: Path, compiled, log) -> dict[str, Any]:
    from edgekit.edgetpu.compare import compare

    info = read_model(_regular(p, "MODEL"))
    if info.is_edgetpu_compiled:
        raise EdgekitError(
            f"{p}: already compiled for the Edge TPU",
            "pass the CPU model (the compiler's input) as MODEL and this one as --compiled",
        )
    twin = None
    if compiled is not None:
        twin = read_model(_regular(Path(compiled), "--compiled"))
        if not twin.is_edgetpu_compiled:
            raise EdgekitError(
                f"--compiled {compiled}: not compiled for the Edge TPU (no edgetpu-custom-op)",
                "pass the *_edgetpu.tflite that edgetpu_compiler wrote",
            )
        # The compiler keeps tensor names: a twin of MODEL has MODEL's input and output names.
        names = {t.name for t in info.main.tensors}
        if not all(t.name in names for t in (*twin.inputs, *twin.outputs)):
            raise EdgekitError(
                f"--compiled {compiled} was not compiled from {p.name} (its input/output tensor "
                "names are not in it)",
                "pass the CPU model that edgetpu_compiler was given and the model it wrote",
            )
    log_text = None
    if log is not None:
        lp = _regular(Path(log), "--log")
        if lp.stat().st_size > _LOG_LIMIT:
            raise EdgekitError(f"--log {log}: {lp.stat().st_size:,} bytes is not a compiler log",
                               "pass the compiler's .log file or its saved stdout")  # fmt: skip
        log_text = lp.read_text(errors="replace")
        if "Edge TPU Compiler" not in log_text and "Operator" not in log_text:
            raise EdgekitError(
                f"--log {log}: not an edgetpu_compiler log (no version line, no operator table)",
                "pass the compiler's .log file or its stdout saved with -s",
            )
    report = inspect_tflite(info)
    prediction = predict(info)
    report["comparison"] = compare(info, prediction, twin, log_text)
    return report


def _regular(p: Path, what: str) -> Path:
    """``p`` if it is an existing regular file (never a FIFO or a directory)."""
    import stat

    try:
        mode = os.stat(p).st_mode
    except OSError:
        raise EdgekitError(f"{what} {p}: no such file", "check the path") from None
    if not stat.S_ISREG(mode):
        raise EdgekitError(f"{what} {p}: not a regular file", "pass a file")
    return p


def _inspect_keras(p: Path, custom_objects=None) -> dict[str, Any]:
    from edgekit.host.keras_stats import inspect_keras  # lazy: loads TensorFlow

    stats = inspect_keras(p, custom_objects)
    return {"model": str(p), "format": "keras", **stats, "edgetpu": _keras_latency(stats)}


def _keras_latency(stats: dict[str, Any]) -> dict[str, Any]:
    """Predicted Edge TPU latency of a Keras design from its layer shapes (every layer assumed
    mapped; see :mod:`edgekit.edgetpu.latency`)."""
    from edgekit.edgetpu.latency import latency_of_keras_stats

    try:
        lat = latency_of_keras_stats(stats)
    except (ValueError, OverflowError, ZeroDivisionError, TypeError, KeyError):
        return {"latency_ms": None,
                "latency": {"error": "no latency prediction for these layer shapes"}}  # fmt: skip
    return {"latency_ms": lat.pop("latency_ms"), "latency": lat}


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
        if log.is_file() and log.stat().st_size <= _LOG_LIMIT:
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


# ---- human-readable report --------------------------------------------------------------------


def format_report(report: dict[str, Any], tensors: bool = False) -> str:
    """Aligned text for a report from :func:`inspect_model` (``tensors``: list every tensor)."""
    if report["format"] == "keras":
        return _format_keras(report)
    lines = [
        f"Model    {report['model']}",
        f"Format   TFLite (schema v{report['schema_version']}), {_size(report['size_bytes'])}"
        + ("  [compiled for the Edge TPU]" if report["compiled"] else ""),
        f"Params   {report['params']:,}    MACs {report['macs']:,}",
        *_latency_lines(report.get("edgetpu")),
    ]
    for kind in ("inputs", "outputs"):
        for t in report[kind]:
            lines.append(f"{kind[:-1].capitalize():<8} {_tensor_line(t)}")
    if report.get("task"):
        lines.append(f"Task     {_task_line(report)}")
    if report.get("cascade"):
        from edgekit.detect.cascade_bundle import format_description

        lines += format_description(report["cascade"])
    lines += ["", "Ops by type"]
    lines += [f"  {op:<28} {n:>5}" for op, n in report["op_counts"].items()]
    lines += [
        "",
        "Tensors by dtype",
        f"  {'dtype':<10} {'tensors':>8} {'constant':>9} {'bytes':>12}",
    ]
    for dtype, c in report["dtype_counts"].items():
        lines.append(f"  {dtype:<10} {c['tensors']:>8} {c['constant']:>9} {c['nbytes']:>12,}")
    if tensors:
        lines += ["", "Tensors"]
        lines += [f"  {t['index']:>4} {_tensor_line(t)}" for t in report["tensors"]]
    if report["compiled"]:
        lines += ["", *_format_compiled(report["edgetpu_custom_op"])]
    lines += ["", *format_mapping(report["edgetpu"], predicted=not report["compiled"])]
    if report.get("comparison"):
        lines += ["", *format_comparison(report["comparison"])]
    return "\n".join(lines)


def _latency_lines(edgetpu: dict[str, Any] | None) -> list[str]:
    """'Latency  predicted 2.6 ms per inference on a USB 3 Coral; USB 2: ...' (+ its notes)."""
    if not edgetpu or "latency_ms" not in edgetpu:
        return []
    if edgetpu["latency_ms"] is None:
        return [f"Latency  {edgetpu['latency']['error']}"]
    from edgekit.edgetpu.latency import format_latency

    d = {"latency_ms": edgetpu["latency_ms"], **edgetpu["latency"]}
    return [f"Latency  {format_latency(d)}", *(f"         ({n})" for n in d.get("notes", []))]


def _task_line(report: dict[str, Any]) -> str:
    d = report.get("detection")
    if not d:
        return report["task"]
    if d.get("error"):
        return f"detect ({d['error']})"
    parts = [f"{d['decoder']} head"]
    if "classes" in d:
        parts.append(f"{d['classes']} classes")
    if d.get("candidates") and d["decoder"] != "ssd-postprocess":
        parts.append(f"{d['candidates']:,} candidates")
    if d.get("box_units"):
        parts.append(f"boxes {d['box_units']}")
    if d.get("state_inputs"):
        parts.append(f"{d['state_inputs']} recurrent state input(s) carried between frames")
    line = "detect: " + ", ".join(parts)
    return "\n".join([line, *(f"Warning: {n}" for n in d.get("notes", []))])


def format_mapping(m: dict[str, Any], predicted: bool = True) -> list[str]:
    """Text of a mapping prediction (``MappingPrediction.to_dict()``): totals, the summary in the
    compiler's ``Operator Count Status`` format, parameter memory, every op, fix suggestions."""
    title = "Edge TPU mapping" + (" (predicted)" if predicted else "")
    lines = [f"{title}: {m['tpu_ops']} op(s) on the Edge TPU, {m['cpu_ops']} on the CPU"]
    if m.get("segments"):
        runs = [
            f"{'Edge TPU' if g['on'] == 'edgetpu' else 'CPU'} #{g['ops'][0]}"
            + (f"-#{g['ops'][-1]}" if len(g["ops"]) > 1 else "")
            for g in m["segments"]
        ]
        lines.append(
            "  in graph order: " + ", ".join(runs[:12]) + (" ..." if len(runs) > 12 else "")
        )
    if m.get("summary"):
        lines += ["", f"  {'Operator':<30} {'Count':<10} Status"]
        lines += [f"  {r['operator']:<30} {r['count']:<10} {r['status']}" for r in m["summary"]]
    mem = m.get("memory")
    if mem:
        lines += ["", "  Parameters on the Edge TPU: "
                  f"{_mib(mem['on_chip_bytes'])} on-chip, {_mib(mem['off_chip_bytes'])} off-chip "
                  f"(on-chip cache about {_mib(mem['on_chip_capacity_bytes'])})"]  # fmt: skip
        if mem["streams"]:
            lines.append(
                "  warning: the parameters do not fit on-chip; the rest streams from the host on "
                "every inference (much slower): use a smaller model or fewer channels"
            )
        elif mem.get("may_stream"):
            lines.append(
                "  note: the parameters nearly fill the on-chip cache; with large activations the "
                "compiler keeps less room for them (6.2-7.7 MiB in its logs) and part may stream"
            )
    width = max([len(o["op"]) for o in m["ops"]] + [2])
    lines += ["", f"  {'#':>4}  {'op':<{width}}  {'runs on':<8}  reason"]
    for o in m["ops"]:
        where = "Edge TPU" if o["on_tpu"] else "CPU"
        why = o["reason"] if o["on_tpu"] or o.get("status") in (None, o["reason"]) else (
            f"{o['status']}: {o['reason']}")  # fmt: skip
        lines.append(f"  {o['index']:>4}  {o['op']:<{width}}  {where:<8}  {why}")
    if m.get("suggestions"):
        lines += ["", "Fix suggestions (ranked by ops they would bring onto the Edge TPU)"]
        for s in m["suggestions"]:
            ops = ", ".join(f"#{i}" for i in s["ops"][:8]) + (" ..." if len(s["ops"]) > 8 else "")
            lines.append(f"  +{s['ops_gained']:<4} {s['fix']} ({ops})")
    return lines


def _mib(n: int) -> str:
    return f"{n / 2**20:.2f}MiB"


def _format_compiled(c: dict[str, Any]) -> list[str]:
    lines = ["Edge TPU custom op"]
    for op in c["custom_ops"]:
        lines.append(
            f"  op #{op['index']}: {', '.join(op['inputs'])} -> {', '.join(op['outputs'])} "
            f"({_size(op['executable_bytes'])} of compiled code and parameters)"
        )
    cpu = ", ".join(f"{k} x{n}" for k, n in c["cpu_op_counts"].items()) or "none"
    lines.append(f"  ops left on the CPU: {cpu}")
    if c["cpu_model"]:
        tpu = ", ".join(f"{k} x{n}" for k, n in c["tpu_op_counts"].items()) or "none"
        lines.append(f"  ops inside the Edge TPU custom op (vs {Path(c['cpu_model']).name}): {tpu}")
    else:
        lines.append("  (put the CPU model beside it, without _edgetpu, to list the ops inside)")
    return lines


def _format_keras(r: dict[str, Any]) -> str:
    head = ("layer", "type", "output shape", "params", "MACs")
    rows = [
        (x["name"], x["type"], str(x["output_shape"]), f"{x['params']:,}", f"{x['macs']:,}")
        for x in r["layers"]
    ]
    w = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(head)]

    def line(cells) -> str:
        left = "  ".join(f"{c:<{w[i]}}" for i, c in enumerate(cells[:3]))
        return f"  {left}  {cells[3]:>{w[3]}}  {cells[4]:>{w[4]}}"

    lines = [f"Model    {r['model']}", "Format   Keras", "", line(head)]
    lines += [line(row) for row in rows]
    lines += ["", f"Params   {r['params']:,}", f"MACs     {r['macs']:,}"]
    lines += _latency_lines(r.get("edgetpu"))
    return "\n".join(lines)


def _tensor_line(t: dict[str, Any]) -> str:
    q = t["quantization"]
    if q is None:
        quant = "not quantized"
    elif len(q["scale"]) == 1:
        quant = f"scale {q['scale'][0]:.6g} zero_point {q['zero_point'][0]}"
    else:
        quant = f"per-channel ({len(q['scale'])} scales, axis {q['quantized_dimension']})"
    shape = t["shape_signature"] or t["shape"]
    return f"{t['name']}  {t['dtype']} {shape}  {quant}"


def _size(n: int) -> str:
    for unit, div in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div:
            return f"{n:,} bytes ({n / div:.1f} {unit})"
    return f"{n:,} bytes"
