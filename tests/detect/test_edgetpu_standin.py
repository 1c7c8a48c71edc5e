"""Detection through the Edge TPU backend: a compiled YOLO twin opened with the libedgetpu
delegate (the stand-in library of tests/edgetpu_standin, which claims the edgetpu-custom-op
nodes like the real one but computes nothing), on a fake sysfs with one Coral. Checks the
wiring (the compiled graph's own output tensors decoded, the Edge TPU runner used), not the
numbers: those come from the CPU-model tests."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from edgekit import backends
from edgekit.backends.edgetpu import SystemStack
from edgekit.cli import main
from edgekit.detect import Detector
from tests.detect.conftest import shared
from tests.edgetpu_standin import build, compiler
from tests.runtime.runtime_fakes import make_sysfs


@pytest.fixture
def coral(tmp_path, monkeypatch):
    """One Coral on USB 3 behind the working stand-in libedgetpu."""
    if compiler() is None:
        pytest.skip("no C compiler to build the libedgetpu stand-in")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    lib = build(tmp_path / "works", "works")
    root = make_sysfs(tmp_path / "root", usb=[("2-1", "18d1", "9302", 5000)])
    old = backends.register_backend(
        "edgetpu", backends.EdgeTpuBackend(SystemStack(root=root, library=lib))
    )
    yield
    backends.register_backend("edgetpu", old)


def test_a_compiled_yolo_runs_through_the_delegate(coral):
    model = shared("yolo", "yolov8n-640-maxwell", "model_edgetpu.tflite")
    image = shared("coral", "kite_and_cold.jpg")
    det = Detector(model, device="usb")
    assert det.runner.backend == "edgetpu" and det.runner.model_path == str(model)
    assert det.decoder_name == "yolov8" and det.labels[33] == "kite"
    res = det.detect_path(image)
    assert res.image_size == (1352, 900) and res.inference_ms > 0
    det.close()
    r = CliRunner().invoke(main, ["detect", str(model), str(image), "-d", "usb", "--json"])
    assert r.exit_code == 0, r.output
    assert set(json.loads(r.stdout)) == {"image", "detections", "inference_ms", "decode_ms"}
    assert "emulation" not in r.stderr  # the Edge TPU, not the CPU twin


def test_an_uncompiled_detector_on_the_edgetpu_is_one_line(coral, detect_bundle):
    r = CliRunner().invoke(main, ["detect", str(detect_bundle), str(detect_bundle), "-d", "usb"])
    assert r.exit_code == 1 and len(r.stderr.splitlines()) == 1
    assert "not compiled for the Edge TPU" in r.stderr
