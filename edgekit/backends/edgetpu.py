"""The Edge TPU backend: libedgetpu through pycoral or a TFLite delegate.

Everything that touches the Edge TPU stack goes through :class:`SystemStack`; tests replace it
with a fake that reproduces libedgetpu's documented behaviour (tests/runtime/runtime_fakes.py),
or point it at stand-in libraries (tests/edgetpu_standin). pycoral and the delegate library are
only imported/loaded when a model is opened on an Edge TPU, and only after the
(interpreter, libedgetpu) pair passed the child-process probe of :mod:`edgekit.backends.probe`.

libedgetpu's failure modes, as seen from Python:
- ``libedgetpu.so.1`` absent: dlopen fails (OSError "cannot open shared object file" from
  ai_edge_litert, ValueError "Failed to load delegate from libedgetpu.so.1" from older runtimes).
- library present but no device, or the device busy/not permitted: ValueError
  "Failed to load delegate from libedgetpu.so.1".
- model compiled for a newer runtime: allocate_tensors fails with "Package requires runtime version
  (14), which is newer than this runtime version (13)".
"""

from __future__ import annotations

import os
import re
from typing import Any, Protocol

from edgekit.backends import devicelock
from edgekit.backends.devices import EdgeTpuDevice, list_edge_tpus, parse_device, select_device
from edgekit.backends.providers import dist_version, find_provider
from edgekit.errors import EdgekitError

LIBRARY = "libedgetpu.so.1"
INSTALL_HINT = (
    "install the libedgetpu built for your interpreter's TensorFlow version (Google's own "
    "package crashes in current interpreters): `edgekit stack` names it, scripts/setup-pi.sh "
    "installs it"
)
CHECKLIST = (
    "check that the Coral is plugged into a USB 3 (blue) port, that `lsusb` shows 1a6e:089a or "
    "18d1:9302, that libedgetpu is installed and your user is in the plugdev group; "
    "run `edgekit doctor`"
)
PCI_CHECKLIST = (
    "check that the M.2/PCIe Coral shows as /dev/apex_0, that gasket-dkms and libedgetpu are "
    "installed and your user is in the apex group; run `edgekit doctor`"
)
_RUNTIME_RE = re.compile(
    r"requires runtime version \((\d+)\), which is newer than this runtime version \((\d+)\)"
)


class EdgeTpuError(EdgekitError):
    """The Edge TPU failed (absent, unopenable, or faulted mid-run). A caller that streams frames
    catches this and calls ``Classifier.reopen()`` after a pause."""


class EdgeTpuStack(Protocol):
    """The hardware boundary. ``make_interpreter`` returns a tf.lite-style interpreter (not yet
    allocated) for a compiled model on ``device`` (a libedgetpu device string or None = first)."""

    provider: str

    def list_devices(self) -> list[EdgeTpuDevice] | None: ...

    def library_problem(self) -> str | None: ...

    def make_interpreter(self, model_path: str, device: str | None, threads: int | None) -> Any: ...


def _google_pycoral() -> Any | None:
    """Google's ``pycoral.utils.edgetpu`` or None. The PyPI package named ``pycoral`` is an
    unrelated project without that module, so importing ``pycoral`` alone proves nothing."""
    try:
        from pycoral.utils import edgetpu  # type: ignore[import-not-found]
    except Exception:  # absent, impostor, or a broken tflite_runtime underneath
        return None
    return edgetpu if hasattr(edgetpu, "make_interpreter") else None


class SystemStack:
    """The real Edge TPU stack of this machine (pycoral if Google's is importable, else the
    libedgetpu delegate through the interpreter provider). ``root`` is where sysfs lives."""

    def __init__(self, root: str | os.PathLike = "/", library: str | os.PathLike | None = None):
        self.root = root
        self.library = library  # None: $EDGEKIT_LIBEDGETPU, else libedgetpu.so.1 (see probe.py)
        self._pycoral = _google_pycoral()
        if self._pycoral is not None:
            runtime = dist_version("tflite-runtime")
            self.provider = f"pycoral {dist_version('pycoral')} (tflite_runtime {runtime})"
        else:
            self.provider = f"{find_provider()} + {LIBRARY}"

    def list_devices(self) -> list[EdgeTpuDevice] | None:
        if self._pycoral is not None:
            # [{'type': 'usb', 'path': '/sys/bus/usb/devices/2-1'}, ...] in libedgetpu's order
            seen: dict[str, int] = {}
            out = []
            for d in self._pycoral.list_edge_tpus():
                kind = d["type"]
                speed = _read_int(os.path.join(str(self.root), d["path"].lstrip("/"), "speed"))
                out.append(EdgeTpuDevice(kind, d["path"], seen.get(kind, 0), speed, True))
                seen[kind] = seen.get(kind, 0) + 1
            return out
        return list_edge_tpus(self.root)

    def library_problem(self) -> str | None:
        # Never dlopen libedgetpu here: a build for another TF version can take this process
        # down. Only look for the file the way dlopen would; the probe child loads it.
        from edgekit.backends.probe import library_spec, resolve_library

        spec = library_spec(self.library)
        return None if resolve_library(spec) else f"{spec}: cannot open shared object file"

    def make_interpreter(self, model_path: str, device: str | None, threads: int | None) -> Any:
        from edgekit.backends.probe import library_spec, resolve_library, verdict

        # Prove the (interpreter, libedgetpu) pair in a child first (cached per pair): a
        # library that segfaults or aborts must not take this process with it.
        v = verdict(self.library, device)
        if not v.ok:
            raise v.error()
        from edgekit.backends.probe import required_runtime_of

        need = required_runtime_of(model_path)  # what convert recorded in the bundle
        if need is not None and v.runtime is not None and v.runtime < need:
            raise explain(RuntimeError(f"Package requires runtime version ({need}), which is "
                                       f"newer than this runtime version ({v.runtime})."),
                          model_path, device or "edgetpu")  # fmt: skip
        if self._pycoral is not None:
            # pycoral.make_interpreter has no thread option; threads only matter for ops the
            # compiler left on the CPU.
            return self._pycoral.make_interpreter(model_path, device=device)
        provider = find_provider()
        options = {"device": device} if device else {}
        library = resolve_library(library_spec(self.library))
        delegate = provider.load_delegate(str(library or LIBRARY), options)
        return provider.interpreter_cls(
            model_path=model_path, experimental_delegates=[delegate], num_threads=threads
        )


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(float(f.read().strip()))
    except (OSError, ValueError):
        return None


