"""Self-healing: a wedged Coral is reset, waited for, proven and used again, with every step an
event and every frame accounted for. Real spawned workers, the real interpreter, a real video,
the stand-in libedgetpu (tests/edgetpu_standin) that fails until the device is reset, and a
fake kernel (tests/runtime/usb_fakes.py) whose USBDEVFS_RESET re-enumerates the fake device."""

from __future__ import annotations

import errno
import threading
import time

import pytest

from edgekit.backends.devices import list_usb
from edgekit.backends.usbreset import KernelUsbReset, ResetError
from edgekit.stream import serve
from edgekit.stream.config import from_dict
from edgekit.stream.healing import Healer
from edgekit.stream.sinks import CallbackSink
from edgekit.stream.sources import OpenCVSource
from tests.edgetpu_standin import edgetpu_standins  # noqa: F401 - the fixture
from tests.runtime.usb_fakes import FakeKernel, make_coral

from .test_worker import standin, tpu_worker  # noqa: F401 - the fixture


def test_a_wedged_coral_is_reset_proven_and_used_again(standin, coral_dir, labels_path,  # noqa: F811
                                                       video_avi, tmp_path):  # fmt: skip
    root = tmp_path / "root"
    dev = make_coral(root)  # 18d1:9302 at 2-1, /dev/bus/usb/002/003
    wedge = tmp_path / "wedged"
    standin("works", WEDGE=wedge, SYSFS=dev)
    kernel = FakeKernel(root, wedge=wedge)
    worker = tpu_worker(coral_dir, root, labels_path)
    assert worker.info["backend"] == "edgetpu"
    results, events, stop = [], [], threading.Event()
    after: list = []

    def on_result(r):
        results.append(r)
        if len(results) == 10:
            wedge.touch()  # the Coral wedges: every transfer fails from the next frame on
        if any(e.kind == "tpu_restored" for e in events):
            after.append(r)
            if len(after) >= 10:
                stop.set()

    cfg = from_dict({"output": {"json_lines": False},
                     "health": {"reset_backoff_s": 1.0, "reenumerate_timeout_s": 10.0}})
    source = OpenCVSource(str(video_avi), loop=True)
    timer = threading.Timer(120, stop.set)
    timer.start()
    try:
        stats = serve.run(cfg, stop=stop, classifier=worker, source=source, root=str(root),
                          resetter=KernelUsbReset(root, ioctl=kernel, is_root=lambda: False),
                          extra_sinks=[CallbackSink(on_result, events.append)])  # fmt: skip
    finally:
        timer.cancel()
        worker.close()
    kinds = [e.kind for e in events]
    assert "cpu_fallback" in kinds, kinds
    steps = [k for k in kinds if k.startswith("device_") or k in ("cpu_fallback",
                                                                  "tpu_restored")]  # fmt: skip
    assert steps == ["cpu_fallback", "device_reset_started", "device_reset",
                     "device_reenumerated", "device_recovered", "tpu_restored"], kinds
    by = {e.kind: e for e in events}
    assert by["device_reset"].details["how"] == "USBDEVFS_RESET on /dev/bus/usb/002/003"
    assert kernel.resets == [str(root / "dev/bus/usb/002/003")]
    # back as 1a6e:089a (firmware lost), then the probe's libedgetpu loaded it: 18d1:9302
    assert by["device_reenumerated"].details["ids"] == "1a6e:089a"
    assert by["device_reenumerated"].details["node"] == "/dev/bus/usb/002/004"
    assert (dev / "idProduct").read_text().strip() == "9302"
    assert not wedge.exists()
    # results never stopped: the CPU carried the frames while the device was reset
    assert len(after) >= 10 and stats["backend"] == "edgetpu" and not stats["degraded"]
    assert stats["healing"] == {"state": "recovered", "attempts": 1, "recovered": 1,
                                "failed": 0, "resets_last_hour": 1, "max_per_hour": 3}
    frames = [r.frame for r in results]
    assert frames == sorted(frames)
    # every frame read is a result or a counted failure (the file source waits for the
    # consumer: nothing is replaced) or was still waiting at stop: exactly
    acc = stats["accounting"]
    assert acc["final"] and acc["balanced"] and acc["dropped"] == 0, acc
    assert acc["processed"] == len(results) and 1 <= acc["failed"] <= 5


class FailingReset:
    """A resetter whose device never comes back to life (the boundary, failing)."""

    def __init__(self):
        self.calls = 0

    def reset(self, device):
        self.calls += 1
        raise ResetError("cannot reset the Edge TPU usb:0 (EACCES)", "check the udev rule")


