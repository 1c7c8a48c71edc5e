"""Several models on one Edge TPU: co-compilation (pure Python, no compiler, no TensorFlow).

``edgetpu_compiler a.tflite b.tflite`` compiles the models together so that their parameters
share the on-chip cache: switching from one to the other then no longer reloads the cache over
USB. Three things live here (evidence in docs/DESIGN.md, "Co-compilation"):

- :func:`parse_reports`: the compiler's stdout for several models (one ``Input model:`` block
  each, after one ``Models compiled successfully in N ms.``) -> one CompileReport per model.
- :func:`caching`: what a compiled model itself says about its parameters. The
  ``edgetpu-custom-op``'s options hold libedgetpu's ``DWN1`` package (executable.fbs of
  google-coral/libedgetpu): a PARAMETER_CACHING executable whose parameters are the bytes
  cached on-chip, an EXECUTION_ONLY one whose parameters stream on every inference, and a
  ``parameter_caching_token`` that co-compiled models share.
- :func:`predict_together`: without the compiler, whether models fit on-chip together, by the
  parameter-memory estimate of :mod:`edgekit.edgetpu.memory`, allotted in the order given.
"""

from __future__ import annotations

import re
from typing import Any

from edgekit.edgetpu.compiler_report import CompileReport, parse_output
from edgekit.edgetpu.memory import ON_CHIP_BYTES, ON_CHIP_MIN_BYTES
from edgekit.flatbuffer import U16, U32, U64, Corrupt, Table, read

_BLOCK = re.compile(r"^Input model: ", re.MULTILINE)
# executable.fbs field slots (google-coral/libedgetpu, executable/executable.fbs)
_PKG_MULTI_EXECUTABLE = 1
_EXE_PARAMETERS, _EXE_TYPE, _EXE_TOKEN = 6, 13, 14
STAND_ALONE, PARAMETER_CACHING, EXECUTION_ONLY = 0, 1, 2


def parse_reports(stdout: str, logs: dict[str, str] | None = None) -> list[CompileReport]:
    """One report per model of a (co-)compilation, in the compiler's order (the order of its
    command line). ``logs`` maps an ``Operation log:`` name (as printed) to that log's text.
    The header (version, ``Model(s) compiled successfully in N ms``) and the final status
    apply to every model."""
    starts = [m.start() for m in _BLOCK.finditer(stdout)]
    if not starts:
        return [parse_output(stdout, "")]
    head, tail = stdout[: starts[0]], _tail(stdout)
    ms = re.search(r"Models? compiled successfully in (\d+) ms", head)
    reports = []
    for a, b in zip(starts, [*starts[1:], len(stdout)]):
        block = stdout[a:b]
        log_name = re.search(r"^Operation log: (.+)$", block, re.MULTILINE)
        log = (logs or {}).get(log_name.group(1).strip(), "") if log_name else ""
        r = parse_output(head + block + tail, log)
        r.compile_ms = int(ms.group(1)) if ms else r.compile_ms
        reports.append(r)
    return reports


def _tail(stdout: str) -> str:
    """The lines after the last block that are about the whole run (success, timeout)."""
    keep = ("Compilation child process", "Compilation succeeded", "Compilation failed")
    return "\n" + "\n".join(ln for ln in stdout.splitlines() if ln.startswith(keep)) + "\n"


def caching(info) -> dict[str, Any] | None:
    """What a compiled model (a :class:`edgekit.tflite.ModelInfo`) caches: ``on_chip_bytes``
    (parameters of its PARAMETER_CACHING executables), ``off_chip_bytes`` (parameters of the
    others, streamed on every inference) and ``tokens`` (parameter-caching tokens: models
    compiled together share one). None when it holds no edgetpu-custom-op; raises
    :class:`edgekit.flatbuffer.Corrupt` for a package it cannot read."""
    ops = info.custom_ops() if callable(getattr(info, "custom_ops", None)) else ()
    ops = [op for op in ops if op.opcode == "edgetpu-custom-op"]
    if not ops:
        return None
    on = off = 0
    tokens: list[int] = []
    for op in ops:
        for kind, params, token in _executables(bytes(op.custom_options or b"")):
            if kind == PARAMETER_CACHING:
                on += params
            else:
                off += params
            if token and token not in tokens:
                tokens.append(token)
    return {"on_chip_bytes": on, "off_chip_bytes": off, "tokens": tokens}


def _executables(options: bytes) -> list[tuple[int, int, int]]:
    """(type, parameter bytes, caching token) of each executable in a custom op's package.
    The options are a flexbuffer map whose payload is the ``DWN1`` Package flatbuffer."""
    at = options.find(b"DWN1")
    if at < 4:
        raise Corrupt("no DWN1 package in the edgetpu-custom-op options")
    pkg_bytes = options[at - 4 :]
    pkg = Table(pkg_bytes, read(pkg_bytes, U32, 0))
    span = pkg.blob(_PKG_MULTI_EXECUTABLE)
    if span is None:
        raise Corrupt("the DWN1 package holds no executables")
    multi = pkg_bytes[span[0] : span[0] + span[1]]
    me = Table(multi, read(multi, U32, 0))
    out = []
    start, n = me._vector(0, 4)
    for k in range(n):
        p = start + 4 * k
        s = p + read(multi, U32, p)
        size = read(multi, U32, s)
        exe = multi[s + 4 : s + 4 + size]
        t = Table(exe, read(exe, U32, 0))
        params = t.blob(_EXE_PARAMETERS)
        out.append((t.scalar(_EXE_TYPE, U16, STAND_ALONE), params[1] if params else 0,
                    t.scalar(_EXE_TOKEN, U64, 0)))  # fmt: skip
    return out


