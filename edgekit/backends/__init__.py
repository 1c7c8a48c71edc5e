"""THE hardware boundary: open a model on the CPU interpreter or an Edge TPU as a :class:`Runner`.

``open_model(path, device)`` is the one entry point. ``path`` is a bundle directory, a CPU
``.tflite`` or a compiled ``_edgetpu.tflite``; ``device`` is ``auto`` (an Edge TPU if one is
attached, else the CPU with a one-line warning), ``cpu``, or a libedgetpu device string (``usb``,
``usb:N``, ``pci``, ``pci:N``, ``:N``). Decisions, never a silent CPU fallback:

- Edge TPU requested and a compiled model available -> Edge TPU, or a specific EdgeTpuError.
- Edge TPU requested for a model that is NOT compiled -> error: libedgetpu would run every op of it
  on the CPU, so the latency a user measures would be a lie.
- CPU (or auto without an Edge TPU) for a compiled model -> its CPU twin (bundle ``cpu`` model, or
  ``X.tflite`` beside ``X_edgetpu.tflite``) with a one-line warning; without a twin, an error: the
  compiled graph is one ``edgetpu-custom-op`` that only libedgetpu can execute.

Backends are registered by name (:func:`register_backend`): ``cpu`` and ``edgetpu`` built in.
"""

from __future__ import annotations

import logging
import mmap
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from edgekit import limits
from edgekit.backends.devices import EdgeTpuDevice, list_edge_tpus, parse_device, select_device
from edgekit.backends.edgetpu import (
    EdgeTpuError,
    EdgeTpuStack,
    SystemStack,
    no_device_error,
    open_interpreter,
)
from edgekit.backends.graph_checks import check_graph, cpu_load_failure
from edgekit.backends.providers import Provider, find_provider, quiet_native_stderr
from edgekit.backends.runner import Runner
from edgekit.errors import EdgekitError
from edgekit.manifest import Bundle, is_bundle, load_bundle
from edgekit.safeio import open_regular

__all__ = [
    "EdgeTpuDevice", "EdgeTpuError", "ModelFiles", "Provider", "Runner", "available_backends",
    "find_provider", "get_backend", "list_edge_tpus", "open_model", "register_backend",
    "resolve_model",
]  # fmt: skip

log = logging.getLogger("edgekit")
CUSTOM_OP = b"edgetpu-custom-op"


def is_compiled(path: str | os.PathLike) -> bool:
    """True if the .tflite holds an ``edgetpu-custom-op`` (i.e. went through edgetpu_compiler).
    The op name is stored verbatim in the flatbuffer's operator codes."""
    with open(path, "rb") as f:
        try:
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                return m.find(CUSTOM_OP) >= 0
        except ValueError:  # empty file
            return False


@dataclass(frozen=True)
class ModelFiles:
    """The CPU and Edge TPU variants of one model (either may be None). ``compiled_beside`` is an
    ``X_edgetpu.tflite`` found next to an uncompiled ``X.tflite`` (only used in hints)."""

    given: Path
    cpu: Path | None
    edgetpu: Path | None
    bundle: Bundle | None = None
    compiled_beside: Path | None = None


def resolve_model(path: str | os.PathLike) -> ModelFiles:
    """Find the CPU/Edge TPU variants of a bundle dir or a .tflite (see module docstring)."""
    p = Path(path)
    if p.is_dir() or p.name == "edgekit.json":
        b = load_bundle(p)
        return ModelFiles(p, b.cpu_model, b.edgetpu_model, b)
    if not p.exists():
        raise EdgekitError(f"{p}: no such model file or bundle", "check the path")
    with open_regular(p, "model") as f:  # a FIFO or device is refused, never waited on
        head = f.read(8)
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise EdgekitError(
            f"{p}: not a TFLite model", "pass a .tflite file or a bundle from `edgekit convert`"
        )
    bundle = _bundle_holding(p)  # a model file inside a bundle: its manifest and labels apply
    if is_compiled(p):
        twin = p.with_name(p.name.replace("_edgetpu.tflite", ".tflite"))
        return ModelFiles(p, twin if twin != p and twin.is_file() else None, p, bundle)
    twin = p.with_name(p.stem + "_edgetpu.tflite")
    return ModelFiles(p, p, None, bundle, compiled_beside=twin if twin.is_file() else None)


def _bundle_holding(model: Path) -> Bundle | None:
    """The bundle whose edgekit.json names ``model`` (its CPU or Edge TPU file), or None. The
    explicitly given file still decides the device; only preprocessing and labels come from it."""
    if not is_bundle(model.parent):
        return None
    b = load_bundle(model.parent)
    mine = model.resolve()
    if any(f is not None and f.resolve() == mine for f in (b.cpu_model, b.edgetpu_model)):
        return b
    return None


# -- registry -------------------------------------------------------------------------------------
# factory(model_path: str, device: str, threads: int | None) -> Runner
_BACKENDS: dict[str, Callable[..., Runner]] = {}


def register_backend(name: str, factory: Callable[..., Runner]) -> Callable[..., Runner] | None:
    """Register (or replace) a backend; returns the previous factory, so tests can restore it.
    An Edge TPU factory may expose ``.list_devices()`` for ``--device auto``."""
    old = _BACKENDS.get(name)
    _BACKENDS[name] = factory
    return old


def get_backend(name: str) -> Callable[..., Runner]:
    """The registered factory for ``name`` (e.g. to wrap the CPU backend in a new one)."""
    try:
        return _BACKENDS[name]
    except KeyError:
        raise EdgekitError(
            f"no backend named {name!r}", f"known: {', '.join(available_backends())}"
        ) from None


def available_backends() -> tuple[str, ...]:
    return tuple(sorted(_BACKENDS))


