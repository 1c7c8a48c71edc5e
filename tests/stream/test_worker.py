"""serve's inference worker process (edgekit.stream.worker): real spawned workers, the real
interpreter, the real video file, and stand-in libedgetpu shared libraries (tests/edgetpu_standin)
that really segfault or hang inside invoke() after N frames."""

from __future__ import annotations

import functools
import glob
import json
import os
import re
import signal
import time

import numpy as np
import pytest

from edgekit.classify import Classifier
from edgekit.errors import EdgekitError
from edgekit.stream import serve
from edgekit.stream.config import from_dict
from edgekit.stream.pipeline import SkipFrame
from edgekit.stream.sinks import CallbackSink
from edgekit.stream.sources import OpenCVSource
from edgekit.stream.worker import ModelProcess
from tests.edgetpu_standin import edgetpu_standins  # noqa: F401 - the fixture
from tests.runtime.runtime_fakes import make_sysfs

from .stream_faults import compiled_model
from .test_mqtt import broker  # noqa: F401 - the fixture (a real mosquitto)
from .worker_models import standin_classifier

FRAMES = 40  # the video_avi fixture


def my_segments() -> list[str]:
    return glob.glob(f"/dev/shm/edgekit-{os.getpid()}-*")


@pytest.fixture
def coral_root(tmp_path):
    """A fake sysfs with one Coral USB Accelerator on a USB 3 port."""
    return make_sysfs(tmp_path / "root", usb=[("2-1", "18d1", "9302", 5000)])


@pytest.fixture
def standin(edgetpu_standins, monkeypatch, tmp_path):  # noqa: F811 - the fixture
    """use(mode, **env): the worker processes started after this load that stand-in."""

    def use(mode="works", **env):
        monkeypatch.setenv("LD_LIBRARY_PATH", str(edgetpu_standins[mode].parent))
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the probe's verdicts
        for key, value in env.items():
            monkeypatch.setenv(f"EDGETPU_STANDIN_{key}", str(value))

    return use


def tpu_worker(coral_dir, coral_root, labels_path, **kw) -> ModelProcess:
    factory = functools.partial(standin_classifier, str(compiled_model(coral_dir)),
                                str(coral_root), labels=str(labels_path), top_k=3)  # fmt: skip
    return ModelProcess(factory, backoff_s=0.05, **kw)


def serve_video(model, video, **config) -> tuple[list, list, dict]:
    results, events = [], []
    cfg = from_dict({"output": {"json_lines": False}, **config})
    sink = CallbackSink(results.append, events.append)
    try:
        stats = serve.run(cfg, classifier=model, source=OpenCVSource(str(video)),
                          extra_sinks=[sink])  # fmt: skip
    finally:
        model.close()
    return results, events, stats


def test_worker_gives_the_in_process_results(small_model, labels_path, video_avi):
    factory = functools.partial(Classifier, small_model, labels=labels_path, device="cpu",
                                top_k=3, threads=1)  # fmt: skip
    worker = ModelProcess(factory)
    inline = factory()
    try:
        assert worker.info["backend"] == "cpu" and worker.input_size == (128, 128)
        assert worker.pid != os.getpid()
        src = OpenCVSource(str(video_avi))
        src.open()
        for _ in range(3):
            rgb = src.read()
            assert worker.run(rgb).classes == inline.classify(rgb).classes
        src.close()
        # a bigger frame regrows the shared slot; a smaller one reuses it
        big = np.zeros((720, 1280, 3), np.uint8)
        assert worker.run(big).classes == inline.classify(big).classes
        assert worker.run(rgb[:100, :90]).classes == inline.classify(rgb[:100, :90]).classes
        assert len(my_segments()) == 1
        # the model's own errors come back as the same one-line EdgekitError
        with pytest.raises(EdgekitError, match=r"needs an \(H, W, 3\) uint8 RGB array"):
            worker.run(np.zeros((8, 8), np.uint8))
    finally:
        worker.close()
    assert my_segments() == []
    assert worker.pid is None


