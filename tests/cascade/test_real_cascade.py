"""Done-when of issue 17 (item 1), on real models from ../shared (skipped without them): a COCO
detector (Ultralytics YOLOv8n export) plus a species classifier name, for each detection, the
species the classifier gives on the same crop alone (written out as a photo and classified by
itself). Coral's iNat bird classifier is not in ../shared (and this machine has no network), so
the bird photos are named by Coral's ImageNet MobileNet v2 (its 59 bird species: macaw,
chickadee, ...) and the dragonfly by Coral's iNat insect classifier, the same family of model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edgekit.classify import Classifier
from edgekit.cli import main
from edgekit.detect.cascade import MARGIN, crop, crop_box
from edgekit.images import load_rgb
from tests.detect.conftest import shared

INSECTS = ("mobilenet_v2_1.0_224_inat_insect_quant.tflite", "inat_insect_labels.txt")
IMAGENET = ("mobilenet_v2_1.0_224_quant.tflite", "imagenet_labels.txt")


@pytest.mark.parametrize("photo, threshold, classifier, species", [
    ("bird.bmp", "0.25", INSECTS, None), ("dragonfly.bmp", "0.05", INSECTS, "Micrathyria hagenii"),
    ("bird.bmp", "0.25", IMAGENET, "chickadee"), ("parrot.jpg", "0.25", IMAGENET, "macaw"),
])  # fmt: skip
def test_detector_plus_classifier_names_the_species_of_the_crop_alone(photo, threshold,
                                                                      classifier, species,
                                                                      tmp_path):  # fmt: skip
    detector = shared("yolo", "yolov8n-640-maxwell", "model.tflite")
    model = shared("coral", classifier[0])
    labels = shared("coral", classifier[1])
    image = shared("coral", photo)
    r = CliRunner().invoke(main, ["detect", str(detector), str(image), "-t", threshold,
                                  "--classify", str(model), "--classify-labels", str(labels),
                                  "--crop-labels", "bird", "--json", "-d", "cpu"])  # fmt: skip
    assert r.exit_code == 0, r.output
    birds = [d for d in json.loads(r.stdout)["detections"] if d["label"] == "bird"]
    assert birds, "the detector finds the animal as a bird"
    rgb = load_rgb(image)
    alone = Classifier(model, labels=labels, device="cpu", top_k=3)
    for i, d in enumerate(birds):
        x0, y0, x1, y1 = crop_box(d["box"], (rgb.shape[1], rgb.shape[0]), MARGIN)
        path = tmp_path / f"crop{i}.png"
        Image.fromarray(np.ascontiguousarray(crop(rgb, d["box"]))).save(path)
        assert Image.open(path).size == (x1 - x0, y1 - y0)
        own = alone.classify_path(path)
        assert [c["id"] for c in d["classes"]] == [c.id for c in own.classes]
        assert d["classes"][0]["label"] == own.classes[0].label
        assert d["classes"][0]["score"] == pytest.approx(own.classes[0].score, abs=5e-5)
    if species is not None:
        # the species, and the crop of the whole animal is the classifier's answer for the photo
        assert birds[0]["classes"][0]["label"].startswith(species)
        assert alone.classify_path(image).classes[0].id == birds[0]["classes"][0]["id"]
    alone.close()
