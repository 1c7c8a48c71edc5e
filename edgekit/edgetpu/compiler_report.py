"""What ``edgetpu_compiler`` 16 prints, turned into a :class:`CompileReport` (pure Python).

Its stdout gives sizes, on-chip / off-chip parameter memory, the number of Edge TPU subgraphs and
op totals; its ``<stem>_edgetpu.log`` (and stdout with ``-s``) the ``Operator  Count  Status``
table, one row per (operator, status). The format is in ../shared/reference/edgetpu.md and in
the real logs of tests/data; :mod:`edgekit.host.compiler` runs the compiler and calls this.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

MAPPED = "Mapped to Edge TPU"
_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
_ROW = re.compile(r"^(\S+)\s+(\d+)\s+(\S.*?)\s*$")


@dataclass
class CompileReport:
    """What the compiler did. Memory in bytes; ``operators`` rows are
    ``{"operator", "count", "status"}`` exactly as its table lists them (one row per operator and
    status); ``ops_tpu``/``ops_cpu`` are its totals (all ops on the TPU when it prints none)."""

    success: bool
    version: str | None = None
    compile_ms: int | None = None
    ops_total: int | None = None
    ops_tpu: int | None = None
    ops_cpu: int | None = None
    subgraphs: int | None = None
    on_chip_bytes: int | None = None
    on_chip_remaining_bytes: int | None = None
    off_chip_bytes: int | None = None
    operators: list[dict[str, Any]] = field(default_factory=list)
    output: str | None = None
    log: str | None = None
    command: list[str] = field(default_factory=list)
    wall_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def cpu_reasons(self) -> dict[str, list[str]]:
        """Operator -> statuses of the rows not mapped to the Edge TPU."""
        out: dict[str, list[str]] = {}
        for row in self.operators:
            if row["status"] != MAPPED:
                out.setdefault(row["operator"], []).append(row["status"])
        return out


def to_bytes(text: str) -> int:
    """``3.00MiB`` / ``41.75KiB`` / ``0.00B`` -> bytes."""
    m = re.fullmatch(r"\s*([\d.]+)\s*(B|KiB|MiB|GiB)\s*", text)
    if not m:
        raise ValueError(f"not a size: {text!r}")
    return int(round(float(m.group(1)) * _UNITS[m.group(2)]))


def parse_table(text: str) -> list[dict[str, Any]]:
    """Rows of every ``Operator Count Status`` table in ``text``."""
    rows: list[dict[str, Any]] = []
    in_table = False
    for line in text.splitlines():
        if re.match(r"^\s*Operator\s+Count\s+Status\s*$", line):
            in_table = True
            continue
        if not in_table or not line.strip():
            continue
        m = _ROW.match(line)
        if m and m.group(1).isupper():
            rows.append({"operator": m.group(1), "count": int(m.group(2)), "status": m.group(3)})
        else:
            in_table = False
    return rows


def parse_output(stdout: str, log_text: str = "") -> CompileReport:
    """Build a report from the compiler's stdout (and its .log for the per-op table)."""

    def grab(pattern: str, text: str = stdout) -> str | None:
        m = re.search(pattern, text, re.MULTILINE)
        return m.group(1).strip() if m else None

    def num(pattern: str) -> int | None:
        v = grab(pattern)
        return int(v) if v is not None else None

    def size(pattern: str) -> int | None:
        v = grab(pattern)
        return to_bytes(v) if v is not None else None

    ms = grab(r"Model compiled successfully in (\d+) ms")
    rows = parse_table(log_text) or parse_table(stdout)
    report = CompileReport(
        success="Compilation succeeded" in stdout or (ms is not None and "failed" not in stdout),
        version=grab(r"Edge TPU Compiler version (\S+)")
        or grab(r"Edge TPU Compiler version (\S+)", log_text),
        compile_ms=int(ms) if ms else None,
        ops_total=num(r"^Total number of operations: (\d+)"),
        ops_tpu=num(r"^Number of operations that will run on Edge TPU: (\d+)"),
        ops_cpu=num(r"^Number of operations that will run on CPU: (\d+)"),
        subgraphs=num(r"^Number of Edge TPU subgraphs: (\d+)"),
        on_chip_bytes=size(r"^On-chip memory used for caching model parameters: (\S+)"),
        on_chip_remaining_bytes=size(
            r"^On-chip memory remaining for caching model parameters: (\S+)"
        ),
        off_chip_bytes=size(
            r"^Off-chip memory used for streaming uncached model parameters: (\S+)"
        ),
        operators=rows,
        output=grab(r"^Output model: (.+)$"),
        log=grab(r"^Operation log: (.+)$"),
    )
    if report.ops_tpu is None and report.ops_total is not None:
        # Without the "not all operations are supported" paragraph, everything was mapped.
        if rows:
            report.ops_tpu = sum(r["count"] for r in rows if r["status"] == MAPPED)
            report.ops_cpu = sum(r["count"] for r in rows if r["status"] != MAPPED)
        else:
            report.ops_tpu, report.ops_cpu = report.ops_total, 0
    return report
