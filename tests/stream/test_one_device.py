"""serve on ONE Edge TPU as serve builds it (serve.load_model with ``[model] device = "usb"``):
the worker keeps two frames, so the device finds its next frame waiting when an invoke ends, and
every descriptor and shared-memory segment is released when serve stops, also while a device
thread still waits for a hung worker, after worker restarts and hot reloads. The Coral is a fake
sysfs and the stand-in libedgetpu (tests/edgetpu_standin); descriptors are counted in
/proc/self/fd with the garbage collector off (a leak must not hide until a collection)."""

from __future__ import annotations

import functools
import gc
import os
import threading
import time
from multiprocessing import resource_tracker

import numpy as np
import pytest

from edgekit.stream import serve
from edgekit.stream.config import from_dict
from edgekit.stream.sinks import CallbackSink
from edgekit.stream.sources import OpenCVSource
from tests.edgetpu_standin import edgetpu_standins  # noqa: F401 - the fixture
from tests.runtime.runtime_fakes import make_sysfs

from .bundles import make_bundle
from .stream_faults import compiled_model
from .test_pool import TWO
from .test_worker import FRAMES, my_segments, standin  # noqa: F401 - fixture
from .worker_models import standin_classifier


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
def corals(tmp_path):
    return make_sysfs(tmp_path / "root", usb=TWO)


@pytest.fixture
def serve_standin(monkeypatch, corals):
    """serve's own model factory, pointed at the stand-in on the fake Corals: load_model and
    the hot reload build exactly what serve builds, on the stand-in."""

    def factory(config):
        return functools.partial(standin_classifier, str(config.model.path), str(corals),
                                 labels=config.model.labels or None, top_k=1)  # fmt: skip

    monkeypatch.setattr(serve, "model_factory", factory)
    return factory


def run_serve(cfg, model, source, on_result=None, on_event=None, on_start=None,
              stop=None) -> dict:  # fmt: skip
    sink = CallbackSink(on_result or (lambda r: None), on_event or (lambda e: None))
    try:
        return serve.run(cfg, stop=stop, classifier=model, source=source, extra_sinks=[sink],
                         on_start=on_start)  # fmt: skip
    finally:
        model.close()


def test_one_device_worker_holds_two_frames(standin, serve_standin, coral_dir, labels_path,  # noqa: F811
                                            video_avi):  # fmt: skip
    """The second shared-memory slot exists only when a frame is handed over while the one
    before it is still in the worker (the lowest free slot is taken: one at a time uses one)."""
    standin("works", DEVICES=2, INVOKE_MS=20)  # the device is the bottleneck
    cfg = from_dict({"model": {"path": str(compiled_model(coral_dir)), "device": "usb",
                               "labels": str(labels_path)},
                     "output": {"json_lines": False}})  # fmt: skip
    model = serve.load_model(cfg)
    slots, results = set(), []

    def on_result(r):
        results.append(r.frame)
        slots.update(my_segments())

    stats = run_serve(cfg, model, OpenCVSource(str(video_avi)), on_result)
    assert len(slots) == 2, slots  # frame n+1 was in the worker while frame n ran
    assert results == list(range(1, FRAMES + 1))  # every frame, in frame order
    assert stats["backend"] == "edgetpu" and stats["frames_in_flight"] == 2
    (dev,) = stats["devices"]
    assert dev["frames"] == FRAMES and dev["state"] == "running"
    assert stats["worker"]["pid"] not in (None, os.getpid())
    assert my_segments() == []


@pytest.mark.parametrize("device", ["usb", "usb:0,usb:1"])
def test_stop_while_a_worker_hangs_releases_every_descriptor(
    standin, serve_standin, coral_dir, labels_path, video_avi, device  # noqa: F811
):
    """serve stops while its device threads wait for hung workers (a long watchdog): stopping
    kills them, the threads end, and nothing they held stays open."""
    devices = device.count(",") + 1
    standin("works", DEVICES=2, HANG_AFTER=4)  # each worker hangs in its 5th invoke
    cfg = from_dict({"model": {"path": str(compiled_model(coral_dir)), "device": device,
                               "labels": str(labels_path)},
                     "worker": {"hang_timeout_s": 120.0},
                     "output": {"json_lines": False}})  # fmt: skip
    resource_tracker.ensure_running()  # started once per process, kept: not a leak
    stop, hung_events = threading.Event(), []
    count = [0]

    def on_result(r):
        count[0] += 1
        if count[0] >= 4 * devices:  # every worker's next invoke hangs
            stop.set()

    gc.disable()
    try:
        before = open_fds()
        stats = run_serve(cfg, serve.load_model(cfg), OpenCVSource(str(video_avi), loop=True),
                          on_result, lambda e: hung_events.append(e.kind), stop=stop)
        after = open_fds()
    finally:
        gc.enable()
    assert stats["frames"] == 4 * devices and "worker_hung" not in hung_events
    assert after - before == set(), f"{len(after - before)} descriptors left open"
    assert my_segments() == []
    acc = stats["accounting"]
    assert acc["final"] and acc["balanced"], acc