def test_resets_are_bounded_no_reset_loop(tmp_path):
    root = tmp_path / "root"
    make_coral(root)
    events = []
    resetter = FailingReset()
    h = Healer(lambda *e: events.append(e), "auto", root, resetter, max_per_hour=2,
               backoff_s=0.2)  # fmt: skip
    assert h.heal("wedged") is False
    assert h.request("again") is False, "a failed reset backs off before the next"
    time.sleep(0.25)
    assert h.request("again") is True
    h._thread.join(5)
    time.sleep(0.45)  # the pause doubled: 0.4 s
    assert h.request("and again") is False  # 2 resets this hour: the budget is spent
    assert h.request("and again") is False
    kinds = [k for k, _, _ in events]
    assert resetter.calls == 2
    assert kinds == ["device_reset_started", "device_reset_failed", "device_reset_started",
                     "device_reset_failed", "device_reset_limited"]  # reported once
    failed = [m for k, m, _ in events if k == "device_reset_failed"]
    assert "next try in 0.2 s" in failed[0] and "next try in 0.4 s" in failed[1]
    assert "check the udev rule" in failed[0]
    assert h.info()["state"] == "limited" and h.info()["resets_last_hour"] == 2


def test_a_device_not_on_the_bus_is_not_reset(tmp_path):
    events = []
    resetter = FailingReset()
    h = Healer(lambda *e: events.append(e), "auto", tmp_path, resetter, backoff_s=0.1)
    assert h.heal("gone") is False and resetter.calls == 0
    assert events[0][0] == "device_reset_failed" and "not on the USB bus" in events[0][1]
    assert h.info()["attempts"] == 0


def test_a_device_that_does_not_come_back_is_a_failed_step(tmp_path):
    root = tmp_path / "root"
    make_coral(root)
    events = []
    kernel = FakeKernel(root, comes_back=False)
    h = Healer(lambda *e: events.append(e), "usb", root, KernelUsbReset(root, ioctl=kernel),
               reenumerate_timeout_s=1.0, probe=lambda *a: pytest.fail("no probe"))  # fmt: skip
    assert h.heal("wedged") is False
    last = events[-1]
    assert last[0] == "device_reset_failed" and last[2]["step"] == "reenumerate"
    assert "did not come back on 2-1 within 1 s" in last[1]


def test_kernel_reset_without_usbfs_falls_back_to_unbind_bind_as_root(tmp_path):
    root = tmp_path / "root"
    make_coral(root)
    (dev,) = list_usb(root)
    drv = root / "sys/bus/usb/drivers/usb"
    drv.mkdir(parents=True)
    (drv / "unbind").touch()
    (drv / "bind").touch()
    # a regular file is not a usbfs node: the real ioctl says ENOTTY
    with pytest.raises(ResetError) as e:
        KernelUsbReset(root, is_root=lambda: False).reset(dev)
    assert "USBDEVFS_RESET on /dev/bus/usb/002/003: Inappropriate ioctl" in e.value.message
    assert "udev rule" in e.value.hint
    how = KernelUsbReset(root, is_root=lambda: True, settle_s=0.0).reset(dev)
    assert how == "unbind/bind 2-1"
    assert (drv / "unbind").read_text() == "2-1" and (drv / "bind").read_text() == "2-1"

    def denied(fd, request, arg):
        raise OSError(errno.EACCES, "Permission denied")

    with pytest.raises(ResetError, match="Permission denied"):
        KernelUsbReset(root, ioctl=denied, is_root=lambda: False).reset(dev)


class RestartsOnTheCpu:
    """A worker whose crash restart found no Coral: "auto" opened the CPU, no error raised."""

    def __init__(self):
        from types import SimpleNamespace

        self.runner = SimpleNamespace(backend="edgetpu", device="usb:0")
        self.reopened: list = []

    def run(self, rgb):
        from edgekit.classify import Classification

        return Classification(classes=(), inference_ms=1.0, preprocess_ms=0.0)

    def reopen(self, device=None):
        self.reopened.append(device)
        self.runner.backend = "edgetpu" if device in (None, "auto") else "cpu"


def test_a_worker_restarted_on_the_cpu_is_a_fallback_and_is_retried():
    from edgekit.stream.resilient import ResilientClassifier

    events = []
    model = RestartsOnTheCpu()
    r = ResilientClassifier(model, lambda *e: events.append(e[0]), tpu_retry_s=0.05)
    r(None)
    assert not r.degraded
    model.runner.backend = "cpu"  # the restart: silently on the CPU
    r(None)
    assert r.degraded and events == ["cpu_fallback"]
    time.sleep(0.06)
    r(None)  # the periodic retry puts it back on the Edge TPU
    assert not r.degraded and model.reopened == ["auto"] and events[-1] == "tpu_restored"
