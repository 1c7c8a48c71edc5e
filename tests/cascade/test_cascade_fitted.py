"""A cascade cuts its crops from the whole frame, so serve fits no frames for it (its worker
gets whole frames through shared memory, as before); a frame fitted for a plain detector (a
hot reload from a detector to a cascade between the capture and the worker) runs from the
whole frame it carries, in process and in the worker."""

from __future__ import annotations

import functools

from edgekit.detect.cascade import open_cascade
from edgekit.stream import serve
from edgekit.stream.worker import ModelProcess
from tests.cascade.test_worker_cascade import FRAMES


def _same(a, b) -> bool:
    return (a.detections, a.image_size, a.crops) == (b.detections, b.image_size, b.crops)


def test_a_cascade_is_given_whole_frames(detect_bundle, species_bundle):
    kw = dict(device="cpu", threads=1, top_k=2)
    inline = open_cascade(detect_bundle, species_bundle, **kw)
    worker = ModelProcess(functools.partial(open_cascade, str(detect_bundle),
                                            str(species_bundle), **kw))  # fmt: skip
    try:
        assert serve._resizer(inline) is None and serve._resizer(worker) is None
        assert serve._resizer(inline.detector) is inline.detector.fit  # a plain detector's
        fit = inline.detector.fit
        for frame in FRAMES:
            want = inline.run(frame)
            assert _same(inline.run(fit(frame)), want)
            assert _same(worker.run(fit(frame)), want)
        assert want.image_size == (320, 240) and want.crops == 1
    finally:
        worker.close()
        inline.close()
