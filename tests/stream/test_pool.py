"""serve on several Edge TPUs (edgekit.stream.pool): one real worker process per Coral, frames
spread over them and delivered in frame order, one Coral crashing while the other carries on,
both on /metrics and the status page (a real chromium); two frames in flight per worker. The
Corals are a fake sysfs with two USB Accelerators and the stand-in libedgetpu
(tests/edgetpu_standin) told that two are attached, sleeping a fixed time in each invoke."""

from __future__ import annotations

import functools
import json
import re
import threading
import urllib.request

import numpy as np
import pytest

from edgekit.classify import Classifier
from edgekit.errors import EdgekitError
from edgekit.stream import serve
from edgekit.stream.config import from_dict
from edgekit.stream.pool import DevicePool, PipelinedProcess, Reorder, expand_devices
from edgekit.stream.sinks import CallbackSink
from edgekit.stream.sources import OpenCVSource
from tests.edgetpu_standin import edgetpu_standins  # noqa: F401 - the fixture
from tests.runtime.runtime_fakes import make_sysfs

from .conftest import free_port
from .stream_faults import compiled_model
from .test_http import render_page
from .test_worker import FRAMES, my_segments, serve_video, standin  # noqa: F401 - fixture
from .worker_models import SlowClassifier, standin_classifier

TWO = [("2-1", "18d1", "9302", 5000), ("2-2", "18d1", "9302", 5000)]


@pytest.fixture
def two_corals(tmp_path):
    return make_sysfs(tmp_path / "root", usb=TWO)


def pool_on(coral_dir, root, labels_path, devices=("usb:0", "usb:1"), **kw) -> DevicePool:
    factory = functools.partial(standin_classifier, str(compiled_model(coral_dir)), str(root),
                                labels=str(labels_path), top_k=3)  # fmt: skip
    return DevicePool(factory, list(devices), backoff_s=0.05, **kw)


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def test_two_corals_share_the_frames_in_frame_order_and_show_on_metrics_and_the_page(
    standin, two_corals, coral_dir, labels_path, video_avi, tmp_path  # noqa: F811
):
    standin("works", DEVICES=2, INVOKE_MS=15)
    pool = pool_on(coral_dir, two_corals, labels_path)
    pids = [w.pid for w in pool.workers]
    assert len(set(pids)) == 2 and [w.info["device"] for w in pool.workers] == ["usb:0", "usb:1"]
    assert pool.runner.backend == "edgetpu" and pool.runner.device == "usb:0,usb:1"

    port, stop, results, some = free_port(), threading.Event(), [], threading.Event()

    def on_result(r):
        results.append(r)
        if len(results) >= 60:
            some.set()

    cfg = from_dict({"output": {"json_lines": False},
                     "http": {"enabled": True, "listen": f"127.0.0.1:{port}"}})  # fmt: skip
    out: dict = {}

    def run():
        out["stats"] = serve.run(cfg, stop=stop, classifier=pool,
                                 source=OpenCVSource(str(video_avi), loop=True, fps=0),
                                 extra_sinks=[CallbackSink(on_result)])  # fmt: skip

    t = threading.Thread(target=run, daemon=True)
    t.start()
    base = f"http://127.0.0.1:{port}"
    try:
        assert some.wait(60)
        metrics = get(base + "/metrics")
        latest = json.loads(get(base + "/latest"))
        page = render_page(base + "/", tmp_path)
    finally:
        stop.set()
        t.join(20)
        pool.close()
    assert not t.is_alive()
    # every frame, in frame order, although two processes computed them
    frames = [r.frame for r in results]
    assert frames == list(range(1, len(frames) + 1))
    devices = {d["device"]: d for d in out["stats"]["devices"]}
    assert list(devices) == ["usb:0", "usb:1"]
    assert all(d["frames"] > len(frames) / 4 and d["state"] == "running" for d in devices.values())
    assert sorted(d["pid"] for d in devices.values()) == sorted(pids)
    # /metrics and /latest name each device
    for dev in ("usb:0", "usb:1"):
        assert re.search(rf'^edgekit_device_frames_total{{device="{dev}"}} [1-9]\d*$', metrics,
                         re.M), metrics  # fmt: skip
        assert f'edgekit_device_up{{device="{dev}",state="running"}} 1' in metrics
    assert [d["device"] for d in latest["devices"]] == ["usb:0", "usb:1"]
    assert latest["device"] == "usb:0,usb:1" and latest["backend"] == "edgetpu"
    acc = latest["stats"]["accounting"]  # frames in flight on both devices are within bounds
    assert acc["balanced"] and not acc["final"], acc
    # the status page's script drew one row per device
    assert page.returncode == 0, page.stderr[-2000:]
    table = re.search(r'<table id="devices">(.*?)</table>', page.stdout, re.S).group(1)
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)
    assert len(rows) == 3 and "usb:0" in rows[1] and "usb:1" in rows[2]
    assert all("<td>running</td>" in row for row in rows[1:])
    assert my_segments() == []