def default_cpu_threads() -> int:
    """CPU interpreter threads when the user gives none: the cores this process may use minus
    one, which the camera capture thread needs (a Pi 4: 3 of 4), at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


def _cpu_factory(model_path: str, device: str = "cpu", threads: int | None = None) -> Runner:
    if threads is None:
        threads = default_cpu_threads()
    provider = find_provider()
    try:
        with quiet_native_stderr():
            interp = provider.interpreter_cls(model_path=model_path, num_threads=threads)
            interp.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise cpu_load_failure(model_path, first) from None
    check_graph(interp, model_path)
    return Runner(interp, device="cpu", backend="cpu", provider=str(provider),
                  model_path=model_path, threads=threads)  # fmt: skip


class EdgeTpuBackend:
    """Factory for Edge TPU runners over an :class:`EdgeTpuStack` (the real one by default)."""

    def __init__(self, stack: EdgeTpuStack | None = None):
        self._stack = stack

    @property
    def stack(self) -> EdgeTpuStack:
        if self._stack is None:
            self._stack = SystemStack()
        return self._stack

    def list_devices(self) -> list[EdgeTpuDevice]:
        try:
            return self.stack.list_devices() or []
        except Exception:  # enumeration trouble just means "none found" for auto
            return []

    def require_device(self, device: str | None) -> None:
        """Raise EdgeTpuError if ``device`` is definitely not attached."""
        devices = self.stack.list_devices()
        if devices is not None and select_device(devices, device) is None:
            raise no_device_error(device, devices, self.stack.library_problem())

    def __call__(self, model_path: str, device: str | None, threads: int | None = None) -> Runner:
        interp, name, lock = open_interpreter(self.stack, model_path, device, threads)
        return Runner(interp, device=name, backend="edgetpu", provider=self.stack.provider,
                      model_path=model_path, threads=threads, fault=EdgeTpuError,
                      lock=lock)  # fmt: skip


register_backend("cpu", _cpu_factory)
register_backend("edgetpu", EdgeTpuBackend())


def open_model(
    path: str | os.PathLike,
    device: str = "auto",
    threads: int | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> Runner:
    """Open a bundle/.tflite on ``device`` (see module docstring). ``on_warning`` receives the
    one-line notices (emulation, CPU twin); default: the ``edgekit`` logger."""
    warn = on_warning or log.warning
    threads = limits.threads(threads)  # 10^9 threads segfaults the interpreter: refuse first
    device = (device or "auto").strip().lower()
    from edgekit.backends.segments import open_segments, segment_set

    segments = segment_set(path)  # edgetpu_compiler --num_segments N: one model, N files
    if segments is not None:
        return open_segments(segments, device, threads, _BACKENDS, warn)
    files = resolve_model(path)
    name = Path(path).name
    backend = device.split(":", 1)[0]
    if backend not in ("auto", "cpu", "usb", "pci", "") and backend in _BACKENDS:
        return _BACKENDS[backend](str(_require_cpu_model(files, name)), device, threads)
    if device not in ("auto", "cpu"):
        if "," in device or "*" in device:  # serve's device lists; segments took theirs above
            raise EdgekitError(
                f"{name}: several Edge TPUs ({device!r}) are for `edgekit serve` (one worker per "
                "Coral) and compiled segments",
                "name one device here, e.g. usb:0",
            )
        parse_device(device)  # EdgekitError for a bad string
        if files.edgetpu is None:
            tpu = _BACKENDS["edgetpu"]
            if hasattr(tpu, "require_device"):
                tpu.require_device(device)  # "no Edge TPU found" comes first: it is what to fix
            raise EdgekitError(
                f"{name} is not compiled for the Edge TPU: on {device} every op would run on the "
                "CPU",
                "compile it with edgetpu_compiler or `edgekit convert`"
                + (f", pass {files.compiled_beside.name}" if files.compiled_beside else "")
                + ", or use --device cpu",
            )
        return _BACKENDS["edgetpu"](str(files.edgetpu), device, threads)
    if device == "auto":
        tpu = _BACKENDS["edgetpu"]
        found = tpu.list_devices() if hasattr(tpu, "list_devices") else []
        if found and files.edgetpu is not None:
            return tpu(str(files.edgetpu), None, threads)
        _require_cpu_model(files, name)
        if found:
            warn(f"{name} is not compiled for the Edge TPU: running it on the CPU")
        else:
            n = threads or default_cpu_threads()
            warn(
                "no Edge TPU found: running on the CPU (emulation)" + _twin_note(files)
                + f", {n} thread{'s' if n > 1 else ''}"
                + ("" if threads else " (cores minus one; --threads to change)")
            )  # fmt: skip
    elif _require_cpu_model(files, name) != files.given and files.bundle is None:
        warn(f"running the CPU twin {files.cpu.name} of {name} (emulation)")
    return _BACKENDS["cpu"](str(files.cpu), "cpu", threads)


def _require_cpu_model(files: ModelFiles, name: str) -> Path:
    if files.cpu is None:
        suffix = "_edgetpu.tflite"
        twin = (
            f"no CPU twin {name[: -len(suffix)]}.tflite beside it"
            if name.endswith(suffix)
            else "a CPU twin X.tflite is looked for only beside an X_edgetpu.tflite"
        )
        raise EdgekitError(
            f"{name} is compiled for the Edge TPU and cannot run without one ({twin})",
            "attach a Coral, or pass the uncompiled .tflite or the bundle",
        )
    return files.cpu


def _twin_note(files: ModelFiles) -> str:
    if files.cpu is not None and files.edgetpu == files.given:
        return f" with the CPU twin {files.cpu.name}"
    return ""