def predict_together(models: list[tuple[str, int]]) -> dict[str, Any]:
    """Whether models co-compiled in this order fit the on-chip cache together.

    ``models`` are (name, predicted parameter bytes) in command-line order. The cache (~7.7 MiB,
    :data:`edgekit.edgetpu.memory.ON_CHIP_BYTES`) is allotted in that order: each model gets
    what it needs of what is left, and what does not fit streams on every inference (Coral's
    documentation; compiler 15 in google-coral/edgetpu issue 518). ``fits`` is certain only
    in the sense of the estimate (a few % off); when the total is above the cache, compiler
    16 has been seen to split the cache differently (DESIGN), so ``streams`` names the models
    the in-order rule predicts to stream and ``streamed_bytes`` the total that must."""
    left, rows = ON_CHIP_BYTES, []
    for name, need in models:
        on = min(need, left)
        left -= on
        rows.append({"model": name, "parameters_bytes": need, "on_chip_bytes": on,
                     "off_chip_bytes": need - on})  # fmt: skip
    total = sum(need for _, need in models)
    return {
        "models": rows,
        "parameters_bytes": total,
        "on_chip_capacity_bytes": ON_CHIP_BYTES,
        "fits": total <= ON_CHIP_BYTES,
        "may_stream": ON_CHIP_MIN_BYTES < total <= ON_CHIP_BYTES,
        "streamed_bytes": max(0, total - ON_CHIP_BYTES),
        "streams": [r["model"] for r in rows if r["off_chip_bytes"] > 0],
    }


def together(paths: list[str]) -> dict[str, Any]:
    """``inspect A --with B``: each model's parameter bytes (predicted for an int8 model, read
    from the executables of a compiled one) and :func:`predict_together` in this order; for
    compiled models also whether they were co-compiled together (one shared caching token)."""
    from pathlib import Path

    from edgekit.backends import resolve_model
    from edgekit.edgetpu.mapping import predict
    from edgekit.errors import EdgekitError
    from edgekit.tflite import read_model

    real = [Path(p).resolve() for p in paths]
    twice = next((p for p, r in zip(paths, real) if real.count(r) > 1), None)
    if twice is not None:  # the compiler takes a model once (its output names would collide)
        raise EdgekitError(f"{twice} is given twice",
                           "--with takes the other models that share the Edge TPU")  # fmt: skip
    sizes, caches = [], []
    # Ultralytics names every export model_edgetpu.tflite: rows need a name that tells them
    # apart, and caches go by position (keyed by file name, the second model's figures landed
    # on the first's row and "Compiled together" was never said).
    names = [Path(p).name for p in paths]
    names = [str(p) if names.count(n) > 1 else n for p, n in zip(paths, names)]
    for p, name in zip(paths, names):
        files = resolve_model(p)
        path = files.cpu or files.edgetpu if files.bundle is not None else Path(p)
        info = read_model(path)
        cache = caching(info)
        caches.append(cache)
        if cache is not None:
            sizes.append((name, cache["on_chip_bytes"] + cache["off_chip_bytes"]))
        else:
            sizes.append((name, predict(info).memory["parameters_bytes"]))
    out = predict_together(sizes)
    for row, c in zip(out["models"], caches):  # a compiled model: what its compiler allotted
        if c is not None:
            row.update(on_chip_bytes=c["on_chip_bytes"], off_chip_bytes=c["off_chip_bytes"],
                       as_compiled=True)  # fmt: skip
    compiled = [c for c in caches if c is not None]
    if compiled:
        out["compiled"] = {n: c for n, c in zip(names, caches) if c is not None}
        if len(compiled) == len(paths):
            tokens = {tuple(c["tokens"]) for c in compiled}
            out["cocompiled_together"] = len(tokens) == 1
            out["streamed_as_compiled_bytes"] = sum(c["off_chip_bytes"] for c in compiled)
    return out


def format_together(r: dict[str, Any]) -> str:
    mib = lambda n: f"{n / 2**20:.2f} MiB"  # noqa: E731
    lines = [f"On one Edge TPU, in this order (cache {mib(r['on_chip_capacity_bytes'])}):"]
    for m in r["models"]:
        lines.append(f"  {m['model']}: parameters {mib(m['parameters_bytes'])}, on-chip "
                     f"{mib(m['on_chip_bytes'])}, streamed {mib(m['off_chip_bytes'])}"
                     + (" (as compiled)" if m.get("as_compiled") else ""))  # fmt: skip
    total = mib(r["parameters_bytes"])
    if r.get("streamed_as_compiled_bytes"):
        lines.append(f"As compiled, {mib(r['streamed_as_compiled_bytes'])} stream every "
                     "inference (the cache went to models compiled with them, or did not "
                     "hold them all)")  # fmt: skip
    elif r["fits"]:
        lines.append(f"Fit on-chip together ({total})"
                     + ("; activations of large inputs may take part of the cache"
                        if r["may_stream"] else ""))  # fmt: skip
    else:
        lines.append(f"Do not fit together ({total}): {mib(r['streamed_bytes'])} stream every "
                     f"inference, from {', '.join(r['streams'])} (the compiler fills the cache "
                     "in model order; put the model that runs most often first)")  # fmt: skip
    if "cocompiled_together" in r:
        lines.append("Compiled together: "
                     + ("yes (one shared parameter-caching token)" if r["cocompiled_together"]
                        else "no (each reloads the cache when the other ran): co-compile them "
                        "with `edgekit compile`"))  # fmt: skip
    return "\n".join(lines)
