"""``edgekit compile``: several models through ONE ``edgetpu_compiler`` call (co-compilation),
so that they share the Edge TPU's on-chip parameter cache as the compiler allots it.

Inputs are int8 ``.tflite`` files or bundles (their CPU model; a cascade bundle's carried
classifier, ``classifier/``, is compiled with it, right after it). The compiler writes
``<stem>_edgetpu.tflite`` and ``<stem>_edgetpu.log`` per model into the output folder; its
stdout has one ``Input model:`` block per model (parsed by
:func:`edgekit.edgetpu.cocompile.parse_reports`). Each compiled model must parse and hold an
``edgetpu-custom-op`` (:func:`edgekit.host.compiler.check_compiled`); the parameter caching
the compiled files record (on-chip / streamed bytes, the shared caching token) is read back
from them. A bundle gets its compiled twin and log written into it and its ``edgekit.json``
``compile`` block updated, with ``cocompiled_with`` naming its partners in compiler order.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError
from edgekit.host.compiler import (
    COMPILE_ADVICE,
    OUTPUT_LIMIT,
    check_compiled,
    run_compiler,
)


@dataclass
class CompiledModel:
    """One model of a co-compilation: its input, what was written, the compiler's report
    (a dict, as CompileReport.to_dict()) and the caching read back from the compiled file."""

    source: Path
    bundle: Path | None
    output: Path
    log: Path | None
    report: dict[str, Any]
    caching: dict[str, Any] | None = None
    latency: dict[str, Any] | None = None  # predicted ms per inference, as compiled together

    def to_dict(self) -> dict[str, Any]:
        return {"source": str(self.source), "bundle": str(self.bundle) if self.bundle else None,
                "output": str(self.output), "log": str(self.log) if self.log else None,
                "report": self.report, "caching": self.caching,
                "latency": self.latency}  # fmt: skip


@dataclass
class CoCompileResult:
    models: list[CompiledModel]
    command: list[str]
    wall_s: float
    shared_cache: bool | None = None  # every compiled file carries the same caching token
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"models": [m.to_dict() for m in self.models], "command": self.command,
                "wall_s": self.wall_s, "shared_cache": self.shared_cache,
                "warnings": self.warnings}  # fmt: skip


def _inputs(paths: list[str | os.PathLike]) -> list[tuple[Path, Path | None]]:
    """(int8 model, its bundle or None) per argument; refusals are one line each."""
    from edgekit.backends import is_compiled
    from edgekit.manifest import is_bundle, load_bundle

    out: list[tuple[Path, Path | None]] = []
    given = {Path(p).resolve() for p in paths}
    for p in map(Path, paths):
        if p.is_dir() and is_bundle(p):
            b = load_bundle(p)
            if b.cpu_model is None:
                raise EdgekitError(f"{p}: the bundle has no int8 CPU model to compile",
                                   "re-create it with `edgekit convert`")  # fmt: skip
            out.append((b.cpu_model, p))
            clf = b.cascade_classifier  # a cascade bundle: its classifier comes along, next
            if clf is not None and clf.resolve() not in given:
                out.append((load_bundle(clf).cpu_model, clf))
            continue
        if p.is_dir():
            raise EdgekitError(
                f"{p}: a folder but not an edgekit bundle (no edgekit.json)",
                "pass int8 .tflite files or bundles from `edgekit convert`",
            )
        if not p.is_file():
            raise EdgekitError(f"{p}: no such model file or bundle", "check the path")
        with open(p, "rb") as f:
            head = f.read(8)
        if len(head) < 8 or head[4:8] != b"TFL3":
            raise EdgekitError(
                f"{p}: not a TFLite model",
                "pass int8 .tflite files or bundles from `edgekit convert`",
            )
        if is_compiled(p):
            raise EdgekitError(f"{p} is already compiled for the Edge TPU",
                               "pass its int8 .tflite (the compiler's input) instead")  # fmt: skip
        _readable(p)
        out.append((p, None))
    stems = [m.stem for m, _ in out]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise EdgekitError(
            f"two models named {dup[0]}.tflite: their compiled files would overwrite each other",
            "rename one of them",
        )
    return out


def _readable(path: Path) -> None:
    """A truncated or damaged .tflite is refused here, in words, rather than by the compiler
    (whose "Model could not be parsed" blames the TensorFlow version, and which names the
    temporary link it was given)."""
    from edgekit.tflite import read_model

    read_model(path)  # EdgekitError: "not a TFLite model (corrupt or truncated flatbuffer ...)"


def compile_together(
    compiler: str | os.PathLike,
    models: list[str | os.PathLike],
    out_dir: str | os.PathLike | None = None,
    min_runtime: int | None = None,
    timeout: float = 180.0,
    force: bool = False,
) -> CoCompileResult:
    """Co-compile ``models`` (in this order: the compiler allots the cache in it) with one
    compiler call. Bare models' outputs go to ``out_dir`` (default: beside the first); bundles
    get theirs written into the bundle. An existing ``<stem>_edgetpu.tflite`` of a bare model
    (often the compiled twin it came with) is replaced only with ``force``; nothing is written
    before every compiled model passed its check. Raises EdgekitError with the compiler's
    reason."""
    from edgekit.atomic import write_bytes, write_text
    from edgekit.edgetpu.cocompile import caching, parse_reports
    from edgekit.flatbuffer import Corrupt
    from edgekit.tflite import read_model

    inputs = _inputs(models)
    if not inputs:
        raise EdgekitError("no model given", "pass one or more int8 .tflite files or bundles")
    final = Path(out_dir) if out_dir is not None else inputs[0][0].parent
    for src, bundle in inputs:
        dest = final / f"{src.stem}_edgetpu.tflite"
        if bundle is None and not force and (dest.exists() or dest.is_symlink()):
            raise EdgekitError(
                f"{dest} already exists", "pass --force to replace it, or -o DIR for another folder"
            )
    with tempfile.TemporaryDirectory(prefix="edgekit-compile-") as tmp_s:
        tmp = Path(tmp_s)
        # Symlinks named as the inputs: the compiler names its outputs after them.
        names = []
        for src, _ in inputs:
            link = tmp / "in" / src.name
            link.parent.mkdir(exist_ok=True)
            link.symlink_to(src.resolve())
            names.append(link)
        cmd = [str(compiler), "-s", "-o", str(tmp / "out")]
        if min_runtime is not None:
            cmd += ["-m", str(int(min_runtime))]
        cmd += ["-t", str(max(1, int(round(timeout)))), *map(str, names)]
        stdout, wall = run_compiler(
            cmd, timeout, tmp / "out" / f"{names[0].stem}_edgetpu.log", names[0], on="",
            timeout_hint="raise --timeout, or compile fewer models together",
            fix="reinstall the compiler", advice=COMPILE_ADVICE,
        )  # fmt: skip
        logs = {}
        for n in names:
            log = tmp / "out" / f"{n.stem}_edgetpu.log"
            if log.is_file() and log.stat().st_size > OUTPUT_LIMIT:
                raise EdgekitError(
                    f"edgetpu_compiler wrote more than {OUTPUT_LIMIT // 2**20} MiB to {log.name}"
                    " (a working one writes a few KB)",
                    "reinstall the compiler",
                )
            logs[n.stem] = log.read_text(errors="replace") if log.is_file() else ""
        try:
            reports = {Path(r.output or "").name.replace("_edgetpu.tflite", ""): r
                       for r in parse_reports(stdout)}  # fmt: skip
        except (ValueError, KeyError, IndexError) as e:
            raise EdgekitError(
                f"edgetpu_compiler reported success but its output is not understood ({e})",
                "check the compiler version (edgekit reads v16's output)",
            ) from None
        checked, partners = [], [src.stem for src, _ in inputs]
        for (src, bundle), link in zip(inputs, names):
            compiled = tmp / "out" / f"{link.stem}_edgetpu.tflite"
            report = reports.get(link.stem)
            if report is None or not compiled.is_file():
                raise EdgekitError(
                    f"edgetpu_compiler reported success but wrote no {compiled.name}",
                    "check the compiler's output above; try compiling the models one by one",
                )
            check_compiled(compiled)
            from edgekit.edgetpu.compiler_report import parse_table

            if logs[link.stem]:
                report.operators = parse_table(logs[link.stem]) or report.operators
            try:
                cache = caching(read_model(compiled))
            except (Corrupt, EdgekitError):
                cache = None  # a package layout this reader does not know: the report stands
            checked.append((src, bundle, link, compiled, report, cache))
        results = []
        for src, bundle, link, compiled, report, cache in checked:  # all checked: write them
            dest = bundle if bundle is not None else final
            out = write_bytes(dest / compiled.name, compiled.read_bytes())
            log_out = (write_text(dest / f"{link.stem}_edgetpu.log", logs[link.stem])
                       if logs[link.stem] else None)  # fmt: skip
            report.output, report.log = out.name, log_out.name if log_out else None
            report.command = [Path(cmd[0]).name, *cmd[1:-len(names)], *(n.name for n in names)]
            report.wall_s = round(wall, 3)
            results.append(CompiledModel(src, bundle, out, log_out, report.to_dict(), cache))
            results[-1].latency = _latency(results[-1])
    tokens = [tuple(m.caching["tokens"]) for m in results if m.caching]
    shared = None if len(tokens) < len(results) else len(set(tokens)) == 1
    result = CoCompileResult(results, results[0].report["command"], round(wall, 3), shared)
    for m in results:
        if m.bundle is not None:
            _update_bundle(m, [p for p in partners if p != m.source.stem], min_runtime, result)
    return result


def _latency(m: CompiledModel) -> dict[str, Any] | None:
    """Predicted ms per inference of the model as compiled together (a partner may have taken
    the on-chip cache it had alone: its parameters then stream), as convert records it; None
    when nothing can be said (advice, never a reason to fail)."""
    try:
        from edgekit.edgetpu.latency import latency_of_model
        from edgekit.tflite import read_model

        twin, compiled = read_model(m.source), read_model(m.output)
        if compiled.is_edgetpu_compiled:
            return latency_of_model(compiled, cpu_twin=twin)
        return latency_of_model(twin)
    except Exception:  # advice: the bundle is updated without it
        return None


def _update_bundle(m: CompiledModel, partners: list[str], min_runtime: int | None,
                   result: CoCompileResult) -> None:  # fmt: skip
    """The bundle's manifest names its compiled twin, the compile report and its partners."""
    from edgekit.atomic import write_text
    from edgekit.edgetpu.stack import required_runtime
    from edgekit.manifest import MANIFEST_NAME, load_bundle

    path = m.bundle / MANIFEST_NAME
    d = json.loads(path.read_text(encoding="utf-8"))
    d.setdefault("models", {})
    d["models"]["edgetpu"] = m.output.name
    d["models"]["edgetpu_log"] = m.log.name if m.log else None
    version = m.report.get("version")
    d["compile"] = {
        **(d.get("compile") or {}),
        "status": "compiled",
        "report": m.report,
        "compiler_version": version,
        "min_runtime": min_runtime,
        "required_runtime": required_runtime(version, min_runtime),
        "cocompiled_with": partners,
        "caching": m.caching,
        "latency": m.latency,
    }
    write_text(path, json.dumps(d, indent=2) + "\n")
    load_bundle(m.bundle)  # what was written must load
    if (m.bundle / "edgekit.sig").exists():
        result.warnings.append(f"{m.bundle}: its signature no longer matches: sign it again")