def test_restarts_and_reloads_leave_no_descriptor(standin, serve_standin, tmp_path, video_avi,  # noqa: F811
                                                  ):  # fmt: skip
    """A worker crash (restart), two hot reloads on the Edge TPU (the old worker stopped, a new
    one started) and the stop: the descriptors afterwards are those before."""
    standin("works", DEVICES=2, CRASH_AFTER=6)
    a, b = (make_bundle(tmp_path / v, v, edgetpu=True) for v in "ab")
    cfg = from_dict({"model": {"path": str(a), "device": "usb"},
                     "worker": {"hang_timeout_s": 5.0},
                     "output": {"json_lines": False}})  # fmt: skip
    resource_tracker.ensure_running()
    stop, events, labels = threading.Event(), [], []
    started: dict = {}
    steps = iter([(b, "b:"), (a, "a:")])
    want = ["a:"]

    def on_event(e):
        events.append(e.kind)

    def on_result(r):
        labels.append(r.classes[0]["label"][:2])
        if "worker_restarted" not in events or labels[-1] != want[-1]:
            return
        nxt = next(steps, None)
        if nxt is None:
            stop.set()
        else:  # the reload thread does the work; results go on meanwhile
            want.append(nxt[1])
            started["reload"].request(str(nxt[0]), "test")

    gc.disable()
    try:
        before = open_fds()
        stats = run_serve(cfg, serve.load_model(cfg), OpenCVSource(str(video_avi), loop=True),
                          on_result, on_event, started.update, stop)
        after = open_fds()
    finally:
        gc.enable()
    assert events.count("model_reloaded") == 2 and "worker_restarted" in events, events
    assert stats["backend"] == "edgetpu" and stats["devices"][0]["backend"] == "edgetpu"
    assert after - before == set(), f"{len(after - before)} descriptors left open"
    assert my_segments() == []
    acc = stats["accounting"]
    assert acc["final"] and acc["balanced"], acc


def test_the_worker_prepares_the_next_frame_while_one_runs(small_model, labels_path,
                                                           video_avi):  # fmt: skip
    """In the worker, frame n+1 is prepared while invoke n runs (the probe's invoke waits for
    it; one frame at a time it would wait in vain); answers, a failed frame's too, come back in
    submit order."""
    from edgekit.classify import Classifier
    from edgekit.errors import EdgekitError
    from edgekit.stream.worker import ModelProcess

    from .worker_models import OverlapProbe, three_overlapped

    kw = dict(labels=str(labels_path), device="cpu", top_k=3, threads=1)
    worker = ModelProcess(functools.partial(OverlapProbe, small_model, **kw))
    inline = Classifier(small_model, **kw)
    src = OpenCVSource(str(video_avi))
    src.open()
    frames = [src.read() for _ in range(25)][::10]  # cat, parrot, bird
    src.close()
    try:
        first, second, third = three_overlapped(worker, frames)
        assert [first.overlapped, second.overlapped, third.overlapped] == [True, True, False]
        assert [r.classes for r in (first, second, third)] == [
            inline.classify(f).classes for f in frames]  # fmt: skip
        worker.submit(np.zeros((8, 8), np.uint8))  # fails while preparing, before the next
        worker.submit(frames[0])
        with pytest.raises(EdgekitError, match=r"needs an \(H, W, 3\) uint8 RGB array"):
            worker.collect()
        assert worker.collect().classes == inline.classify(frames[0]).classes
    finally:
        worker.close()
    assert my_segments() == []


def test_a_finished_file_waits_for_the_result_in_hand_over(small_model, labels_path, video_avi,
                                                           monkeypatch):  # fmt: skip
    """Every frame of a finite file gives a result, also when the device thread is slow to hand
    the last answer to the reorder buffer (a busy machine: the frame has left the worker but is
    not yet in the buffer, and the file has ended). serve must not call that 'idle' and stop:
    it lost the last frame of a 40-frame file as 'unprocessed' once in CI."""
    from edgekit.stream import pool_pipeline

    class SlowHandOver(pool_pipeline.Reorder):
        def put(self, seq, frame, out):
            time.sleep(0.3)  # between the pop from the device's frames and the buffer
            super().put(seq, frame, out)

    monkeypatch.setattr(pool_pipeline, "Reorder", SlowHandOver)
    cfg = from_dict({"model": {"path": str(small_model), "device": "cpu",
                               "labels": str(labels_path)},
                     "worker": {"mode": "process"}, "pipeline": {"max_frames": 0},
                     "output": {"json_lines": False}})  # fmt: skip
    model = serve.load_model(cfg)
    results = []
    source = OpenCVSource(str(video_avi))
    stats = run_serve(cfg, model, source, lambda r: results.append(r.frame))
    assert results == list(range(1, 41))
    acc = stats["accounting"]
    assert acc["processed"] == 40 and acc["unprocessed"] == 0 and acc["balanced"], acc
