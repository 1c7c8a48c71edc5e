"""Two models on one Edge TPU in one process: a cascade's detector and classifier both open
through the libedgetpu delegate (the stand-in library of tests/edgetpu_standin, which claims
the edgetpu-custom-op nodes like the real one) on one fake Coral, under ONE device lock (the
lock is per process); a second process is refused while the cascade holds it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from edgekit import backends
from edgekit.backends import devicelock
from edgekit.backends.edgetpu import SystemStack
from edgekit.detect.cascade import open_cascade
from tests.edgetpu_standin import build, compiler
from tests.runtime.runtime_fakes import make_sysfs

ROOT = Path(__file__).resolve().parents[2]
FAKE_COMPILER = ROOT / "tests" / "convert" / "fake_edgetpu_compiler"
CORAL = ROOT / "tests" / "data" / "coral"

# A second process opening the same Coral (same stand-in, same fake sysfs, same lock dir).
SECOND = textwrap.dedent("""
    import sys
    from edgekit import backends
    from edgekit.backends.edgetpu import SystemStack
    from edgekit.classify import Classifier
    backends.register_backend("edgetpu", backends.EdgeTpuBackend(
        SystemStack(root=sys.argv[1], library=sys.argv[2])))
    try:
        Classifier(sys.argv[3], device="usb:0")
    except Exception as e:
        print(type(e).__name__, e.message)
""")


@pytest.fixture
def coral(tmp_path, monkeypatch):
    if compiler() is None:
        pytest.skip("no C compiler to build the libedgetpu stand-in")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("EDGETPU_STANDIN_LOG", str(tmp_path / "standin.log"))
    lib = build(tmp_path / "works", "works")
    root = make_sysfs(tmp_path / "root", usb=[("2-1", "18d1", "9302", 5000)])
    old = backends.register_backend(
        "edgetpu", backends.EdgeTpuBackend(SystemStack(root=root, library=lib))
    )
    yield root, lib, tmp_path / "standin.log"
    backends.register_backend("edgetpu", old)


@pytest.fixture
def compiled_detector(tiny_detector, tmp_path) -> Path:
    """The tiny detector through the edgetpu_compiler stand-in (its twin: one custom op)."""
    out = tmp_path / "compiled"
    p = subprocess.run([sys.executable, str(FAKE_COMPILER), "-o", str(out), str(tiny_detector)],
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    return out / "anchor_free_edgetpu.tflite"


def test_detector_and_classifier_share_one_edgetpu_and_one_lock(coral, compiled_detector):
    root, lib, log = coral
    classifier = CORAL / "mobilenet_v1_0.25_128_quant_edgetpu.tflite"
    casc = open_cascade(compiled_detector, classifier, device="usb:0",
                        decoder="edgekit-anchor-free")  # fmt: skip
    try:
        assert casc.detector.runner.backend == casc.classifier.runner.backend == "edgetpu"
        assert casc.detector.runner.device == casc.classifier.runner.device == "usb:0"
        assert devicelock.holder("usb-2-1").pid == os.getpid()
        assert devicelock._HELD["usb-2-1"][1] == 2  # one lock, held for both interpreters
        rgb = np.zeros((64, 64, 3), np.uint8)
        casc.run(rgb)
        casc.classifier.classify(rgb)
        # (the probe child, another PID, proved the library first: edgekit.backends.probe)
        mine = [ln.split()[1] for ln in log.read_text().splitlines()
                if ln.split()[0] == str(os.getpid())]  # fmt: skip
        assert mine.count("create") == 2 and mine.count("invoke") >= 2  # two delegates here
        second = subprocess.run([sys.executable, "-c", SECOND, str(root), str(lib),
                                 str(classifier)], cwd=ROOT, capture_output=True, text=True,
                                timeout=120)  # fmt: skip
        assert second.stdout.startswith(f"DeviceBusy usb:0 is in use by PID {os.getpid()}"), (
            second.stdout + second.stderr
        )
        casc.reopen()  # one model after the other: the lock never drops in between
        assert devicelock._HELD["usb-2-1"][1] == 2
    finally:
        casc.close()
    assert devicelock.holder("usb-2-1") is None


def test_bench_times_both_models_on_the_one_edgetpu(coral, compiled_detector):
    from edgekit.bench_cascade import bench_cascade

    out = bench_cascade(compiled_detector, CORAL / "mobilenet_v1_0.25_128_quant_edgetpu.tflite",
                        device="usb:0", runs=3, warmup=0)  # fmt: skip
    models = out["per_model"]
    assert models["detector"]["backend"] == models["classifier"]["backend"] == "edgetpu"
    assert models["detector"]["device"] == models["classifier"]["device"] == "usb:0"
    assert out["per_frame"]["wall"]["mean_ms"] > 0
    assert devicelock.holder("usb-2-1") is None  # released when done
