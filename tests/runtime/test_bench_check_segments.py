"""`edgekit bench` on compiled segments checks itself against the whole set: its p50 is one
frame through every segment (the chain), so the prediction beside it is the sum of the
segments' predictions, never the one segment file named on the command line (it compared the
chain's 21 ms with segment 1's 2.2 ms and called it 9.6x slower). Google's SSD segments from
../shared; the tiny compiled set on two stand-in Corals for the command itself."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from edgekit.bench_check import expectation, predict_for_file
from edgekit.edgetpu.latency import latency_of_model
from edgekit.tflite import read_model
from tests.runtime.test_segment_pipeline import tiny, two_corals  # noqa: F401 - fixtures


def _alone(path) -> dict:
    return latency_of_model(read_model(path))


def test_the_prediction_of_a_segment_is_the_whole_sets(ssd_segments):
    seg0, seg1 = (_alone(p) for p in ssd_segments)
    for named in ssd_segments:  # either file of the set names the set
        pred = predict_for_file(named)
        assert pred["segments"] == 2
        for link in ("usb3", "usb2", "pci"):
            assert pred["latency_ms"][link] == pytest.approx(
                seg0["latency_ms"][link] + seg1["latency_ms"][link], abs=0.011)
            parts = pred["parts_ms"][link]
            assert sum(parts.values()) == pytest.approx(pred["latency_ms"][link], abs=0.05)
        assert pred["cpu_ops"] == seg0["cpu_ops"] + seg1["cpu_ops"]
        assert pred["parameter_bytes"] == seg0["parameter_bytes"] + seg1["parameter_bytes"]
    e = expectation(2 * seg0["latency_ms"]["usb3"] + 2 * seg1["latency_ms"]["usb3"],
                    ssd_segments[1], None)  # fmt: skip
    assert e["ratio"] == pytest.approx(2.0, abs=0.01) and e["segments"] == 2
    from edgekit.bench_check import format_expectation

    assert "2 segments, one frame at a time" in format_expectation(e)[0]


def test_a_single_model_is_unchanged(coral_dir):
    path = coral_dir / "mobilenet_v2_1.0_224_quant_edgetpu.tflite"
    if not path.is_file():
        pytest.skip("../shared/data/coral is absent")
    pred = predict_for_file(path)
    assert "segments" not in pred
    twin = read_model(coral_dir / "mobilenet_v2_1.0_224_quant.tflite")
    assert pred["latency_ms"] == latency_of_model(read_model(path), cpu_twin=twin)["latency_ms"]


def test_bench_on_two_corals_compares_the_chain_with_the_sets_prediction(tiny, two_corals):  # noqa: F811
    from edgekit.cli import main

    two_corals(INVOKE_MS=2)
    files = tiny["compiled"]
    res = CliRunner().invoke(main, ["bench", str(files[1]), "--device", "usb:*", "--runs", "10",
                                    "--warmup", "1", "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    js = json.loads(res.output)
    want = sum(_alone(p)["latency_ms"]["usb3"] for p in files)
    assert js["expected"]["segments"] == len(files)
    assert js["expected"]["predicted_ms"] == pytest.approx(want, abs=0.011)
    assert js["expected"]["link"] == "usb3"


def test_a_set_over_a_usb2_coral_is_predicted_for_usb2(tiny, two_corals, tmp_path):  # noqa: F811
    """Segment 1 on a Coral at 480 Mb/s: the chain waits for it, the USB 2 prediction applies."""
    from edgekit import backends
    from edgekit.backends.edgetpu import SystemStack
    from edgekit.cli import main
    from tests.runtime.runtime_fakes import make_sysfs

    two_corals(INVOKE_MS=2)
    root = make_sysfs(tmp_path / "slow", usb=[("2-1", "18d1", "9302", 5000),
                                              ("2-2", "18d1", "9302", 480)])  # fmt: skip
    backends.register_backend("edgetpu", backends.EdgeTpuBackend(SystemStack(root=root)))
    files = tiny["compiled"]
    res = CliRunner().invoke(main, ["bench", str(files[0]), "--device", "usb:0,usb:1",
                                    "--runs", "10", "--warmup", "1", "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    e = json.loads(res.output)["expected"]
    assert e["link"] == "usb2" and e["segments"] == len(files)
    want = sum(_alone(p)["latency_ms"]["usb2"] for p in files)
    assert e["predicted_ms"] == pytest.approx(want, abs=0.011)
