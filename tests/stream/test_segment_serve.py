"""serve on compiled segments pipelined over two Edge TPUs (edgekit.stream.segment_worker):
load_model gives ONE worker process holding both stand-in Corals (tests/edgetpu_standin, fake
sysfs with two) with three frames in flight; results in frame order through serve's real
pipeline, both devices inside invoke at the same time in that worker, /latest and the final
stats say "pipelined over usb:0,usb:1"; the worker's results are bit-identical to the same
segments run one frame at a time in this process."""

from __future__ import annotations

import functools
import json
import threading
import urllib.request

import numpy as np
import pytest

from edgekit.stream import serve
from edgekit.stream.config import from_dict
from edgekit.stream.pool import DevicePool
from edgekit.stream.sinks import CallbackSink
from edgekit.stream.sources import OpenCVSource
from tests.edgetpu_standin import edgetpu_standins  # noqa: F401 - the fixture
from tests.runtime.runtime_fakes import make_sysfs
from tests.runtime.segment_models import make_segments, standin_segments

from .conftest import free_port
from .test_worker import my_segments, standin  # noqa: F401 - fixture

TWO = [("2-1", "18d1", "9302", 5000), ("2-2", "18d1", "9302", 5000)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_segments")
    return {"cpu": make_segments(root / "cpu"),
            "compiled": make_segments(root / "compiled", compiled=True, twin=False)}  # fmt: skip


@pytest.fixture
def corals(tmp_path, standin, monkeypatch, edgetpu_standins):  # noqa: F811
    """Two stand-in Corals for worker processes (LD_LIBRARY_PATH) and this one
    (EDGEKIT_LIBEDGETPU); returns (sysfs root, trace file)."""
    root = make_sysfs(tmp_path / "root", usb=TWO)
    trace = tmp_path / "trace"
    standin("works", DEVICES=2, TRACE=trace)
    monkeypatch.setenv("EDGEKIT_LIBEDGETPU", str(edgetpu_standins["works"]))
    return root, trace


def busy_at_once(trace, pid: int) -> int:
    events = []
    for line in trace.read_text().splitlines():
        p, device, what, ns = line.split()
        if int(p) == pid:
            events.append((int(ns), 0 if what == "end" else 1, device))
    busy, most = set(), 0
    for _, begin, device in sorted(events):
        (busy.add if begin else busy.discard)(device)
        most = max(most, len(busy))
    return most


def test_the_worker_gives_the_one_at_a_time_results_bit_for_bit(tiny, corals):
    root, _ = corals
    factory = functools.partial(standin_segments, str(tiny["cpu"][0]), str(root), top_k=5)
    rng = np.random.default_rng(4)
    frames = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(15)]
    ref = factory()  # in this process, one frame at a time (the chain), then released
    try:
        want = [ref.run(f).to_dict()["classes"] for f in frames]
    finally:
        ref.close()
    pool = DevicePool(factory, [None], depth=3, backoff_s=0.05)
    try:
        w = pool.workers[0]
        assert w.info["pipeline"] == "pipelined over usb:0,usb:1"
        assert w.info["frames_in_flight"] == 3 and w.info["device"] == "usb:0+usb:1"
        got = []
        for f in frames:
            if w.inflight == w.depth:
                got.append(w.collect().to_dict()["classes"])
            w.submit(f)
        while w.inflight:
            got.append(w.collect().to_dict()["classes"])
        assert got == want
        assert pool.pool_status()["pipeline"] == "pipelined over usb:0,usb:1"
    finally:
        pool.close()
    assert my_segments() == []


