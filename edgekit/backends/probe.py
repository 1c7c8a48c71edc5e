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
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from edgekit.backends.edgetpu import EdgeTpuError
from edgekit.errors import EdgekitError

LIBRARY = "libedgetpu.so.1"
ENV = "EDGEKIT_LIBEDGETPU"
PROBE_MODEL = Path(__file__).resolve().parent.parent / "data/edgetpu/split_concat_edgetpu.tflite"
DEFAULT_TIMEOUT = 30.0  # s: Python + interpreter import and the USB firmware upload on a Pi 4
LIB_DIRS = (
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib/arm-linux-gnueabihf",
    "/usr/lib/arm-linux-gnueabihf",
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/local/lib",
    "/lib",
    "/usr/lib",
)
CACHEABLE = ("ok", "crash")
STACK_FIX = (
    "install the libedgetpu built for this interpreter's TensorFlow version: `edgekit stack` "
    "names the pair and scripts/setup-pi.sh installs it; `edgekit doctor` checks it"
)
USB_FIX = "unplug and replug the Coral (USB 3 port, powered hub, short cable); run `edgekit doctor`"


@dataclass(frozen=True)
class Verdict:
    """How a libedgetpu + interpreter pair fared. ``status``: ok | missing | no-device | crash
    (SIGSEGV) | usb-error (SIGABRT with "USB transfer error 5") | abort | timeout | error.
    ``stage`` is the last stage the child reached (library, delegate, interpreter, allocate,
    invoke, done); ``runtime`` the Edge TPU runtime version edgetpu_version() reported."""

    status: str
    library: str | None
    detail: str
    fix: str = ""
    stage: str | None = None
    version: str | None = None
    runtime: int | None = None
    interpreter: str | None = None
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def error(self) -> EdgeTpuError:
        return EdgeTpuError(self.detail, self.fix or None)

    def to_dict(self) -> dict:
        return asdict(self)


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


def library_spec(explicit: str | os.PathLike | None = None) -> str:
    """The library to use: ``explicit``, else $EDGEKIT_LIBEDGETPU, else libedgetpu.so.1."""
    return str(explicit or os.environ.get(ENV) or LIBRARY)


