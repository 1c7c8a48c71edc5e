"""Model factories for worker-process tests: module-level functions, so that a spawned worker
can unpickle them and build the model in its own process."""

from __future__ import annotations

import dataclasses
import threading
import time

from edgekit.classify import Classification, Classifier
from edgekit.detect.cascade import Cascade
from edgekit.detect.detector import Detector
from edgekit.detect.records import Detections
from edgekit.errors import EdgekitError
from edgekit.stages import DeviceWork


def standin_classifier(model: str, root: str, device: str = "usb", **kwargs):
    """A Classifier on the Edge TPU at ``device`` through the real SystemStack, whose sysfs is
    the fake tree under ``root`` and whose libedgetpu is whatever stand-in LD_LIBRARY_PATH
    points at (tests/edgetpu_standin). Runs inside the worker process."""
    from edgekit import backends
    from edgekit.backends.edgetpu import SystemStack
    from edgekit.classify import Classifier

    backends.register_backend("edgetpu", backends.EdgeTpuBackend(SystemStack(root=root)))
    return Classifier(model, device=device, **kwargs)


def standin_detector(model: str, root: str, device: str = "usb", **kwargs):
    """:func:`standin_classifier`'s Detector (notices dropped: a stand-in's outputs are not
    what the decoder expects)."""
    from edgekit import backends
    from edgekit.backends.edgetpu import SystemStack

    backends.register_backend("edgetpu", backends.EdgeTpuBackend(SystemStack(root=root)))
    return Detector(model, device=device, on_warning=_quiet, **kwargs)


def standin_cascade(detector: str, classifier: str, root: str, device: str = "usb", **kwargs):
    """:func:`standin_classifier`'s cascade: both models on the one stand-in Edge TPU."""
    from edgekit import backends
    from edgekit.backends.edgetpu import SystemStack
    from edgekit.detect.cascade import open_cascade

    backends.register_backend("edgetpu", backends.EdgeTpuBackend(SystemStack(root=root)))
    return open_cascade(detector, classifier, device=device, on_warning=_quiet, **kwargs)


def _quiet(message: str) -> None:
    pass



@dataclasses.dataclass(frozen=True)
class Noted(Classification):
    """A Classification that says whether the next frame was prepared during its invoke."""

    overlapped: bool = False


class _Overlap:
    """Stages whose invoke of frame n waits (at most 2 s) until frame n+1 was prepared; the
    record says whether that happened: True only when the worker prepares the next frame while
    an invoke runs. The model's own stages otherwise (results unchanged)."""

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
        return (*super().invoke_input(x, preprocess_ms), nxt)

    def finish(self, *out):
        *out, overlapped = out
        return self._note(super().finish(*out), overlapped)


def three_overlapped(worker, frames) -> tuple:
    """Frames 0 and 1 handed over together, then frame 2 once 0 is answered: the three answers.
    With the overlap, frames 0 and 1 find their successor prepared; frame 2 has none."""
    worker.submit(frames[0])
    worker.submit(frames[1])
    first = worker.collect()
    worker.submit(frames[2])
    return first, worker.collect(), worker.collect()


class SlowClassifier(Classifier):
    """A Classifier whose invoke takes at least 15 ms more (records unchanged): slower than a
    frame's decode even on a loaded machine, so a pool's first free worker cannot take every
    frame and each worker gets some."""

    def invoke_input(self, x, preprocess_ms=0.0):
        time.sleep(0.015)
        return super().invoke_input(x, preprocess_ms)


class OverlapProbe(_Overlap, Classifier):
    """A Classifier probe (:class:`_Overlap`): its records are :class:`Noted`."""

    def _note(self, c, overlapped):
        return Noted(c.classes, c.inference_ms, c.preprocess_ms, overlapped)


@dataclasses.dataclass(frozen=True)
class NotedDetections(Detections):
    overlapped: bool = False


class DetectorProbe(_Overlap, Detector):
    """A Detector probe (:class:`_Overlap`): its records are :class:`NotedDetections`."""

    def _note(self, d, overlapped):
        return NotedDetections(d.detections, d.inference_ms, d.preprocess_ms, d.decode_ms,
                               d.image_size, overlapped)  # fmt: skip


class CascadeProbe(Cascade):
    """A cascade (:func:`~edgekit.detect.cascade.open_cascade`) whose records come back as
    ``(record, probe)``, ``probe`` saying what the worker did around that frame:

    ``overlapped``: the detector's invoke of frame n+1 had started when frame n's crop work
    began (the probe waits at most 2 s for it; one request at a time it waits in vain);
    ``concurrent``: the most invokes (detector's and classifier's) ever running at once in
    this process, each held open ``hold_s`` so that two threads invoking together would show;
    ``threads``: the names of the threads that invoked. Frames are counted (1-based) as their
    crop work begins; ``overlapped`` is None for frames not in ``wait_on`` (no wait). Frames in
    ``fail_crops``: the classifier's invoke of their crops raises, as libedgetpu's does on a
    USB error."""

    def __init__(self, detector, classifier, wait_on=(1,), fail_crops=(), hold_s=0.005,
                 **kwargs):  # fmt: skip
        from edgekit.detect.cascade import open_cascade

        inner = open_cascade(detector, classifier, **kwargs)
        super().__init__(inner.detector, inner.classifier, inner.rule)
        self._cond = threading.Condition()
        self._active = self._max_active = self._detected = self._finished = 0
        self._threads: set[str] = set()
        self._wait, self._fail, self._hold = set(wait_on), set(fail_crops), hold_s
        self.detector.invoke_input = self._timed(self.detector.invoke_input, True)
        self.classifier.invoke_input = self._timed(self.classifier.invoke_input, False)

    def _timed(self, invoke, detector: bool):
        def timed(*a):
            with self._cond:
                self._active += 1
                self._max_active = max(self._max_active, self._active)
                self._threads.add(threading.current_thread().name)
                self._detected += detector
                self._cond.notify_all()
            try:
                time.sleep(self._hold)
                return invoke(*a)
            finally:
                with self._cond:
                    self._active -= 1

        return timed

    @property
    def stages(self):
        make_input, invoke_input, finish = super().stages

        def probed_finish(*out):
            with self._cond:
                self._finished += 1
                n = self._finished
                nxt = None
                if n in self._wait:
                    nxt = self._cond.wait_for(lambda: self._detected > n, timeout=2.0)
            step = finish(*out)
            if not isinstance(step, DeviceWork):
                return self._noted(step, nxt)
            run = step.run
            if n in self._fail:
                def run():
                    raise EdgekitError("USB transfer error 5 (probe)", "replug the Coral")
            return DeviceWork(run, lambda outs: self._noted(step.then(outs), nxt))

        return make_input, invoke_input, probed_finish

    def _noted(self, record, overlapped):
        with self._cond:
            probe = {"overlapped": overlapped, "concurrent": self._max_active,
                     "threads": sorted(self._threads)}  # fmt: skip
        return record, probe


class Unstaged:
    """The model ``factory(**kwargs)`` builds, without its ``stages``: serve's worker runs it
    one request at a time, as it ran every detector before (scripts/bench_pipeline.py's
    comparison)."""

    def __init__(self, factory, **kwargs):
        self._model = factory(**kwargs)

    def __getattr__(self, name: str):
        if name == "stages":
            raise AttributeError(name)
        return getattr(self._model, name)
