"""A cascade whose detector is compiled segments pipelined over several Edge TPUs (Google's SSD
segments from ../shared on two stand-in Corals): the crop classifier runs beside segment 0, on
the first device of the list; it was refused with 'several Edge TPUs ('usb:*') are for edgekit
serve and compiled segments; name one device', though the detector is compiled segments."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from edgekit.cli import main
from edgekit.detect.cascade import _beside
from tests.edgetpu_standin import edgetpu_standins  # noqa: F401 - fixture
from tests.runtime.conftest import ssd_segments  # noqa: F401 - fixture
from tests.runtime.test_segment_pipeline import CORAL, two_corals  # noqa: F401 - fixture


@pytest.mark.parametrize("device, want", [("usb:*", "usb:0"), ("usb:1,usb:0", "usb:1"),
                                          ("pci:*", "pci:0"), ("*", "auto"), ("usb", "usb"),
                                          ("cpu", "cpu")])  # fmt: skip
def test_the_classifier_runs_on_the_first_device(device, want):
    assert _beside(device) == want


def test_detect_and_bench_a_cascade_of_segments_over_two_corals(ssd_segments, two_corals):  # noqa: F811
    classifier = CORAL / "mobilenet_v2_1.0_224_quant_edgetpu.tflite"
    if not classifier.is_file():
        pytest.skip("../shared/data/coral is absent")
    two_corals(INVOKE_MS=2)
    images = [str(CORAL / "cat.bmp"), str(CORAL / "bird.bmp")]
    for device in ("usb:*", "usb:0,usb:1"):
        r = CliRunner().invoke(main, ["detect", str(ssd_segments[0]), *images, "--device", device,
                                      "--classify", str(classifier), "--json"])  # fmt: skip
        assert r.exit_code == 0, r.output
        out = json.loads(r.stdout)
        assert [x["image"] for x in out] == images and all("crops" in x for x in out)
    r = CliRunner().invoke(main, ["bench", str(ssd_segments[1]), "--device", "usb:*", "--classify",
                                  str(classifier), "--runs", "3", "--warmup", "0", "--json"])
    assert r.exit_code == 0, r.output
    per_model = json.loads(r.stdout)["per_model"]
    assert per_model["detector"]["backend"] == per_model["classifier"]["backend"] == "edgetpu"


def test_serve_runs_a_cascade_of_segments_in_one_worker_holding_both_corals(
        ssd_segments, edgetpu_standins, tmp_path):  # noqa: F811  # fmt: skip
    """serve started one worker per Coral, each opening the whole set: the second found usb:0
    taken by the first ('usb:0 is in use by PID N (edgekit serve)') and serve ended."""
    import os
    import shutil
    import subprocess

    from edgekit.stream.config import from_dict
    from edgekit.stream.segment_worker import segment_depth
    from tests.runtime.runtime_fakes import make_sysfs
    from tests.stream.conftest import edgekit_cmd
    from tests.stream.test_worker_cli import MOUNT, can_unshare

    classifier = CORAL / "mobilenet_v2_1.0_224_quant_edgetpu.tflite"
    cascade = {"classifier": str(classifier)}
    seg = {"path": str(ssd_segments[0]), "device": "usb:*"}
    assert segment_depth(from_dict({"model": seg, "cascade": cascade})) == 1
    assert segment_depth(from_dict({"model": seg})) == 3
    one_model = from_dict({"model": {"path": str(classifier)}, "cascade": cascade})
    assert segment_depth(one_model) is None
    if not classifier.is_file() or not can_unshare():
        pytest.skip("needs ../shared/data/coral and a private mount namespace (unshare -m)")
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("cat.bmp", "bird.bmp"):
        shutil.copy(CORAL / name, photos / name)
    root = make_sysfs(tmp_path / "root", usb=[("2-1", "18d1", "9302", 5000),
                                              ("2-2", "18d1", "9302", 5000)])  # fmt: skip
    env = {**os.environ, "EDGEKIT_LIBEDGETPU": str(edgetpu_standins["works"]),
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "EDGETPU_STANDIN_DEVICES": "2",
           "EDGEKIT_LOCK_DIR": str(tmp_path / "locks")}  # fmt: skip
    args = ["serve", "--model", str(ssd_segments[0]), "--classify", str(classifier),
            "--source", str(photos), "--device", "usb:*"]  # fmt: skip
    p = subprocess.run(["unshare", "-m", "sh", "-c", MOUNT, str(root), *edgekit_cmd(), *args],
                       capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert p.returncode == 0, p.stderr
    results = [json.loads(x) for x in p.stdout.splitlines() if '"frame"' in x]
    assert [r["frame"] for r in results if "event" not in r] == [1, 2]
    assert all("crops" in r for r in results if "event" not in r)


def test_the_status_of_a_cascade_over_segments_says_one_frame_at_a_time(
        ssd_segments, two_corals):  # noqa: F811  # fmt: skip
    """Its worker runs the cascade one frame at a time (its steps share the detector's state):
    the status said 'pipelined over usb:0,usb:1' as for a segment set alone."""
    from edgekit.stream import serve
    from edgekit.stream.config import from_dict
    from edgekit.stream.worker_child import _pipeline_info

    classifier = CORAL / "mobilenet_v2_1.0_224_quant_edgetpu.tflite"
    if not classifier.is_file():
        pytest.skip("../shared/data/coral is absent")
    two_corals(INVOKE_MS=2)
    seg = {"path": str(ssd_segments[0]), "device": "usb:*"}
    for cascade, want in (({"classifier": str(classifier)}, ("chained over usb:0,usb:1, one "
                                                             "frame at a time", 1)),
                          ({}, ("pipelined over usb:0,usb:1", 3))):  # fmt: skip
        model = serve.model_factory(from_dict({"model": seg, "cascade": cascade}))()
        try:
            info = _pipeline_info(model)
        finally:
            model.close()
        assert (info["pipeline"], info["frames_in_flight"]) == want