def set_library(path: str | os.PathLike) -> str:
    """Use ``path`` (a regular file) as libedgetpu in this process and its children (the
    ``--libedgetpu`` option). Returns the absolute path."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        raise EdgekitError(
            f"--libedgetpu {path}: no such file",
            "pass the path of a libedgetpu.so.1 (e.g. /usr/lib/aarch64-linux-gnu/libedgetpu.so.1)",
            exit_code=2,
        ) from None
    if not stat.S_ISREG(st.st_mode):
        raise EdgekitError(
            f"--libedgetpu {path}: not a regular file",
            "pass the path of a libedgetpu.so.1 shared library",
            exit_code=2,
        )
    os.environ[ENV] = str(p.absolute())
    return os.environ[ENV]


def _ldconfig_paths(name: str) -> list[str]:
    for exe in ("/sbin/ldconfig", "/usr/sbin/ldconfig"):
        if os.access(exe, os.X_OK):
            try:
                out = subprocess.run([exe, "-p"], capture_output=True, text=True, timeout=10)
            except (OSError, subprocess.SubprocessError):
                return []
            return [
                ln.rsplit("=> ", 1)[1].strip()
                for ln in out.stdout.splitlines()
                if ln.strip().startswith(name + " ") and "=> " in ln
            ]
    return []


def resolve_library(spec: str | None = None) -> Path | None:
    """The file ``dlopen(spec)`` would load, WITHOUT loading it; None if there is none."""
    spec = library_spec(spec)
    if "/" in spec:
        p = Path(spec)
        return p.absolute() if p.is_file() else None
    dirs = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    candidates = [os.path.join(d, spec) for d in dirs] + _ldconfig_paths(spec)
    candidates += [os.path.join(d, spec) for d in LIB_DIRS]
    for c in candidates:
        if os.path.isfile(c):
            return Path(c).absolute()
    return None


def interpreter_identity() -> tuple[str, str, str]:
    """(module, version, file) of the interpreter the child will use, without importing it."""
    from importlib.util import find_spec

    from edgekit.backends.providers import PROVIDER_ORDER, dist_version

    for name in PROVIDER_ORDER:
        try:
            spec = find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is not None:
            return name, dist_version(name), str(spec.origin or "")
    return "none", "", ""


def _file_id(path: str) -> list:
    try:
        st = os.stat(path)
    except OSError:
        return [path]
    return [os.path.realpath(path), st.st_size, st.st_mtime_ns, st.st_ino]


def cache_key(library: Path) -> str:
    name, version, origin = interpreter_identity()
    ident = [
        os.path.realpath(sys.executable),
        name,
        version,
        _file_id(origin),
        _file_id(str(library)),
    ]
    return json.dumps(ident, separators=(",", ":"))


def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "edgekit" / "probe.json"


def _read_cache() -> dict:
    """The cache, or {} when it is absent, unreadable, not a regular file (a FIFO would block)
    or not what this module wrote."""
    path = cache_path()
    try:
        if not stat.S_ISREG(path.stat().st_mode) or path.stat().st_size > (1 << 20):
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _cached(hit: object) -> Verdict | None:
    """A cache entry back as a Verdict, only if it is one of the cacheable kinds, well formed."""
    if not isinstance(hit, dict) or hit.get("status") not in CACHEABLE:
        return None
    if not all(isinstance(hit.get(k), str) for k in ("detail", "fix")):
        return None
    try:
        v = Verdict(**hit)
    except TypeError:
        return None
    if v.runtime is not None and not isinstance(v.runtime, int):
        return None
    return replace(v, cached=True)


def _write_cache(key: str, v: Verdict) -> None:
    """Best effort: a read-only home only costs a probe next time."""
    from edgekit.atomic import write_text

    data = _read_cache()
    data[key] = {k: val for k, val in v.to_dict().items() if k != "cached"}
    with contextlib.suppress(Exception):
        write_text(cache_path(), json.dumps(data, indent=1) + "\n")


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


def _text(b: bytes | str | None) -> str:
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else (b or "")


def _lines(out: bytes | str | None) -> list[dict]:
    got = []
    for ln in _text(out).splitlines():
        with contextlib.suppress(ValueError):
            d = json.loads(ln)
            if isinstance(d, dict):
                got.append(d)
    return got


def _diagnose(
    path: Path, rc: int | None, lines: list[dict], stderr: str, timeout: float
) -> Verdict:
    facts = next((d for d in lines if d.get("done") and d.get("stage") == "library"), {})
    interp = next((d["interpreter"] for d in lines if "interpreter" in d), None)
    stage = lines[-1].get("stage") if lines else None
    base = dict(
        library=str(path),
        stage=stage,
        version=facts.get("version"),
        runtime=facts.get("runtime"),
        interpreter=interp,
    )
    where = {
        "library": "loading it",
        "delegate": "creating its delegate",
        "interpreter": "applying its delegate to the model",
        "allocate": "allocating the model",
        "invoke": "running the model",
    }.get(stage or "", "starting")
    who = f"libedgetpu {path}" + (f" in {interp}" if interp else "")
    if rc == 0:
        return Verdict("ok", detail=f"{who}: loads, allocates and invokes a compiled model", **base)
    if rc is None:
        return Verdict(
            "timeout",
            detail=f"{who} did not answer within {timeout:g} s (stuck {where})",
            fix=USB_FIX + "; if it persists, reboot",
            **base,
        )
    if rc == -signal.SIGSEGV:
        if stage in ("library", "delegate", "interpreter", "allocate"):
            return Verdict(
                "crash",
                detail=f"{who} crashed (SIGSEGV) {where}: the library "
                "was built for another TensorFlow version than this interpreter",
                fix=STACK_FIX,
                **base,
            )
        return Verdict("crash", detail=f"{who} crashed (SIGSEGV) {where}", fix=USB_FIX, **base)
    if rc == -signal.SIGABRT:
        if "USB transfer error 5" in stderr:
            return Verdict(
                "usb-error",
                detail=f"{who} aborted with 'USB transfer error 5' "
                f"{where}: another process opened the same Edge TPU",
                fix="stop the other process using it (`edgekit doctor` lists it) or "
                "give each process its own Coral (--device usb:N)",
                **base,
            )
        last = next((ln for ln in reversed(stderr.splitlines()) if ln.strip()), "")
        return Verdict(
            "abort",
            detail=f"{who} aborted (SIGABRT) {where}" + (f": {last.strip()[:200]}" if last else ""),
            fix=USB_FIX,
            **base,
        )
    if rc < 0:
        name = signal.Signals(-rc).name if -rc in signal.valid_signals() else str(-rc)
        return Verdict("crash", detail=f"{who} was killed by {name} {where}", fix=USB_FIX, **base)
    err = next((d for d in reversed(lines) if "error" in d), None)
    first = (err["error"].splitlines() or [""])[0] if err else _last_line(stderr)
    if err and "Failed to load delegate" in err["error"]:
        return Verdict(
            "no-device",
            detail=f"libedgetpu could not open the Edge TPU ({first})",
            fix="is it plugged in, and not used by another process? check "
            "permissions (plugdev group, udev rule): run `edgekit doctor`",
            **base,
        )
    if err and err.get("stage") == "library":
        return Verdict("missing", detail=f"cannot load {path} ({first})", fix=STACK_FIX, **base)
    return Verdict("error", detail=f"{who} failed {where}: {first}", fix=USB_FIX, **base)


def _last_line(text: str) -> str:
    return next((ln.strip() for ln in reversed(text.splitlines()) if ln.strip()), "no output")