def test_one_coral_crashing_leaves_the_other_running(
    standin, two_corals, coral_dir, labels_path, video_avi  # noqa: F811
):
    # usb:1's worker segfaults inside every 5th invoke; usb:0 is healthy
    standin("works", DEVICES=2, INVOKE_MS=5, CRASH_DEVICE="usb:1", CRASH_AFTER=4)
    pool = pool_on(coral_dir, two_corals, labels_path, max_restarts=50)
    results, events, stats = serve_video(pool, video_avi)
    crashes = [e for e in events if e.kind == "worker_crashed"]
    assert crashes and all(e.details["device"] == "usb:1" for e in crashes)
    assert all(e.message.startswith("usb:1: inference worker killed by SIGSEGV") for e in crashes)
    assert [e.kind for e in events].count("worker_restarted") == len(crashes)
    frames = [r.frame for r in results]
    assert frames == sorted(set(frames))  # in order, none twice
    # the frame running in each crashed worker is lost, frames given up on while usb:1
    # restarted are counted as late; every other one is delivered
    assert len(frames) + len(crashes) + stats["late_frames"] >= FRAMES
    devices = {d["device"]: d for d in stats["devices"]}
    assert devices["usb:1"]["restarts"] == len(crashes) and devices["usb:0"]["restarts"] == 0
    assert devices["usb:0"]["frames"] > 0 and frames[-1] == FRAMES
    assert stats["events"]["worker_crashed"] == len(crashes) and not stats["degraded"]
    assert my_segments() == []


def test_results_belong_to_their_frames(small_model, labels_path, video_avi):
    """Two CPU workers and the in-process classifier give the same classes for every frame.
    The workers' invoke is slowed (SlowClassifier) so that both get frames: with a fast model a
    loaded machine decodes slower than one worker answers, and the first free worker takes all."""
    factory = functools.partial(SlowClassifier, small_model, labels=labels_path, device="cpu",
                                top_k=3, threads=1)  # fmt: skip
    pool = DevicePool(factory, [None, None])
    results, _, stats = serve_video(pool, video_avi)
    inline = Classifier(small_model, labels=labels_path, device="cpu", top_k=3, threads=1)
    src = OpenCVSource(str(video_avi))
    src.open()
    expected = [inline.classify(src.read()).classes for _ in range(FRAMES)]
    src.close()
    assert [r.frame for r in results] == list(range(1, FRAMES + 1))
    got = [tuple((c["id"], c["score"]) for c in r.classes) for r in results]
    want = [tuple((c.id, round(c.score, 4)) for c in cl) for cl in expected]
    assert got == want
    assert all(d["frames"] > 0 for d in stats["devices"])


def test_two_frames_in_flight_in_one_worker(small_model, labels_path, video_avi):
    factory = functools.partial(Classifier, small_model, labels=labels_path, device="cpu",
                                top_k=3, threads=1)  # fmt: skip
    inline = factory()
    worker = PipelinedProcess(factory, depth=2)
    src = OpenCVSource(str(video_avi))
    src.open()
    frames = [src.read() for _ in range(25)][::10]  # cat, parrot, bird
    src.close()
    try:
        worker.submit(frames[0])
        worker.submit(frames[1])  # queued while the first runs
        with pytest.raises(RuntimeError, match="more than 2 frames in flight"):
            worker.submit(frames[2])
        assert worker.collect().classes == inline.classify(frames[0]).classes
        worker.submit(frames[2])  # reuses the first slot
        assert worker.collect().classes == inline.classify(frames[1]).classes
        assert worker.collect().classes == inline.classify(frames[2]).classes
        assert worker.inflight == 0 and len(my_segments()) == 2
    finally:
        worker.close()
    assert my_segments() == []


def test_reorder_buffer_waits_then_gives_up_on_a_stalled_frame():
    got = []
    order = Reorder(lambda frame, out: got.append(frame), max_ahead=3)
    order.put(2, "f2", "r2")
    order.put(3, "f3", "r3")
    assert got == []  # frame 1 is still running somewhere
    order.put(1, "f1", None)  # skipped (its worker crashed): the others flow
    assert got == ["f2", "f3"]
    for seq in (5, 6, 7, 8):  # frame 4 stalls; more than 3 results wait behind it
        order.put(seq, f"f{seq}", "r")
    assert got == ["f2", "f3", "f5", "f6", "f7", "f8"]
    order.put(4, "f4", "r")  # too late: dropped, never out of order
    assert got[-1] == "f8" and order.late == 1


def test_device_lists(two_corals):
    assert expand_devices("usb:*", two_corals) == ["usb:0", "usb:1"]
    assert expand_devices("*", two_corals) == ["usb:0", "usb:1"]
    assert expand_devices(" usb:0, usb:1 ", two_corals) == ["usb:0", "usb:1"]
    assert expand_devices("usb:1") is None and expand_devices("auto") is None
    for bad, says in [("usb:0,,usb:1", "invalid device list"), ("usb:0,usb:0", "twice"),
                      ("cpu,usb:0", "cannot be part of a device list"),
                      ("usb:0,usb:x", "invalid device"), ("usb:**", "invalid device")]:
        with pytest.raises(EdgekitError, match=says) as e:
            expand_devices(bad, two_corals)
        assert "\n" not in str(e.value)  # fmt: skip
    with pytest.raises(EdgekitError, match="no Edge TPU found for 'pci:\\*'"):
        expand_devices("pci:*", two_corals)


def test_a_busy_coral_stops_the_pool_with_one_line(
    standin, two_corals, coral_dir, labels_path  # noqa: F811
):
    """usb:1 is already held by another pool: the second pool refuses and leaves usb:0 free."""
    standin("works", DEVICES=2)
    first = pool_on(coral_dir, two_corals, labels_path, devices=["usb:1"])
    try:
        with pytest.raises(EdgekitError, match="usb:1 is in use by PID") as e:
            pool_on(coral_dir, two_corals, labels_path)
        assert "\n" not in e.value.message
        again = pool_on(coral_dir, two_corals, labels_path, devices=["usb:0"])  # released
        again.close()
    finally:
        first.close()
    assert np.all([w.pid is None for w in first.workers])
