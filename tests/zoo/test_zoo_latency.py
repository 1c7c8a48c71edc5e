"""Predicted Edge TPU latency in the zoo: `zoo list` beside params and MACs (cached values checked
against the layer shapes) and `zoo build --budget-ms` picking the widest setting that fits."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from edgekit import zoo
from edgekit.cli import main
from edgekit.edgetpu.latency import latency_of_keras_stats
from edgekit.host.keras_stats import inspect_keras


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.mark.parametrize("name", list(zoo.REGISTRY))
def test_cached_latency_is_the_prediction_from_shapes(name):
    entry = zoo.REGISTRY[name]
    got = latency_of_keras_stats(inspect_keras(zoo.build(name)))["latency_ms"]
    assert entry.usb3_ms == pytest.approx(got["usb3"], abs=0.01)
    assert entry.latency_ms == pytest.approx(got, abs=0.01)  # USB 2 and PCIe cached too


def test_list_shows_predicted_latency():
    res = run("zoo", "list")
    assert res.exit_code == 0
    header = res.output.splitlines()[0]
    assert "params" in header and "MACs" in header and "USB3 ms" in header
    mnv1 = next(x for x in res.output.splitlines() if x.startswith("mobilenet_v1"))
    assert f"{zoo.REGISTRY['mobilenet_v1'].usb3_ms:.1f}" in mnv1
    rows = {r["name"]: r for r in json.loads(run("zoo", "list", "--json").output)["models"]}
    assert rows["squeezenet"]["predicted_usb3_ms"] == zoo.REGISTRY["squeezenet"].usb3_ms


def test_list_gives_every_link_as_inspect_does():
    """`zoo list --json` had only predicted_usb3_ms; inspect --json gives edgetpu.latency_ms =
    {usb3, usb2, pci}. Same keys here, and the text shows the three columns."""
    rows = {r["name"]: r for r in json.loads(run("zoo", "list", "--json").output)["models"]}
    for name, r in rows.items():
        ms = r["latency_ms"]
        assert list(ms) == ["usb3", "usb2", "pci"], name
        assert ms["usb3"] == r["predicted_usb3_ms"] and ms["usb2"] >= ms["usb3"] > 0
        assert ms["pci"] > 0
    text = run("zoo", "list").output.splitlines()
    assert text[0].split()[5:11] == ["USB3", "ms", "USB2", "ms", "PCIe", "ms"]
    y = next(x for x in text if x.startswith("yolov3_tiny")).split()
    assert y[5:8] == [f"{v:.1f}" for v in rows["yolov3_tiny"]["latency_ms"].values()]


def test_budget_picks_the_widest_setting_that_fits(tmp_path):
    """MobileNet v1 (alpha 1 at 224 predicted ~2.2 ms): a 2.1 ms budget keeps alpha 1 and
    shrinks the input; what it picked is what it wrote, and every wider try was over."""
    out = tmp_path / "m.h5"
    res = run("zoo", "build", "mobilenet_v1", "--classes", "10", "--budget-ms", "2.1",
              "-o", str(out), "--json")  # fmt: skip
    assert res.exit_code == 0, res.output
    s = json.loads(res.output)
    b = s["budget"]
    picked = b["picked"]
    assert picked["alpha"] == 1.0 and picked["usb3_ms"] <= 2.1
    assert all(r["usb3_ms"] > 2.1 for r in b["tried"] if r is not picked and r != picked)
    assert s["input_shape"] == [picked["input_size"], picked["input_size"], 3]
    assert picked["input_size"] < 224 and s["options"]["alpha"] == 1.0
    stats = inspect_keras(out)
    assert latency_of_keras_stats(stats)["latency_ms"]["usb3"] == picked["usb3_ms"]
    text = run("zoo", "build", "mobilenet_v1", "--classes", "10", "--budget-ms", "2.1",
               "-o", str(tmp_path / "t.h5")).output  # fmt: skip
    assert f"picked alpha 1, input {picked['input_size']}x{picked['input_size']}, predicted" in text
    assert "over the budget: alpha 1, input 224x224" in text


def test_budget_below_the_usb_round_trip_is_refused(tmp_path):
    out = tmp_path / "m.h5"
    res = run("zoo", "build", "squeezenet", "--budget-ms", "0.5", "-o", str(out))
    assert res.exit_code == 1
    line = res.output.strip()
    assert line.startswith("Error: no squeezenet setting fits 0.5 ms on a USB 3 Coral")
    assert "input 96x96" in line and not out.exists()


def test_inspect_on_a_keras_file_shows_the_prediction(tmp_path):
    out = tmp_path / "m.h5"
    assert run("zoo", "build", "mobilenet_v1", "--alpha", "0.25", "--input-size", "96",
               "--classes", "3", "-o", str(out)).exit_code == 0  # fmt: skip
    text = run("inspect", str(out)).output
    line = next(x for x in text.splitlines() if x.startswith("Latency"))
    assert "per inference on a USB 3 Coral; USB 2:" in line
    e = json.loads(run("inspect", "--json", str(out)).output)["edgetpu"]
    assert e["latency"]["source"] == "keras" and e["latency_ms"]["usb3"] > 0
    assert e["latency"]["notes"] == ["Keras design: assumes every layer maps to the Edge TPU"]


def test_budget_searches_up_to_a_designs_own_input_size(tmp_path):
    """yolov3_tiny is a 416 design: the candidates were MobileNet's 224..96 only, so a 25 ms
    budget (416 is predicted ~20 ms) built it at 224. Designs above 224 are tried from their own
    input down, in steps of their largest stride (32), then MobileNet's sizes."""
    from edgekit.host.zoo_budget import candidates

    y3 = [s for _, s in candidates(zoo.REGISTRY["yolov3_tiny"], None, None)]
    assert y3 == [416, 384, 352, 320, 288, 256, 224, 192, 160, 128, 96]
    assert [s for a, s in candidates(zoo.REGISTRY["mobilenet_v1"], None, None) if a == 1.0] == [
        224, 192, 160, 128, 96]  # fmt: skip
    out = tmp_path / "y3.h5"
    res = run("zoo", "build", "yolov3_tiny", "--classes", "3", "--budget-ms", "25",
              "-o", str(out), "--json")  # fmt: skip
    assert res.exit_code == 0, res.output
    picked = json.loads(res.output)["budget"]["picked"]
    assert picked["input_size"] == 416 and picked["usb3_ms"] <= 25