def no_device_error(device: str | None, devices: list[EdgeTpuDevice], lib: str | None):
    """The one-line error for "the requested Edge TPU is not there"."""
    if devices:
        names = ", ".join(d.name for d in devices)
        return EdgeTpuError(
            f"no Edge TPU at {device!r}: attached: {names}", "pass one of those with --device"
        )
    extra = " (and libedgetpu is not installed)" if lib else ""
    hint = PCI_CHECKLIST if device and device.startswith("pci") else CHECKLIST
    return EdgeTpuError(f"no Edge TPU found{extra}", hint)


def explain(exc: BaseException, model_path: str, device: str) -> EdgekitError:
    """Translate an exception from libedgetpu/the interpreter into a specific EdgeTpuError."""
    text = str(exc)
    m = _RUNTIME_RE.search(text)
    if m:
        need, have = m.group(1), m.group(2)
        return EdgeTpuError(
            f"{os.path.basename(model_path)} needs Edge TPU runtime {need}, but the installed "
            f"libedgetpu is runtime {have}",
            "install a newer libedgetpu (`edgekit stack` names it, scripts/setup-pi.sh installs "
            f"it), or recompile the model for the old runtime with `edgetpu_compiler -m {have}`",
        )
    if "cannot open shared object" in text or "No such file" in text:
        return EdgeTpuError(f"libedgetpu is not installed ({text.splitlines()[0]})", INSTALL_HINT)
    if "Failed to load delegate" in text:
        return EdgeTpuError(
            f"could not open the Edge TPU {device} (libedgetpu: {text.splitlines()[0]})",
            "is another process using it? unplug and replug it (powered port, short cable); "
            "check permissions (plugdev group, udev rule): run `edgekit doctor`",
        )
    first = text.splitlines()[0] if text else type(exc).__name__
    return EdgeTpuError(
        f"Edge TPU {device} failed on {os.path.basename(model_path)}: {first}",
        "unplug and replug the Coral (it draws up to 900 mA: avoid unpowered hubs); "
        "run `edgekit doctor`",
    )


def open_interpreter(
    stack: EdgeTpuStack, model_path: str, device: str | None, threads: int | None
) -> tuple[Any, str, Any]:
    """Open ``model_path`` (compiled) on the Edge TPU ``device``; returns (allocated interpreter,
    resolved device name such as "usb:0", the held :class:`~edgekit.backends.devicelock.DeviceLock`:
    release it when the interpreter is dropped). Raises EdgeTpuError with the specific cause,
    DeviceBusy if another process owns the device."""
    if device not in (None, "", "auto"):
        parse_device(device)  # validate before touching hardware
    else:
        device = None
    devices = stack.list_devices()
    lib = stack.library_problem()
    chosen = None
    if devices is not None:  # None: no sysfs to look at; let libedgetpu decide
        chosen = select_device(devices, device)
        if chosen is None:
            raise no_device_error(device, devices, lib)
    if lib:
        raise EdgeTpuError(f"libedgetpu is not installed ({lib})", INSTALL_HINT)
    name = chosen.name if chosen else (device or "edgetpu")
    # One process per Edge TPU: a second opener would make libedgetpu abort the first.
    lock = devicelock.acquire(name, chosen.path if chosen else None)
    # Pass libedgetpu the user's own string (":1", "usb"...); it resolves it the same way.
    try:
        interp = stack.make_interpreter(model_path, device, threads)
        interp.allocate_tensors()
        from edgekit.backends.graph_checks import check_graph

        check_graph(interp, model_path)  # EdgekitError: the lock is released below
    except (ValueError, RuntimeError, OSError) as e:
        lock.release()
        raise explain(e, model_path, name) from None
    except BaseException:
        lock.release()
        raise
    return interp, name, lock
