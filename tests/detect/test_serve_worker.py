"""serve runs a detector in its worker process as it runs a classifier: the model is built in
the child by the same picklable factory (edgekit.tasks.open_task_model), the Detections record
comes back over the pipe; in-process too, with boxes in the frame's own pixels."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from edgekit.stream import serve
from edgekit.stream.config import from_dict
from edgekit.stream.sinks import CallbackSink
from edgekit.tasks import open_task_model

from .conftest import scene


@pytest.mark.parametrize("mode", ["process", "inline"])
def test_serve_detects_in_the_worker_process_and_inline(detect_bundle, tmp_path, mode):
    # the boxes are in the frame's pixels: the capture thread must not pre-resize for a detector
    frames = tmp_path / "frames"
    frames.mkdir()
    img = scene(64, 48, [("red", 32, 8, 48, 24), ("blue", 0, 24, 16, 40)])
    for i in range(3):
        Image.fromarray(img).save(frames / f"{i}.png")
    cfg = from_dict({"model": {"path": str(detect_bundle), "device": "cpu"},
                     "worker": {"mode": mode}, "source": {"uri": str(frames)},
                     "output": {"json_lines": False}})  # fmt: skip
    results = []
    stats = serve.run(cfg, extra_sinks=[CallbackSink(results.append)])
    assert len(results) == 3
    if mode == "process":
        assert stats["worker"]["pid"] not in (None, os.getpid())
    else:
        assert "worker" not in stats
    want = open_task_model(detect_bundle, device="cpu").run(img).to_dict()["detections"]
    got = results[0].to_dict()["detections"]
    assert {d["label"] for d in got} == {"red", "blue"}
    for g, w in zip(sorted(got, key=lambda d: d["label"]), sorted(want, key=lambda d: d["label"])):
        np.testing.assert_allclose(g["box"], w["box"], atol=1e-3)


def _same(a, b) -> bool:
    """Two Detections records alike but for their timings."""
    return (a.detections, a.image_size) == (b.detections, b.image_size)


@pytest.mark.parametrize("which", ["detect_bundle", "stateful_bundle"])
def test_the_worker_decodes_and_prepares_while_the_detector_runs(request, which):
    """In the worker a detector runs in stages like a classifier: frame n+1 is prepared while
    invoke n runs (the probe's invoke waits for it; one request at a time it would wait in
    vain). Records are those of the detector in process, frame for frame (a stateful model's
    carried state too); a failed frame is answered in its place, in submit order."""
    import functools

    from edgekit.detect.detector import Detector
    from edgekit.errors import EdgekitError
    from edgekit.stream.worker import ModelProcess
    from tests.stream.worker_models import DetectorProbe, three_overlapped

    bundle = request.getfixturevalue(which)
    frames = [scene(64, 48, [("red", 32, 8, 48, 24), ("blue", 0, 24, 16, 40)]),
              scene(80, 60, [("green", 8, 8, 40, 40)]), scene(64, 64, [])]  # fmt: skip
    inline = Detector(bundle, device="cpu", threads=1)
    want = [inline.detect(f) for f in frames + frames[:1]]
    worker = ModelProcess(functools.partial(DetectorProbe, bundle, device="cpu", threads=1))
    try:
        first, second, third = three_overlapped(worker, frames)
        assert [first.overlapped, second.overlapped, third.overlapped] == [True, True, False]
        worker.submit(np.zeros((8, 8), np.uint8))  # fails while preparing, before the next
        worker.submit(frames[0])
        with pytest.raises(EdgekitError, match=r"needs an \(H, W, 3\) uint8 RGB array"):
            worker.collect()
        fourth = worker.collect()
    finally:
        worker.close()
    assert len(want[0]) == 2 and len(want[1]) >= 1  # real detections to compare
    for got, w in zip([first, second, third, fourth], want):
        assert _same(got, w), (got, w)
