"""Model factories for worker-process tests: module-level functions, so that a spawned worker
can unpickle them and build the model in its own process."""

from __future__ import annotations

import dataclasses
import threading

from edgekit.classify import Classification, Classifier


def standin_classifier(model: str, root: str, device: str = "usb", **kwargs):
    """A Classifier on the Edge TPU at ``device`` through the real SystemStack, whose sysfs is
    the fake tree under ``root`` and whose libedgetpu is whatever stand-in LD_LIBRARY_PATH
    points at (tests/edgetpu_standin). Runs inside the worker process."""
    from edgekit import backends
    from edgekit.backends.edgetpu import SystemStack
    from edgekit.classify import Classifier

    backends.register_backend("edgetpu", backends.EdgeTpuBackend(SystemStack(root=root)))
    return Classifier(model, device=device, **kwargs)



@dataclasses.dataclass(frozen=True)
class Noted(Classification):
    """A Classification that says whether the next frame was prepared during its invoke."""

    overlapped: bool = False


class OverlapProbe(Classifier):
    """A Classifier whose invoke of frame n waits (at most 2 s) until frame n+1 was prepared,
    and whose records say whether that happened (``overlapped``): True only when the worker
    prepares the next frame while an invoke runs."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self._cond, self._prepared, self._invoked = threading.Condition(), 0, 0

    def make_input(self, rgb):
        with self._cond:
            self._prepared += 1
            self._cond.notify_all()
        return super().make_input(rgb)

    def invoke_input(self, x, preprocess_ms=0.0):
        with self._cond:
            self._invoked += 1
            n = self._invoked
            nxt = self._cond.wait_for(lambda: self._prepared > n, timeout=2.0)
        raw, pre, inf = super().invoke_input(x, preprocess_ms)
        return raw, pre, inf, nxt

    def finish(self, raw, preprocess_ms, inference_ms, overlapped=False):
        c = super().finish(raw, preprocess_ms, inference_ms)
        return Noted(c.classes, c.inference_ms, c.preprocess_ms, overlapped)