def test_serve_pipelines_the_segments_over_both_devices_in_frame_order(
    tiny, corals, monkeypatch, video_avi
):
    root, trace = corals
    monkeypatch.setenv("EDGETPU_STANDIN_INVOKE_MS", "15")
    seg = str(tiny["compiled"][1])
    # serve's own model loading (load_model), with the stand-in sysfs in the worker
    monkeypatch.setattr(serve, "model_factory", lambda config: functools.partial(
        standin_segments, config.model.path, str(root), device=config.model.device))
    port, results, out = free_port(), [], {}
    cfg = from_dict({"model": {"path": seg, "device": "usb:*"},
                     "output": {"json_lines": False},
                     "http": {"enabled": True, "listen": f"127.0.0.1:{port}"}})  # fmt: skip
    model = serve.load_model(cfg)
    assert isinstance(model, DevicePool) and model.depth == 3 and len(model.workers) == 1
    pid = model.workers[0].pid
    some, stop = threading.Event(), threading.Event()

    def on_result(r):
        results.append(r)
        if len(results) == 20:
            some.set()

    def run():
        out["stats"] = serve.run(cfg, stop=stop, classifier=model,
                                 source=OpenCVSource(str(video_avi), loop=True, fps=0),
                                 extra_sinks=[CallbackSink(on_result)])  # fmt: skip

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        assert some.wait(60)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/latest", timeout=10) as r:
            latest = json.loads(r.read().decode())
    finally:
        stop.set()
        t.join(20)
        model.close()
    assert not t.is_alive()
    frames = [r.frame for r in results]
    assert frames == list(range(1, len(frames) + 1))  # every frame, in frame order
    assert latest["pipeline"] == "pipelined over usb:0,usb:1"
    assert latest["frames_in_flight"] == 3 and latest["backend"] == "edgetpu"
    assert out["stats"]["pipeline"] == "pipelined over usb:0,usb:1"
    assert busy_at_once(trace, pid) == 2  # segment 0 on frame n+1 while segment 1 runs frame n
    assert my_segments() == []


def test_a_crash_in_the_pipelined_worker_is_restarted_by_the_watchdog(tiny, corals,
                                                                      monkeypatch, video_avi):
    """libedgetpu segfaults inside segment 1's device (usb:1) at its 7th invoke in each worker:
    the watchdog restarts the worker (both devices reopened: the dead one released its locks),
    the frames in flight are lost, the rest arrive in frame order, still pipelined."""
    from .test_worker import FRAMES, serve_video

    root, _ = corals
    monkeypatch.setenv("EDGETPU_STANDIN_INVOKE_MS", "5")
    monkeypatch.setenv("EDGETPU_STANDIN_CRASH_DEVICE", "usb:1")
    monkeypatch.setenv("EDGETPU_STANDIN_CRASH_AFTER", "6")
    factory = functools.partial(standin_segments, str(tiny["compiled"][0]), str(root))
    pool = DevicePool(factory, [None], depth=3, backoff_s=0.05, max_restarts=50)
    results, events, stats = serve_video(pool, video_avi)
    crashes = [e for e in events if e.kind == "worker_crashed"]
    assert crashes and all("killed by SIGSEGV" in e.message for e in crashes)
    assert [e.kind for e in events].count("worker_restarted") == len(crashes)
    frames = [r.frame for r in results]
    assert frames == sorted(set(frames))  # in order, none twice
    # the frame at the head of the crashed worker is lost; those behind it go to the new one
    assert len(frames) + len(crashes) + stats["late_frames"] >= FRAMES
    assert stats["pipeline"] == "pipelined over usb:0,usb:1"
    assert stats["devices"][0]["restarts"] == len(crashes) and not stats["degraded"]
    assert my_segments() == []


def test_a_hot_reload_from_segments_to_a_one_device_model_keeps_serving(
    tiny, corals, monkeypatch, video_avi, coral_dir
):
    """serve on segments runs a pool's pipeline; reloading a model for one Edge TPU gives it a
    pool of one (a one-frame-at-a-time worker would stop serve: "a reload changed how the model
    runs")."""
    from .test_reload import Served

    root, _ = corals
    monkeypatch.setenv("EDGETPU_STANDIN_INVOKE_MS", "2")
    monkeypatch.setattr(serve, "model_factory", lambda config: functools.partial(
        standin_segments, config.model.path, str(root), device=config.model.device))
    s = Served({"model": {"path": str(tiny["compiled"][0]), "device": "auto", "watch_s": 0}},
               video_avi)  # fmt: skip
    try:
        s.wait(lambda: len(s.results) >= 5, what="first results")
        first = s.started["reload"].resilient.classifier
        assert first.pool_status()["pipeline"] == "pipelined over usb:0,usb:1"
        out = s.started["reload"].reload(str(coral_dir / "mobilenet_v1_0.25_128_quant_edgetpu"
                                             ".tflite"), "test")  # fmt: skip
        assert out.ok, out.message
        n = len(s.results)
        s.wait(lambda: len(s.results) >= n + 5, what="results after the reload")
        now = s.started["reload"].resilient.classifier
        status = now.pool_status()
        assert isinstance(now, DevicePool) and now is not first and "pipeline" not in status
        assert status["device"] == "usb:0" and status["backend"] == "edgetpu"
    finally:
        s.close()
    assert s.error is None, s.error
