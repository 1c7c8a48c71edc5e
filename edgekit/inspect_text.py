"""The aligned text of ``edgekit inspect``: :func:`format_report` of a report from
:func:`edgekit.inspect_model.inspect_model` (TFLite or Keras) and :func:`format_mapping` of a
mapping prediction (``MappingPrediction.to_dict()``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.edgetpu.compare import format_comparison


def _counted(report: dict[str, Any]) -> str:
    """A compiled model without its CPU model beside it: its weights are inside the Edge TPU
    executable, so the counts cover only the ops left outside it ("Params 0" read as none)."""
    if report.get("params_scope") != "outside_edgetpu_code":
        return ""
    return "  (ops outside the Edge TPU code only: the CPU model beside it counts the rest)"


def format_report(report: dict[str, Any], tensors: bool = False) -> str:
    """Aligned text for a report from :func:`inspect_model` (``tensors``: list every tensor)."""
    if report["format"] == "keras":
        return _format_keras(report)
    lines = [
        f"Model    {report['model']}",
        f"Format   TFLite (schema v{report['schema_version']}), {_size(report['size_bytes'])}"
        + ("  [compiled for the Edge TPU]" if report["compiled"] else ""),
        f"Params   {report['params']:,}    MACs {report['macs']:,}" + _counted(report),
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

    lines = [f"Model    {r['model']}", "Format   Keras"]
    for kind in ("input", "output"):
        for shape in r.get(f"{kind}_shapes") or []:
            lines.append(f"{kind.capitalize():<8} {list(shape)}")
    lines += [f"Note     {n}" for n in r.get("notes", [])]
    lines += ["", line(head)]
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
