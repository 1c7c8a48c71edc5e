"""A cascade's frame in stages (:mod:`edgekit.stages`), so that serve's worker keeps its one
Edge TPU busy: the detector's invoke of frame n+1 runs while the host thread decodes frame n and
cuts and preprocesses its crops, and every invoke (the detector's, then the classifier's on each
crop of the frame) runs on the worker's one device thread, one at a time.

    make_input(rgb)      the detector's preprocessing; keeps the frame (a view) for the crops
    invoke_input(x, ms)  the detector's invoke
    finish(out, rgb)     decode + NMS, select the crops, cut and preprocess them -> DeviceWork:
                         the classifier's invokes of those crops on the device, then top-k and
                         the CascadeDetections on the host (the record itself when no crop)

:meth:`edgekit.detect.cascade.Cascade.run` is these stages in one thread, so a frame's result
is the same in serve's worker and in process. The frame is kept until its record is made: in
serve's worker it is the parent's frame slot, which the parent reuses only once the frame is
answered.
"""

from __future__ import annotations

import time

import numpy as np

from edgekit.detect.records import Detections
from edgekit.stages import DeviceWork


class CascadeStages:
    """``stages`` of a :class:`~edgekit.detect.cascade.Cascade` (its detector, classifier and
    CropRule)."""

    def __init__(self, cascade):
        self.cascade = cascade

    def make_input(self, rgb: np.ndarray) -> tuple[tuple, float]:
        x, ms = self.cascade.detector.make_input(rgb)
        return (x, rgb), ms

    def invoke_input(self, x: tuple, preprocess_ms: float = 0.0) -> tuple:
        det_x, rgb = x
        return self.cascade.detector.invoke_input(det_x, preprocess_ms), rgb

    def finish(self, out: tuple, rgb: np.ndarray):
        """The detector's Detections, then its crops' inputs -> DeviceWork (or the record)."""
        from edgekit.detect.cascade import crop, select

        casc = self.cascade
        result = casc.detector.finish(*out)
        chosen = select(result.detections, casc.rule)
        t0 = time.perf_counter_ns()
        inputs = [
            casc.classifier.make_input(np.ascontiguousarray(
                crop(rgb, result.detections[i].box, casc.rule.margin)))
            for i in chosen
        ]  # fmt: skip
        cut_ms = (time.perf_counter_ns() - t0) / 1e6 - sum(ms for _, ms in inputs)
        if not chosen:
            return self._record(result, {}, 0.0)
        classifier = casc.classifier

        def invoke() -> list:
            return [classifier.invoke_input(x, ms) for x, ms in inputs]

        def then(outs: list):
            t1 = time.perf_counter_ns()
            classes = dict(zip(chosen, (classifier.finish(*o) for o in outs)))
            own = cut_ms + (time.perf_counter_ns() - t1) / 1e6
            return self._record(result, classes, own)

        return DeviceWork(invoke, then)

    def _record(self, result: Detections, classes: dict, own_ms: float):
        """``result`` with each classified crop's classes (``classes``: detection index ->
        Classification); ``own_ms``: cutting + top-k, the crops' preprocess times are added."""
        from edgekit.detect.cascade import CascadeDetections, ClassifiedDetection

        out = []
        for i, d in enumerate(result.detections):
            c = classes.get(i)
            out.append(ClassifiedDetection(d.id, d.label, d.score, d.box,
                                           tuple(c.classes) if c is not None else ()))
        classify_ms = sum(c.inference_ms for c in classes.values())
        crop_ms = own_ms + sum(c.preprocess_ms for c in classes.values())
        return CascadeDetections(
            tuple(out), result.inference_ms + classify_ms, result.preprocess_ms,
            result.decode_ms, result.image_size, detect_ms=result.inference_ms,
            classify_ms=classify_ms, crop_ms=max(0.0, crop_ms), crops=len(classes),
        )  # fmt: skip
