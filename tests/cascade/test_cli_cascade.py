"""`edgekit detect --classify`: each detection's crop classified by a second real model, in
JSON, text and annotated copies; crop labels; one-line refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edgekit.classify import Classifier
from edgekit.cli import main
from edgekit.detect.cascade import MARGIN, crop, open_cascade
from tests.detect.conftest import scene


def _cli(*args):
    return CliRunner().invoke(main, ["detect", *map(str, args), "-d", "cpu"])


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    # 128x128 letterboxed to the detector's 32x32: each 32-px square is one 8x8 cell
    p = tmp_path_factory.mktemp("photos") / "two.png"
    Image.fromarray(scene(128, 128, [("red", 64, 0, 96, 32), ("blue", 0, 64, 32, 96)])).save(p)
    return p


def test_each_detection_gains_the_classes_of_its_crop(detect_bundle, species_bundle, photo):
    r = _cli(detect_bundle, photo, "--classify", species_bundle, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert [set(d) for d in out["detections"]] == [{"id", "label", "score", "box", "classes"}] * 2
    by = {d["label"]: d for d in out["detections"]}
    assert [c["label"] for c in by["red"]["classes"]] == ["cardinal", "parakeet", "bluejay"]
    assert by["blue"]["classes"][0] == {"id": 2, "label": "bluejay",
                                        "score": by["blue"]["classes"][0]["score"]}
    for d in out["detections"]:
        scores = [c["score"] for c in d["classes"]]
        assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)


def test_the_species_is_what_the_classifier_says_on_the_crop_alone(
    detect_bundle, species_bundle, photo, tmp_path
):
    casc = open_cascade(detect_bundle, species_bundle, device="cpu")
    rgb = np.asarray(Image.open(photo).convert("RGB"))
    res = casc.run(rgb)
    casc.close()
    alone = Classifier(species_bundle, device="cpu")
    assert res.crops == 2 and res.inference_ms == pytest.approx(res.detect_ms + res.classify_ms)
    for d in res.detections:
        # the crop, written out and classified as a photo of its own
        path = tmp_path / f"{d.label}.png"
        Image.fromarray(np.ascontiguousarray(crop(rgb, d.box, MARGIN))).save(path)
        assert d.classes == alone.classify_path(path).classes
    alone.close()
    assert res.species_counts() == {"bluejay": 1, "cardinal": 1}


def test_crop_labels_top_k_and_a_bare_classifier_with_its_label_file(
    detect_bundle, species_bundle, species_labels, photo
):
    bare = next(species_bundle.glob("*.tflite"))
    r = _cli(detect_bundle, photo, "--classify", bare, "--classify-labels", species_labels,
             "--crop-labels", "red", "--classify-top-k", "1", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    by = {d["label"]: d for d in out["detections"]}
    assert [c["label"] for c in by["red"]["classes"]] == ["cardinal"]
    assert by["blue"]["classes"] == []  # not a crop label: not classified
    assert out["crops"] == 1 and out["inference_ms"] >= out["classify_ms"] > 0  # as the text


def test_text_and_annotated_copies_show_the_species(detect_bundle, species_bundle, photo,
                                                    tmp_path):  # fmt: skip
    plain = tmp_path / "plain"
    _cli(detect_bundle, photo, "--annotate", plain)
    r = _cli(detect_bundle, photo, "--classify", species_bundle, "--annotate", tmp_path / "ann")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[1] == "  2 crops classified" + lines[1].split("classified")[1]
    assert any(ln.startswith("  red (0)") and "-> cardinal (0)" in ln for ln in lines)
    assert any(ln.startswith("  blue (2)") and "-> bluejay (2)" in ln for ln in lines)
    a = np.asarray(Image.open(tmp_path / "ann" / "two.png"))
    b = np.asarray(Image.open(plain / "two.png"))
    assert a.shape == b.shape and not np.array_equal(a, b)  # the longer tag: species drawn


def test_mistakes_are_one_line(detect_bundle, species_bundle, photo):
    r = _cli(detect_bundle, photo, "--classify", species_bundle, "--crop-labels", "bird")
    assert r.exit_code == 1 and len(r.stderr.splitlines()) == 1
    assert "crop label bird: not a label of the detector" in r.stderr
    r = _cli(detect_bundle, photo, "--crop-labels", "red")
    assert r.exit_code == 2 and "need --classify" in r.stderr
    r = _cli(detect_bundle, photo, "--classify-top-k", "3")  # was ignored without a word
    assert r.exit_code == 2 and "--classify-top-k need --classify CLASSIFIER" in r.stderr
    r = _cli(detect_bundle, photo, "--classify", photo)
    assert r.exit_code == 1 and "not a TFLite model" in r.stderr
    r = _cli(detect_bundle, photo, "--classify", detect_bundle)  # a detector is no classifier
    assert r.exit_code == 1 and r.stderr.startswith("Error:")
    r = _cli(detect_bundle, photo, "--classify", species_bundle, "--crop-labels", " , ")
    assert r.exit_code == 2