def test_serve_keeps_producing_results_through_worker_segfaults(
    standin, coral_dir, coral_root, labels_path, video_avi
):
    standin("works", CRASH_AFTER=12)  # each worker segfaults inside its 13th invoke
    worker = tpu_worker(coral_dir, coral_root, labels_path)
    first_pid = worker.pid
    assert worker.info["backend"] == "edgetpu" and worker.info["device"] == "usb:0"
    results, events, stats = serve_video(worker, video_avi)
    kinds = [e.kind for e in events]
    crashes = [e for e in events if e.kind == "worker_crashed"]
    assert len(crashes) == 3 and kinds.count("worker_restarted") == 3
    assert all("killed by SIGSEGV" in e.message for e in crashes)
    assert crashes[0].details["pid"] == first_pid
    # every frame but the three lost with their workers, and results after each restart
    assert len(results) == FRAMES - 3 == stats["frames"]
    frames = [r.frame for r in results]
    assert frames == [i for i in range(1, FRAMES + 1) if i not in (13, 26, 39)]
    assert stats["worker"]["restarts"] == 3 and stats["events"]["worker_crashed"] == 3
    assert stats["backend"] == "edgetpu" and not stats["degraded"]
    assert my_segments() == []


def test_hung_worker_is_killed_and_replaced(standin, coral_dir, coral_root, labels_path,
                                            video_avi):  # fmt: skip
    standin("works", HANG_AFTER=5)  # each worker blocks forever in its 6th invoke
    worker = tpu_worker(coral_dir, coral_root, labels_path, hang_timeout_s=1.0)
    hung_pid = worker.pid
    results, events, stats = serve_video(worker, video_avi, pipeline={"max_frames": 8})
    hung = [e for e in events if e.kind == "worker_hung"]
    assert hung and hung[0].details["pid"] == hung_pid
    assert "no answer within 1 s" in hung[0].message
    assert "worker_restarted" in [e.kind for e in events]
    assert len(results) == 8 and results[-1].frame > 6
    with pytest.raises(ProcessLookupError):
        os.kill(hung_pid, 0)  # killed, not left hanging
    assert my_segments() == []


def test_crash_loop_is_a_clear_fatal_error(standin, coral_dir, coral_root, labels_path,
                                           video_avi):  # fmt: skip
    # every worker dies at its second frame (one invoke each, so that the Edge TPU probe, a
    # process of its own, passes)
    standin("works", CRASH_AFTER=1)
    worker = tpu_worker(coral_dir, coral_root, labels_path, max_restarts=2)
    with pytest.raises(EdgekitError) as e:
        serve_video(worker, video_avi)
    assert e.value.message == (
        "the inference worker failed 3 times within 600 s (last: killed by SIGSEGV); giving up"
    )
    assert my_segments() == []


def test_a_library_that_segfaults_at_load_is_one_error(standin, coral_dir, coral_root,
                                                       labels_path):  # fmt: skip
    standin("segv")
    with pytest.raises(EdgekitError) as e:
        tpu_worker(coral_dir, coral_root, labels_path)
    assert "SIGSEGV" in str(e.value) and "\n" not in str(e.value)
    assert my_segments() == []


def test_signal_names():
    from edgekit.stream.worker import signal_name

    assert signal_name(-signal.SIGSEGV) == "killed by SIGSEGV"
    assert signal_name(-signal.SIGABRT) == "killed by SIGABRT"
    assert signal_name(3) == "exit status 3"


@pytest.mark.parametrize(
    "key,value,says",
    [
        ("hang_timeout_s", float("nan"), "must be a finite number"),
        ("hang_timeout_s", float("inf"), "must be a finite number"),
        ("start_timeout_s", 0.0, "must be between 1 and 86400"),
        ("restart_window_s", -1.0, "must be between 1 and 604800"),
        ("hang_timeout_s", 0.0, "must be between 0.1 and 86400"),
        ("max_restarts", 0, "must be between 1 and 1000"),
        ("mode", "thread", "unknown"),
        ("hang_timeout", 1.0, "unknown key worker.hang_timeout"),
    ],
)
def test_worker_config_is_validated(key, value, says):
    with pytest.raises(EdgekitError, match=says) as e:
        from_dict({"worker": {key: value}}, where="edgekit.toml")
    assert str(e.value).startswith("edgekit.toml: ") and "\n" not in str(e.value)


def test_worker_only_for_edgetpu_devices_by_default():
    assert serve.uses_worker(from_dict({"model": {"device": "usb"}}))
    assert serve.uses_worker(from_dict({}))  # auto: an Edge TPU if one is attached
    assert not serve.uses_worker(from_dict({"model": {"device": "cpu"}}))
    assert serve.uses_worker(from_dict({"model": {"device": "cpu"}, "worker": {"mode": "process"}}))
    assert not serve.uses_worker(from_dict({"worker": {"mode": "inline"}}))


