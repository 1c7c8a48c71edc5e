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
