"""A cascade in serve's worker process keeps its one device busy: the detector's invoke of
frame n+1 runs while frame n's crops are cut and preprocessed, and every invoke of the process
(the detector's and the classifier's on each crop) runs on the worker's one device thread, one
at a time (libedgetpu runs one invoke at a time on a device). Records are the in-process
cascade's; a frame that fails (while preparing, or a crop's invoke) is answered in its place."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from edgekit.detect.cascade import open_cascade
from edgekit.errors import EdgekitError
from edgekit.stream.worker import ModelProcess
from tests.detect.conftest import scene
from tests.stream.test_serve_detect import cell
from tests.stream.worker_models import CascadeProbe

FRAMES = [
    scene(320, 320, [cell("red", 1, 1), cell("green", 2, 3)]),
    scene(320, 320, [cell("blue", 0, 2)]),
    scene(320, 320, []),
    scene(320, 240, [cell("red", 0, 0)]),
]


def _same(a, b) -> bool:
    return (a.detections, a.image_size, a.crops) == (b.detections, b.image_size, b.crops)


def test_a_cascade_in_the_worker_overlaps_and_invokes_on_one_thread(detect_bundle,
                                                                    species_bundle):  # fmt: skip
    kw = dict(device="cpu", threads=1, top_k=2)
    inline = open_cascade(detect_bundle, species_bundle, **kw)
    try:
        want = [inline.run(f) for f in FRAMES]
    finally:
        inline.close()
    assert [w.crops for w in want] == [2, 1, 0, 1]  # crops to classify, on the device too
    assert want[0].detections[0].classes  # the classifier named them
    worker = ModelProcess(functools.partial(CascadeProbe, detect_bundle, species_bundle,
                                            wait_on=(1,), fail_crops=(5,), **kw))  # fmt: skip
    try:
        worker.submit(FRAMES[0])
        worker.submit(FRAMES[1])
        got = [worker.collect()]
        worker.submit(FRAMES[2])
        got += [worker.collect()]
        worker.submit(FRAMES[3])
        got += [worker.collect(), worker.collect()]
        # a frame that fails while preparing, then one whose crop invoke fails (the 5th frame
        # to reach its crops), each answered in its place
        worker.submit(np.zeros((8, 8), np.uint8))
        worker.submit(FRAMES[0])
        with pytest.raises(EdgekitError, match=r"needs an \(H, W, 3\) uint8 RGB array"):
            worker.collect()
        worker.submit(FRAMES[1])
        with pytest.raises(EdgekitError, match="USB transfer error 5"):
            worker.collect()
        got += [worker.collect()]
    finally:
        worker.close()
    records, probes = zip(*got)
    assert probes[0]["overlapped"] is True  # detector n+1 ran while frame n's crops were cut
    for got_one, w in zip(records, want + want[1:2]):
        assert _same(got_one, w), (got_one, w)
    last = probes[-1]
    assert last["concurrent"] == 1, last  # never two invokes at once
    assert last["threads"] == ["edgekit-invoke"], last  # all on the worker's device thread


def test_in_process_the_probe_sees_one_thread_and_no_overlap(detect_bundle, species_bundle):
    """The probe itself: in one thread its wait times out (overlapped False) and the invokes
    run on that thread: what the worker test sees is the worker's doing."""
    casc = CascadeProbe(detect_bundle, species_bundle, wait_on=(1,), device="cpu", threads=1)
    try:
        record, probe = casc.run(FRAMES[0])
    finally:
        casc.close()
    assert record.crops == 2
    assert probe["overlapped"] is False and probe["concurrent"] == 1
    assert probe["threads"] == ["MainThread"]
