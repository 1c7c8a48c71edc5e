"""Model factories for worker-process tests: module-level functions, so that a spawned worker
can unpickle them and build the model in its own process."""

from __future__ import annotations


def standin_classifier(model: str, root: str, device: str = "usb", **kwargs):
    """A Classifier on the Edge TPU at ``device`` through the real SystemStack, whose sysfs is
    the fake tree under ``root`` and whose libedgetpu is whatever stand-in LD_LIBRARY_PATH
    points at (tests/edgetpu_standin). Runs inside the worker process."""
    from edgekit import backends
    from edgekit.backends.edgetpu import SystemStack
    from edgekit.classify import Classifier

    backends.register_backend("edgetpu", backends.EdgeTpuBackend(SystemStack(root=root)))
    return Classifier(model, device=device, **kwargs)
