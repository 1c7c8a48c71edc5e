"""`edgekit bench DETECTOR --classify CLASSIFIER`: per model and per frame (detector + crops),
text and JSON, with the tiny real models."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from PIL import Image

from edgekit.cli import main
from tests.detect.conftest import scene


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    p = tmp_path_factory.mktemp("photos") / "two.png"
    Image.fromarray(scene(128, 128, [("red", 64, 0, 96, 32), ("blue", 0, 64, 32, 96)])).save(p)
    return p


def _bench(*args):
    return CliRunner().invoke(main, ["bench", *map(str, args), "-d", "cpu", "--runs", "5",
                                     "--warmup", "1"])  # fmt: skip


def test_bench_times_the_cascade_per_frame_and_per_model(detect_bundle, species_bundle, photo):
    r = _bench(detect_bundle, "--classify", species_bundle, "--image", photo, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["task"] == "cascade" and out["runs"] == 5 and "note" not in out
    assert set(out["per_model"]) == {"detector", "classifier"}
    for m in out["per_model"].values():
        assert m["backend"] == "cpu" and m["p50_ms"] > 0 and m["fps"] > 0
    f = out["per_frame"]
    assert f["crops_per_frame"] == 2
    assert f["detect_ms"] > 0 and f["classify_ms"] > 0 and f["crop_ms"] >= 0
    # the wall time of a frame holds its parts
    assert f["wall"]["mean_ms"] >= f["detect_ms"] + f["classify_ms"]
    mean = f["wall"]["mean_ms"]  # rounded to 1 us: up to 0.0005 / mean of fps
    assert out["fps"] == pytest.approx(1000 / mean, rel=1e-3 + 0.0005 / mean)
    text = _bench(detect_bundle, "--classify", species_bundle, "--image", photo)
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert [ln.split()[0] for ln in lines] == ["detector", "classifier", "per", "of"]
    assert "2.0 crops/frame" in lines[2]


def test_without_an_image_it_says_no_crop_was_classified(detect_bundle, species_bundle):
    r = _bench(detect_bundle, "--classify", species_bundle, "--json")
    out = json.loads(r.stdout)
    assert out["per_frame"]["crops_per_frame"] == 0 and "pass --image" in out["note"]


def test_bench_cascade_mistakes(detect_bundle, species_bundle, tmp_path):
    r = _bench(detect_bundle, "--classify", species_bundle, "--plot", tmp_path / "p.png")
    assert r.exit_code == 2 and "--plot" in r.stderr
    r = _bench(detect_bundle, "--crop-labels", "red")
    assert r.exit_code == 2 and "needs --classify" in r.stderr
    r = _bench(detect_bundle, "--classify", species_bundle, "--crop-labels", "cat")
    assert r.exit_code == 1 and "crop label cat" in r.stderr
