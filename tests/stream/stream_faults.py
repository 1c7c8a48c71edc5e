"""Fault injection at the two boundaries that cannot fail on demand here: the frame source
(a camera that disappears) and the Edge TPU backend (a Coral that is unplugged mid-run)."""

from __future__ import annotations

import threading
from pathlib import Path

from edgekit.stream.sources import FrameDecodeError, Source, SourceLost


class FlakySource(Source):
    """Wraps a real source. ``lose_at``: frame numbers (1-based reads) at which the camera is
    lost, after which ``reopen_failures`` open() attempts fail before it comes back.
    ``corrupt_at``: reads that raise FrameDecodeError."""

    def __init__(self, inner: Source, lose_at=(), reopen_failures=1, corrupt_at=()):
        self.inner, self.live, self.name = inner, True, f"flaky:{inner.name}"
        self.fps = inner.fps
        self.lose_at, self.corrupt_at = set(lose_at), set(corrupt_at)
        self.reopen_failures = reopen_failures
        self._failing_opens = 0
        self.reads = 0
        self.injected = {"source_lost": 0, "decode_error": 0}

    def open(self):
        if self._failing_opens > 0:
            self._failing_opens -= 1
            raise SourceLost("injected: camera still unplugged")
        self.inner.open()

    def read(self):
        self.reads += 1
        if self.reads in self.lose_at:
            self._failing_opens = self.reopen_failures
            self.injected["source_lost"] += 1
            raise SourceLost(f"injected: camera lost at read {self.reads}")
        if self.reads in self.corrupt_at:
            self.inner.read()  # consume the frame
            self.injected["decode_error"] += 1
            raise FrameDecodeError(f"injected: corrupt frame at read {self.reads}")
        return self.inner.read()

    def close(self):
        self.inner.close()


class FakeEdgeTpu:
    """An Edge TPU backend for ``edgekit.backends.register_backend("edgetpu", ...)``.

    Reproduces libedgetpu's documented behaviour when a USB Accelerator is unplugged: the
    running interpreter's ``invoke()`` raises RuntimeError, and opening a new interpreter fails
    until the device is back. The model itself runs on the real CPU interpreter (the CPU twin
    of the ``_edgetpu.tflite`` it is given), so results stay real."""

    def __init__(self):
        from edgekit.backends import get_backend

        self.cpu_factory = get_backend("cpu")
        self.plugged = True
        self.opens = 0
        self.fail_invokes = 0  # fail this many invokes (a transient fault), then work again
        self.lock = threading.Lock()

    def list_devices(self):
        from edgekit.backends.devices import EdgeTpuDevice  # noqa: F401 - contract check

        return ["usb:0"] if self.plugged else []

    def __call__(self, model_path, device, threads=None):
        from edgekit.backends import Runner
        from edgekit.backends.edgetpu import EdgeTpuError

        if not self.plugged:
            raise EdgeTpuError("Failed to load delegate from libedgetpu.so.1 (no Edge TPU)")
        self.opens += 1
        cpu_path = str(model_path).replace("_edgetpu.tflite", ".tflite")
        cpu = self.cpu_factory(cpu_path, "cpu", threads)
        return Runner(
            _UnpluggableInterpreter(cpu.interpreter, self),
            device=device or "usb:0",
            backend="edgetpu",
            provider=cpu.provider,
            model_path=str(model_path),
            threads=threads,
            fault=EdgeTpuError,
        )


class _UnpluggableInterpreter:
    """The real CPU interpreter, with invoke() failing as libedgetpu's does while unplugged.
    A plain class (no closure, no cycle): dropped with the runner, freed at once."""

    def __init__(self, real, tpu: FakeEdgeTpu):
        self._real, self._tpu = real, tpu

    def __getattr__(self, name):
        return getattr(self._real, name)

    def invoke(self):
        tpu = self._tpu
        with tpu.lock:
            if not tpu.plugged:
                raise RuntimeError("Failed to invoke: USB transfer error 2 (LIBUSB_ERROR_IO)")
            if tpu.fail_invokes > 0:
                tpu.fail_invokes -= 1
                raise RuntimeError("Failed to invoke: deadline exceeded")
        self._real.invoke()


def installed_fake_tpu():
    """Context manager: the fake Edge TPU registered, the real backend restored after."""
    import contextlib

    from edgekit.backends import register_backend

    @contextlib.contextmanager
    def cm():
        fake = FakeEdgeTpu()
        old = register_backend("edgetpu", fake)
        try:
            yield fake
        finally:
            register_backend("edgetpu", old)

    return cm()


def compiled_model(coral_dir) -> Path:
    return coral_dir / "mobilenet_v1_0.25_128_quant_edgetpu.tflite"
