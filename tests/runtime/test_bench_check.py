"""`edgekit bench --device usb` beside the predicted latency (edgekit.bench_check): the fake Edge
TPU (the CPU twin behind the documented delegate contract) on a device whose link speed comes
from a fake sysfs read by edgekit's own sysfs reader; a slow invoke stands in for a slow link."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgekit.backends.devices import EdgeTpuDevice, list_usb, select_device
from edgekit.bench_check import expectation, format_expectation
from edgekit.cli import main

from .runtime_fakes import FakeInterpreter, FakeStack, make_sysfs

V1 = "mobilenet_v1_0.25_128_quant"
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


class SlowInterpreter(FakeInterpreter):
    """The fake Edge TPU taking ``delay`` seconds more per inference (a slow link or host)."""

    def __init__(self, model_path, delay):
        super().__init__(model_path)
        self.delay = delay

    def invoke(self):
        time.sleep(self.delay)
        super().invoke()


class SysfsStack(FakeStack):
    """Devices read from a fake sysfs tree by edgekit's reader; inference on the CPU twin."""

    def __init__(self, root, delay=0.0):
        super().__init__(devices=list_usb(root))
        self.delay = delay

    def make_interpreter(self, model_path, device, threads):
        if select_device(self.devices, device) is None:
            raise ValueError("Failed to load delegate from libedgetpu.so.1\n")
        return SlowInterpreter(model_path, self.delay)


@pytest.fixture()
def compiled(coral_dir, tmp_path):
    """The compiled Coral model with its int8 twin beside it (as the compiler leaves them)."""
    if not (coral_dir / f"{V1}_edgetpu.tflite").is_file():
        pytest.skip("../shared/data/coral is absent")
    for name in (f"{V1}_edgetpu.tflite", f"{V1}.tflite"):
        shutil.copy(coral_dir / name, tmp_path / name)
    return tmp_path / f"{V1}_edgetpu.tflite"


def _bench(model, *extra):
    return CliRunner().invoke(main, ["bench", str(model), "--device", "usb", "--runs", "5",
                                     "--warmup", "1", *extra])  # fmt: skip


def test_usb2_link_named_when_far_slower(compiled, tmp_path, use_stack):
    root = make_sysfs(tmp_path / "root", usb=[("1-1.2", "18d1", "9302", 480)])
    use_stack(SysfsStack(root, delay=0.08))
    r = _bench(compiled)
    assert r.exit_code == 0, r.output
    line = next(x for x in r.output.splitlines() if x.startswith("predict "))
    assert "per inference on a USB 2 Coral; measured p50" in line
    assert "far slower than predicted; likely cause(s):" in r.output
    assert "USB 2 link (480 Mb/s)" in r.output and "USB 3 (blue) port" in r.output
    js = json.loads(_bench(compiled, "--json").output)
    e = js["expected"]
    assert e["link"] == "usb2" and e["slower_than_predicted"] and e["ratio"] > 2
    assert "usb2_link" in [c["code"] for c in e["causes"]]
    assert e["predicted_ms"] == e["predicted"]["latency_ms"]["usb2"] > 0


def test_usb3_link_read_from_sysfs(compiled, tmp_path, use_stack):
    """The same model on a USB 3 link: predicted for USB 3, and faster than on USB 2 (whether
    the CPU twin standing in for the Edge TPU keeps up with it depends on this machine)."""
    root = make_sysfs(tmp_path / "root", usb=[("2-1", "18d1", "9302", 5000)])
    use_stack(SysfsStack(root))
    r = _bench(compiled, "--json")
    assert r.exit_code == 0, r.output
    e = json.loads(r.output)["expected"]
    assert e["link"] == "usb3" and e["predicted_ms"] < e["predicted"]["latency_ms"]["usb2"]
    assert "on a USB 3 Coral; measured p50" in _bench(compiled).output


def test_causes_from_the_mapping_and_the_pi():
    """A model with ops on the CPU, a busy CPU and an under-voltage Pi: each named, the busy
    CPU and the power first (they slow everything); nothing explains a fast measurement."""
    yolo = SHARED / "yolo/yolov8n-640-maxwell/model_edgetpu.tflite"
    if not yolo.is_file():
        pytest.skip("../shared/data/yolo is absent")
    usb3 = EdgeTpuDevice("usb", "/sys/bus/usb/devices/2-1", 0, 5000, True)
    e = expectation(500.0, yolo, usb3, load=(9.5, 4),
                    power={"now": ["under-voltage detected"], "hwmon_alarm": True})  # fmt: skip
    codes = [c["code"] for c in e["causes"]]
    assert e["slower_than_predicted"] and set(codes) == {"cpu_ops", "busy_cpu", "throttled"}
    assert codes[-1] == "cpu_ops" and "25 op(s) run on the CPU" in e["causes"][-1]["message"]
    text = "\n".join(format_expectation(e))
    assert "load average 9.5 on 4 cores" in text and "under-voltage detected" in text
    fast = expectation(e["predicted_ms"], yolo, usb3)
    assert not fast["slower_than_predicted"] and fast["ratio"] == 1.0


def test_far_slower_with_no_known_cause_says_the_prediction_is_a_desktops():
    from edgekit.bench_check import format_expectation

    e = {"predicted_ms": 2.78, "measured_ms": 6.1, "ratio": 2.19, "link": "usb3",
         "slower_than_predicted": True, "causes": []}  # fmt: skip
    lines = format_expectation(e)
    assert lines[0].startswith("predict 2.78 ms per inference") and "(2.19x)" in lines[0]
    assert "nothing edgekit knows explains it" in lines[1]
    assert "Raspberry Pi 4 measures 1.5-2x" in lines[1] and "post-processing" in lines[1]
