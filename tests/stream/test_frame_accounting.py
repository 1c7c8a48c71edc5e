"""Every frame serve reads is accounted for: a result, a drop (replaced by a newer frame), a
failed inference (skipped and reported) or unprocessed at stop; exactly, at the end of a run
with all three happening (a real video played in real time, a real model, failures injected)."""

from __future__ import annotations

import time
import urllib.request

from edgekit.stream import serve
from edgekit.stream.config import from_dict
from edgekit.stream.sinks import CallbackSink
from edgekit.stream.sources import OpenCVSource

from .conftest import free_port


class SlowAndFlaky:
    """The real classifier, 40 ms slower than the 33 ms frame interval (so frames are dropped),
    and every 7th inference fails the way a USB transfer error does (RuntimeError)."""

    def __init__(self, inner):
        self.inner, self.runner, self.calls = inner, inner.runner, 0

    def run(self, rgb):
        self.calls += 1
        time.sleep(0.04)
        if self.calls % 7 == 0:
            raise RuntimeError("injected: USB transfer error")
        return self.inner.classify(rgb)

    def reopen(self, device=None):
        pass


def test_every_frame_is_accounted_for_exactly(video_avi, classifier):
    port = free_port()
    results = []
    cfg = from_dict({"output": {"json_lines": False}, "pipeline": {"max_frames": 30},
                     "source": {"realtime": True, "loop": True},
                     "http": {"enabled": True, "listen": f"127.0.0.1:{port}"}})  # fmt: skip
    live = {}

    def on_result(r):
        results.append(r)
        if len(results) == 15:
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
            live["metrics"] = body.decode()

    stats = serve.run(cfg, classifier=SlowAndFlaky(classifier),
                      source=OpenCVSource(str(video_avi), loop=True),
                      extra_sinks=[CallbackSink(on_result)])  # fmt: skip
    acc = stats["accounting"]
    assert acc["final"] and acc["balanced"] and acc["in_pipeline"] == 0, acc
    assert acc["processed"] == 30 == len(results)
    assert acc["dropped"] > 0 and acc["failed"] >= 4
    assert acc["captured"] == (acc["processed"] + acc["dropped"] + acc["failed"]
                               + acc["unprocessed"])  # fmt: skip
    assert acc["captured"] >= results[-1].frame  # frame indices count reads from 1
    samples = dict(ln.rsplit(" ", 1) for ln in live["metrics"].splitlines() if ln[0] != "#")
    assert int(samples["edgekit_frames_captured_total"]) >= 15
    assert int(samples["edgekit_frames_failed_total"]) >= 2


def test_a_file_stopped_at_max_frames_drops_nothing(video_avi, classifier, small_model,
                                                    labels_path):  # fmt: skip
    """A file waits for the model (back-pressure): no frame of it is ever dropped. Stopped at
    --max-frames, the frame waiting in the slot and the one read behind it are unprocessed;
    the second used to replace the first when the slot closed and count it 'dropped'."""
    for mode in ("inline", "process"):
        cfg = from_dict({"output": {"json_lines": False}, "pipeline": {"max_frames": 25},
                         "model": {"path": str(small_model), "labels": str(labels_path),
                                   "device": "cpu"}, "worker": {"mode": mode}})  # fmt: skip
        model = classifier if mode == "inline" else None
        stats = serve.run(cfg, classifier=model, source=OpenCVSource(str(video_avi)))
        acc = stats["accounting"]
        assert acc["processed"] == 25 and acc["dropped"] == 0, (mode, acc)
        assert acc["final"] and acc["balanced"], (mode, acc)
