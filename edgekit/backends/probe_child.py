"""The child side of :mod:`edgekit.backends.probe`: load libedgetpu, build an interpreter on a
compiled model, allocate and invoke it, and report each stage on stdout as one JSON line.

Run as ``python -m edgekit.backends.probe_child LIBRARY MODEL [DEVICE]``; MODEL ``-`` stops after
the library stage (its version and devices, no delegate: for a machine without an Edge TPU).
This process is the one that may die (SIGSEGV, SIGABRT) or hang: the parent reads how far it
got from the last ``{"stage": ...}`` line it printed. Exit status 0 = every stage passed;
3 = a Python-level error, reported as ``{"error": ..., "stage": ...}``.
"""

from __future__ import annotations

import ctypes
import json
import re
import sys

STAGES = ("library", "delegate", "interpreter", "allocate", "invoke")
_RUNTIME_RE = re.compile(r"RuntimeVersion\((\d+)\)")


def _say(**fields) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()  # the next stage may kill us: what was said must already be out


def _library_facts(path: str) -> dict:
    """edgetpu_version() and edgetpu_list_devices() through ctypes (no interpreter needed)."""
    lib = ctypes.CDLL(path)
    facts: dict = {"version": None, "runtime": None, "devices": None}
    if hasattr(lib, "edgetpu_version"):
        lib.edgetpu_version.restype = ctypes.c_char_p
        text = (lib.edgetpu_version() or b"").decode("utf-8", "replace")
        m = _RUNTIME_RE.search(text)
        facts.update(version=text, runtime=int(m.group(1)) if m else None)
    if hasattr(lib, "edgetpu_list_devices"):

        class Device(ctypes.Structure):  # struct edgetpu_device (edgetpu_c.h)
            _fields_ = [("type", ctypes.c_int), ("path", ctypes.c_char_p)]

        lib.edgetpu_list_devices.restype = ctypes.POINTER(Device)
        lib.edgetpu_list_devices.argtypes = [ctypes.POINTER(ctypes.c_size_t)]
        n = ctypes.c_size_t(0)
        devs = lib.edgetpu_list_devices(ctypes.byref(n))
        facts["devices"] = (
            [
                {
                    "type": "pci" if devs[i].type == 0 else "usb",
                    "path": (devs[i].path or b"").decode("utf-8", "replace"),
                }
                for i in range(n.value)
            ]
            if devs
            else []
        )
        if devs and hasattr(lib, "edgetpu_free_devices"):
            lib.edgetpu_free_devices(devs)
    return facts


def main(argv: list[str]) -> int:
    library, model = argv[0], argv[1]
    device = argv[2] if len(argv) > 2 and argv[2] else None
    stage = "library"
    try:
        _say(stage=stage)
        facts = _library_facts(library)
        _say(stage=stage, done=True, **facts)
        if model == "-":
            _say(stage="done", ok=True)
            return 0

        from edgekit.backends.providers import find_provider

        provider = find_provider()
        _say(stage="delegate", interpreter=str(provider))
        stage = "delegate"
        delegate = provider.load_delegate(library, {"device": device} if device else {})
        stage = "interpreter"
        _say(stage=stage)
        interp = provider.interpreter_cls(model_path=model, experimental_delegates=[delegate])
        stage = "allocate"
        _say(stage=stage)
        interp.allocate_tensors()
        stage = "invoke"
        _say(stage=stage)
        interp.invoke()
        _say(stage="done", ok=True)
        return 0
    except Exception as e:  # everything Python can still report
        text = str(e).strip()
        _say(stage=stage, error=text or type(e).__name__, type=type(e).__name__)
        return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