def test_worker_crash_is_reported_on_every_channel(standin, coral_dir, coral_root, labels_path,
                                                   video_avi, broker):  # noqa: F811  # fmt: skip
    """The status page's event list, /metrics and MQTT hear of the crash (the log and JSON
    lines: test_worker_cli); results keep flowing afterwards."""
    import threading
    import urllib.request

    from .conftest import free_port
    from .test_mqtt import Subscriber

    standin("works", CRASH_AFTER=4)
    worker = tpu_worker(coral_dir, coral_root, labels_path)
    port = free_port()
    cfg = from_dict({"output": {"json_lines": False}, "source": {"loop": True},
                     "http": {"enabled": True, "listen": f"127.0.0.1:{port}"},
                     "mqtt": {"enabled": True, "port": broker, "topic": "wk"}})  # fmt: skip
    restarted, results = threading.Event(), []
    sink = CallbackSink(results.append,
                        lambda e: e.kind == "worker_restarted" and restarted.set())  # fmt: skip
    sub = Subscriber(broker, "wk")
    stop = threading.Event()
    t = threading.Thread(target=serve.run, args=(cfg,), daemon=True, kwargs={
        "stop": stop, "classifier": worker, "source": OpenCVSource(str(video_avi), loop=True),
        "extra_sinks": [sink]})  # fmt: skip
    t.start()
    try:
        assert restarted.wait(60)
        seen = len(results)
        sub.wait_for(lambda m: m[0] == "wk/event" and '"worker_crashed"' in m[1])
        base = f"http://127.0.0.1:{port}"
        metrics = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
        # The stand-in crashes every 4 invokes, so the restarted worker may already have crashed
        # again by now on a loaded machine: at least one crash, and the counter never lies low.
        crash_line = r'^edgekit_worker_failures_total\{reason="crash"\} (\d+)$'
        crashes = re.search(crash_line, metrics, re.M)
        assert crashes and int(crashes.group(1)) >= 1, metrics
        events = json.loads(urllib.request.urlopen(base + "/events.json", timeout=10).read())
        assert "worker_crashed" in json.dumps(events)
        deadline = time.monotonic() + 30
        while len(results) < seen + 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(results) >= seen + 2  # the new worker's results
    finally:
        stop.set()
        t.join(30)
        worker.close()
        sub.close()
    assert not t.is_alive() and my_segments() == []


def test_coral_gone_after_a_crash_continues_on_the_cpu(standin, coral_dir, coral_root,
                                                       labels_path, video_avi):  # fmt: skip
    """The worker segfaults and the Coral is gone when it restarts (unplugged): the restart
    fails, the reopen attempts fail, and serve goes on in a new worker on the CPU twin,
    degraded and loudly (on_tpu_failure = "cpu")."""
    import shutil

    standin("works", CRASH_AFTER=5)
    # one crash; the failed starts that follow (no Edge TPU) are not a crash loop
    worker = tpu_worker(coral_dir, coral_root, labels_path, max_restarts=1)

    def unplug(event):
        events.append(event)
        if event.kind == "worker_crashed":
            shutil.rmtree(coral_root / "sys/bus/usb/devices/2-1", ignore_errors=True)

    results, events = [], []
    cfg = from_dict({"output": {"json_lines": False}, "pipeline": {"max_frames": 15}})
    try:
        stats = serve.run(cfg, classifier=worker, source=OpenCVSource(str(video_avi)),
                          extra_sinks=[CallbackSink(results.append, unplug)])  # fmt: skip
    finally:
        worker.close()
    kinds = [e.kind for e in events]
    assert kinds.index("worker_crashed") < kinds.index("cpu_fallback")
    assert "no Edge TPU found" in " ".join(e.message for e in events)
    assert len(results) == 15 and stats["degraded"] and stats["backend"] == "cpu"
    assert worker.info["backend"] == "cpu" and worker.info["pid"] != os.getpid()
    assert my_segments() == []


def test_replaced_workers_leave_no_descriptors_behind(standin, coral_dir, coral_root, labels_path):
    """Each crashed worker's process handle is released when it is replaced, not when the
    garbage collector gets round to it (the 30-minute soak's open fds grew in steps of 6)."""
    import gc

    standin("works", CRASH_AFTER=2)  # each worker segfaults inside its 3rd invoke
    worker = tpu_worker(coral_dir, coral_root, labels_path, max_restarts=100)
    frame = np.zeros((224, 224, 3), np.uint8)

    def crash_once():
        for _ in range(3):
            try:
                worker.run(frame)
            except SkipFrame:
                return
        raise AssertionError("the stand-in did not crash")

    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    gc.disable()  # cycles would hide a leak until the next collection
    try:
        crash_once()
        before = open_fds()
        for _ in range(6):
            crash_once()
        after = open_fds()
    finally:
        gc.enable()
        worker.close()
    assert worker.restarts == 7
    assert after <= before, f"{after - before} descriptors more after 6 replaced workers"
