"""Fakes for the one boundary that cannot exist here: libedgetpu and an attached Edge TPU.

They reproduce the documented contract (shared reference edgetpu.md, Coral's docs):
- ``load_delegate('libedgetpu.so.1', {'device': d})`` with no matching device raises
  ``ValueError("Failed to load delegate from libedgetpu.so.1")``;
- a model compiled for a newer runtime fails in allocate_tensors with
  "Package requires runtime version (14), which is newer than this runtime version (13)";
- a working Edge TPU computes exactly what the CPU twin computes (compiled and CPU models give
  identical outputs), so the fake "Edge TPU" runs the real CPU interpreter on the twin.
"""

from __future__ import annotations

from pathlib import Path

from ai_edge_litert.interpreter import Interpreter

from edgekit.backends.devices import EdgeTpuDevice, select_device


def make_sysfs(root: Path, usb=(), apex: int = 0) -> Path:
    """Fake sysfs: ``usb`` is a sequence of (name, vendor, product, speed) rows."""
    base = root / "sys/bus/usb/devices"
    base.mkdir(parents=True, exist_ok=True)
    for name, vendor, product, speed in usb:
        d = base / name
        d.mkdir()
        (d / "idVendor").write_text(vendor + "\n")
        (d / "idProduct").write_text(product + "\n")
        if speed is not None:
            (d / "speed").write_text(f"{speed}\n")
    for i in range(apex):
        (root / "sys/class/apex" / f"apex_{i}").mkdir(parents=True)
    return root


class FakeInterpreter:
    """What libedgetpu's delegate does to a compiled model, on the CPU twin."""

    def __init__(self, model_path: str, fail_invoke_after: int | None = None):
        twin = model_path.replace("_edgetpu.tflite", ".tflite")
        self._i = Interpreter(model_path=twin)
        self._left = fail_invoke_after

    def allocate_tensors(self):
        self._i.allocate_tensors()

    def invoke(self):
        if self._left is not None:
            if self._left <= 0:
                # What pycoral users see when the stick resets mid-run.
                raise RuntimeError("Error in device opening (/sys/bus/usb/devices/2-1)!")
            self._left -= 1
        self._i.invoke()

    def __getattr__(self, name):
        return getattr(self._i, name)


class RuntimeTooOld:
    def __init__(self, *a, **k):
        pass

    def allocate_tensors(self):
        raise RuntimeError(
            "Internal: Unsupported data type in custom op handler: 0Node number 0 "
            "(edgetpu-custom-op) failed to prepare.\nPackage requires runtime version (14), "
            "which is newer than this runtime version (13)."
        )


class FakeStack:
    """An EdgeTpuStack: ``devices`` attached, libedgetpu present unless ``lib_missing``."""

    provider = "fake-libedgetpu 16.0"

    def __init__(self, devices=(), lib_missing=False, runtime=14, model_runtime=14,
                 fail_invoke_after=None, busy=False):  # fmt: skip
        self.devices = list(devices)
        self.lib_missing = lib_missing
        self.runtime, self.model_runtime = runtime, model_runtime
        self.fail_invoke_after = fail_invoke_after
        self.busy = busy
        self.opened: list[tuple[str, str | None]] = []

    def list_devices(self):
        return list(self.devices)

    def library_problem(self):
        return "libedgetpu.so.1: cannot open shared object file" if self.lib_missing else None

    def make_interpreter(self, model_path, device, threads):
        if self.busy or select_device(self.devices, device) is None:
            raise ValueError("Failed to load delegate from libedgetpu.so.1\n")
        self.opened.append((model_path, device))
        if self.model_runtime > self.runtime:
            return RuntimeTooOld()
        return FakeInterpreter(model_path, self.fail_invoke_after)


USB3 = EdgeTpuDevice("usb", "/sys/bus/usb/devices/2-1", 0, 5000, True)
