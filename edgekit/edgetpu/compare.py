"""What ``edgetpu_compiler`` actually did beside what :mod:`edgekit.edgetpu.mapping` predicted.

``compare(cpu_model, prediction, compiled=None, log_text=None) -> dict`` (JSON-ready):

* with the compiled twin (``*_edgetpu.tflite``): op by op, Edge TPU or CPU. The compiler keeps
  tensor names, so an op of the CPU model stayed on the CPU when an op of the twin other than
  ``edgetpu-custom-op`` produces one of its output tensors;
* with the compiler's log (its ``.log`` or stdout with ``-s``): the ``Operator Count Status``
  rows beside the predicted ones, and the on-chip/off-chip parameter memory when the stdout
  reports it.

``format_comparison(dict) -> list[str]`` is the text shown by ``edgekit inspect --compiled`` and
``edgekit convert``.
"""

from __future__ import annotations

from typing import Any

from edgekit.tflite import EDGETPU_CUSTOM_OP, ModelInfo


def actual_cpu_ops(cpu: ModelInfo, compiled: ModelInfo) -> set[int]:
    """Indices of ``cpu``'s ops that the compiler left on the CPU in ``compiled``."""
    left = {
        compiled.main.tensors[t].name
        for op in compiled.main.operators
        if op.opcode != EDGETPU_CUSTOM_OP
        for t in op.outputs
        if t >= 0
    }
    return {
        op.index
        for op in cpu.main.operators
        if any(t >= 0 and cpu.main.tensors[t].name in left for t in op.outputs)
    }


def compare(
    cpu: ModelInfo,
    prediction,
    compiled: ModelInfo | None = None,
    log_text: str | None = None,
) -> dict[str, Any]:
    """Predicted vs actual placement (twin) and summary rows (log); see the module docstring."""
    from edgekit.host.compiler import parse_output  # the log parser (pure Python)

    out: dict[str, Any] = {
        "compiled_model": compiled.path if compiled is not None else None,
        "predicted_cpu_ops": prediction.cpu_ops,
        "actual_cpu_ops": None,
        "agree": None,
        "ops": [],
        "disagreements": [],
        "summary": [],
        "memory": None,
    }
    if compiled is not None:
        actual = actual_cpu_ops(cpu, compiled)
        for o in prediction.ops:
            row = {
                "index": o.index,
                "op": o.op,
                "predicted": "edgetpu" if o.on_tpu else "cpu",
                "actual": "cpu" if o.index in actual else "edgetpu",
                "status": o.status,
            }
            row["agree"] = row["predicted"] == row["actual"]
            out["ops"].append(row)
        out["disagreements"] = [r["index"] for r in out["ops"] if not r["agree"]]
        out["actual_cpu_ops"] = len(actual)
        out["agree"] = not out["disagreements"]
    if log_text:
        report = parse_output(log_text, log_text)
        actual_rows = {(r["operator"], r["status"]): r["count"] for r in report.operators}
        predicted_rows = {(r["operator"], r["status"]): r["count"] for r in prediction.summary()}
        for key in dict.fromkeys([*actual_rows, *predicted_rows]):
            a, p = actual_rows.get(key, 0), predicted_rows.get(key, 0)
            out["summary"].append(
                {"operator": key[0], "status": key[1], "predicted": p, "actual": a}
            )
        if report.operators:
            cpu_rows = sum(n for (_, s), n in actual_rows.items() if s != "Mapped to Edge TPU")
            if out["actual_cpu_ops"] is None:
                out["actual_cpu_ops"] = cpu_rows
            summary_agree = all(r["predicted"] == r["actual"] for r in out["summary"])
            out["agree"] = summary_agree if out["agree"] is None else out["agree"] and (
                summary_agree)  # fmt: skip
        if report.on_chip_bytes is not None:
            out["memory"] = {
                "on_chip_bytes": report.on_chip_bytes,
                "off_chip_bytes": report.off_chip_bytes,
                "on_chip_remaining_bytes": report.on_chip_remaining_bytes,
                "predicted_on_chip_bytes": prediction.memory.get("on_chip_bytes"),
                "predicted_off_chip_bytes": prediction.memory.get("off_chip_bytes"),
            }
    return out


def format_comparison(c: dict[str, Any]) -> list[str]:
    """Text lines for :func:`compare`'s dict: disagreements marked with ``!!``."""
    verdict = {True: "prediction agrees", False: "prediction DISAGREES", None: "nothing to compare"}
    lines = [
        f"Compiler vs prediction: {verdict[c['agree']]} "
        f"(CPU ops: predicted {c['predicted_cpu_ops']}, actual {c['actual_cpu_ops']})"
    ]
    shown = [r for r in c["ops"] if not r["agree"] or r["actual"] == "cpu"]
    if c["ops"] and not shown:  # a header over no rows read like a table that failed to print
        lines.append(f"  all {len(c['ops'])} ops on the Edge TPU, as predicted")
    elif c["ops"]:
        width = max(len(r["op"]) for r in c["ops"])
        lines.append(
            f"  ops on the CPU and disagreements ({len(c['ops']) - len(shown)} more agree on "
            "the Edge TPU):"
        )
        lines.append(f"  {'':2} {'#':>4}  {'op':<{width}}  {'predicted':<9}  actual")
        for r in shown:
            mark = "  " if r["agree"] else "!!"
            lines.append(
                f"  {mark} {r['index']:>4}  {r['op']:<{width}}  {r['predicted']:<9}  {r['actual']}"
            )
    if c["summary"]:
        lines += ["", f"  {'':2} {'Operator':<26} {'Status':<40} {'predicted':>9} {'actual':>6}"]
        for r in c["summary"]:
            mark = "  " if r["predicted"] == r["actual"] else "!!"
            status = r["status"] if len(r["status"]) <= 40 else r["status"][:37] + "..."
            lines.append(
                f"  {mark} {r['operator']:<26} {status:<40} {r['predicted']:>9} {r['actual']:>6}"
            )
    m = c.get("memory")
    if m:
        mib = lambda n: "?" if n is None else f"{n / 2**20:.2f}MiB"  # noqa: E731
        lines.append(
            f"  parameters on-chip: predicted {mib(m['predicted_on_chip_bytes'])}, actual "
            f"{mib(m['on_chip_bytes'])}; off-chip: predicted "
            f"{mib(m['predicted_off_chip_bytes'])}, actual {mib(m['off_chip_bytes'])}"
        )
    return lines
