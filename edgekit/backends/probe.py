"""Prove a libedgetpu + interpreter pair in a child process before this process loads it.

Google's libedgetpu 16.0 was built against TensorFlow 2.5 and segfaults inside interpreters built
from TF >= 2.12; a second process opening the same Edge TPU makes libedgetpu abort() with "USB
transfer error 5"; a wedged device hangs. None of that can be caught in-process, so a child
(:mod:`edgekit.backends.probe_child`) loads the library, builds an interpreter on a tiny real
compiled model shipped with edgekit (``edgekit/data/edgetpu``), allocates and invokes it, and the
parent reads how it ended: exit 0, killed by SIGSEGV or SIGABRT, timed out, or a Python error.

:func:`verdict` caches what is a property of the PAIR (it works; it segfaults) under
``$XDG_CACHE_HOME/edgekit/probe.json`` (else ``~/.cache/edgekit``), keyed by the identity of
both files (path, size, mtime, inode) and of the Python executable, so each pair is probed once.
Device states (absent, busy, hung) are never cached. :func:`probe` always runs the child
(``edgekit doctor``).

Which library: an explicit path, else ``$EDGEKIT_LIBEDGETPU``, else ``libedgetpu.so.1`` found as
``dlopen`` would find it (``LD_LIBRARY_PATH``, the ldconfig cache, the default directories).

The pieces: :mod:`~.probe_library` (which library), :mod:`~.probe_verdict` (Verdict and the
diagnosis of the child's end), :mod:`~.probe_cache` (the verdict cache); this module runs the
child and re-exports them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from edgekit.backends.probe_cache import (  # noqa: F401 - the cache's import path
    _cached,
    _read_cache,
    _write_cache,
    cache_key,
    cache_path,
    interpreter_identity,
)
from edgekit.backends.probe_library import (  # noqa: F401 - the library's import path
    ENV,
    LIB_DIRS,
    LIBRARY,
    library_spec,
    resolve_library,
    set_library,
)
from edgekit.backends.probe_verdict import (  # noqa: F401 - Verdict's import path
    CACHEABLE,
    STACK_FIX,
    USB_FIX,
    Verdict,
    _diagnose,
    _lines,
    _text,
)
from edgekit.errors import EdgekitError

PROBE_MODEL = Path(__file__).resolve().parent.parent / "data/edgetpu/split_concat_edgetpu.tflite"
DEFAULT_TIMEOUT = 30.0  # s: Python + interpreter import and the USB firmware upload on a Pi 4


def probe_timeout() -> float:
    """Seconds a probe may take: $EDGEKIT_PROBE_TIMEOUT (1..600), else DEFAULT_TIMEOUT."""
    raw = os.environ.get("EDGEKIT_PROBE_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 1 <= value <= 600:  # also false for NaN
        raise EdgekitError(
            f"EDGEKIT_PROBE_TIMEOUT={raw!r} is not a number of seconds in 1..600",
            "unset it or set e.g. EDGEKIT_PROBE_TIMEOUT=60",
            exit_code=2,
        )
    return value


def verdict(
    library: str | os.PathLike | None = None,
    device: str | None = None,
    timeout: float | None = None,
    use_cache: bool = True,
) -> Verdict:
    """The pair's verdict, from the cache or a fresh :func:`probe` (``timeout`` None:
    :func:`probe_timeout`). Never raises for a bad library: the caller raises
    ``verdict.error()`` when ``not verdict.ok``."""
    timeout = probe_timeout() if timeout is None else timeout
    path = resolve_library(library_spec(library))
    if path is None:
        return probe(library, device, timeout)  # "missing", without a child
    key = cache_key(path)
    if use_cache:
        hit = _cached(_read_cache().get(key))
        if hit is not None:
            return hit
    v = probe(str(path), device, timeout)
    if use_cache and v.status in CACHEABLE:
        _write_cache(key, v)
    return v


def probe(
    library: str | os.PathLike | None = None,
    device: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    model: str | os.PathLike | None = None,
) -> Verdict:
    """Run the child once (no cache) and diagnose how it ended."""
    spec = library_spec(library)
    path = resolve_library(spec)
    if path is None:
        return Verdict(
            "missing", None, f"libedgetpu is not installed ({spec} not found)", STACK_FIX
        )
    model = str(model or PROBE_MODEL)  # "-": load the library only (no delegate, no device)
    cmd = [sys.executable, "-m", "edgekit.backends.probe_child", str(path), model, device or ""]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as e:
        lines = _lines(e.stdout)
        return _diagnose(path, None, lines, _text(e.stderr), timeout)
    return _diagnose(path, proc.returncode, _lines(proc.stdout), proc.stderr, timeout)


def required_runtime_of(model: str | os.PathLike) -> int | None:
    """The Edge TPU runtime version a bundle (or the compiled model of one) needs, from its
    edgekit.json (what `edgekit convert` recorded); None when unknown."""
    p = Path(model)
    manifest = (
        p
        if p.name == "edgekit.json"
        else (p / "edgekit.json" if p.is_dir() else p.parent / "edgekit.json")
    )
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        comp = data.get("compile") or {}
        if p.is_file() and p.suffix == ".tflite" and data["models"].get("edgetpu") != p.name:
            return None  # a manifest beside it, but of another model
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return None
    if not isinstance(comp, dict):
        return None
    need = comp.get("required_runtime")
    if isinstance(need, int) and not isinstance(need, bool):
        return need
    from edgekit.edgetpu.stack import required_runtime

    report = comp.get("report") if isinstance(comp.get("report"), dict) else {}
    m = comp.get("min_runtime")
    return required_runtime(report.get("version"), m if isinstance(m, int) else None)
