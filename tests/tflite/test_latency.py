"""Predicted Edge TPU latency (edgekit.edgetpu.latency): Coral's published table reproduced from
Keras equivalents with random weights (latency depends on shapes, not weights), the parts that
make it up, and what `edgekit inspect` shows. The big models (VGG16, ResNets, ...) are in
scripts/bench_latency.py, not here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgekit.cli import main
from edgekit.edgetpu import latency as L
from edgekit.edgetpu.mapping import predict
from edgekit.tflite import read_model

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
# Coral's table 1, desktop CPU + USB Accelerator (USB 3.0), ms: calibration rows
PUBLISHED = {"MobileNet": 2.4, "MobileNetV2": 2.6}


@pytest.fixture(scope="session")
def keras_stats():
    """inspect_keras of keras.applications MobileNet and MobileNetV2 at 224 (random weights)."""
    from edgekit.host.keras_stats import inspect_keras
    from edgekit.host.tfenv import load_tensorflow

    load_tensorflow()
    import keras

    out = {}
    for name in PUBLISHED:
        model = getattr(keras.applications, name)(weights=None, input_shape=(224, 224, 3))
        out[name] = inspect_keras(model)
    return out


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_calibration_rows_reproduced_from_keras_shapes(keras_stats, name):
    """Within 1.25x of Coral's published USB 3 figure, mostly a fixed per-inference cost (the
    compute of a 224 MobileNet is under 1 ms); parts add up to the total, none negative."""
    d = L.latency_of_keras_stats(keras_stats[name])
    ms = d["latency_ms"]["usb3"]
    assert 1 / 1.25 < ms / PUBLISHED[name] < 1.25
    for link, parts in d["parts_ms"].items():
        assert all(v >= 0 for v in parts.values())
        assert abs(sum(parts.values()) - d["latency_ms"][link]) < 0.05
    assert d["streamed_bytes"] == 0 and d["cpu_ops"] == 0
    # a USB 2 link carries the same 150 KB input ~10x slower; PCIe is as fast as USB 3 here
    assert d["latency_ms"]["usb2"] > ms + 2 and d["latency_ms"]["pci"] == ms


def test_wider_and_larger_inputs_cost_more(keras_stats):
    import keras

    from edgekit.host.keras_stats import inspect_keras

    small = inspect_keras(keras.applications.MobileNetV2(
        weights=None, input_shape=(96, 96, 3), alpha=0.35))  # fmt: skip
    small_ms = L.latency_of_keras_stats(small)["latency_ms"]["usb3"]
    assert small_ms < L.latency_of_keras_stats(keras_stats["MobileNetV2"])["latency_ms"]["usb3"]


def test_parameters_beyond_the_cache_stream_every_inference(rule_models):
    """8.6 MiB of Dense weights: about 1 MiB streams per inference, 10x slower over USB 2."""
    info = read_model(rule_models["big"])
    d = L.latency_of_model(info)
    assert d["streamed_bytes"] == predict(info).memory["off_chip_bytes"] > 0
    p3, p2 = d["parts_ms"]["usb3"], d["parts_ms"]["usb2"]
    assert p3["parameters_streamed"] > 1.0
    assert 8 < p2["parameters_streamed"] / p3["parameters_streamed"] < 11


def test_tflite_and_keras_front_ends_agree(tiny_models):
    """The same convnet seen from its Keras layers and from its int8 .tflite (predicted
    mapping): the same prediction within 10%."""
    info = read_model(tiny_models["int8"])
    t = L.latency_of_model(info)["latency_ms"]["usb3"]
    assert t > 0
    k = L.latency(L.work_from_keras_layers(*_keras_layers(tiny_models)))["latency_ms"]["usb3"]
    assert abs(t / k - 1) < 0.10


def _keras_layers(tiny_models):
    from edgekit.host.keras_stats import inspect_keras
    from tests.tflite.conftest import _convnet

    s = inspect_keras(_convnet())
    return s["layers"], s["input_shapes"], s["output_shapes"]


def test_cpu_ops_and_the_tpu_boundary_are_counted(rule_models):
    """A LEAKY_RELU branch runs on the Pi's CPU: its ops cost CPU time, and the tensors
    crossing between the Edge TPU and the CPU cross the link."""
    info = read_model(rule_models["branch"])
    p = predict(info)
    d = L.latency_of_model(info, p)
    assert d["cpu_ops"] == p.cpu_ops > 0
    assert d["parts_ms"]["usb3"]["cpu_ops"] > 0
    into, out_of = L.boundary_tensors(info, [o.on_tpu for o in p.ops])
    assert into and out_of


def test_inspect_shows_and_reports_the_prediction(rule_models):
    out = CliRunner().invoke(main, ["inspect", str(rule_models["big"])])
    assert out.exit_code == 0, out.output
    line = next(x for x in out.output.splitlines() if x.startswith("Latency"))
    assert "ms per inference on a USB 3 Coral; USB 2:" in line and "PCIe:" in line
    assert "parameters streamed" in line
    js = CliRunner().invoke(main, ["inspect", "--json", str(rule_models["big"])])
    e = json.loads(js.output)["edgetpu"]
    assert set(e["latency_ms"]) == {"usb3", "usb2", "pci"}
    assert e["latency_ms"]["usb2"] > e["latency_ms"]["usb3"] > 0
    assert set(e["latency"]["parts_ms"]["usb3"]) == {
        "tpu_compute", "parameters_streamed", "activations_streamed", "io_transfer", "cpu_ops"}


@pytest.mark.skipif(not (SHARED / "yolo").is_dir(), reason="../shared/data/yolo is absent")
def test_compiled_model_uses_what_the_compiler_did(tmp_path):
    """yolov8n-640's twin left 25 head ops on the CPU: with the int8 model beside it, the
    prediction places them as compiled; alone, it still predicts from the executable's size."""
    d = L.latency_of_model(
        read_model(SHARED / "yolo/yolov8n-640-maxwell/model_edgetpu.tflite"),
        cpu_twin=read_model(SHARED / "yolo/yolov8n-640-maxwell/model.tflite"),
    )
    assert d["cpu_ops"] == 25 and d["parts_ms"]["usb3"]["cpu_ops"] > 1
    alone = tmp_path / "model_edgetpu.tflite"
    alone.write_bytes((SHARED / "yolo/yolov8n-640-maxwell/model_edgetpu.tflite").read_bytes())
    e = L.latency_of_model(read_model(alone))
    assert e["cpu_ops"] == 25 and e["source"] == "compiled" and e["notes"]
    assert 0.5 < e["latency_ms"]["usb3"] / d["latency_ms"]["usb3"] < 2
