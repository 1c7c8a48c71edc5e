"""Done-when of issue 17 (item 1), on real models from ../shared (skipped without them): a COCO
detector (Ultralytics YOLOv8n export) plus Coral's iNaturalist insect classifier name, for each
detection, the species the classifier gives on the same crop alone (written out as a photo and
classified by itself)."""

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


@pytest.mark.parametrize("photo, threshold", [("bird.bmp", "0.25"), ("dragonfly.bmp", "0.05")])
def test_detector_plus_classifier_names_the_species_of_the_crop_alone(photo, threshold,
                                                                      tmp_path):  # fmt: skip
    detector = shared("yolo", "yolov8n-640-maxwell", "model.tflite")
    insects = shared("coral", "mobilenet_v2_1.0_224_inat_insect_quant.tflite")
    labels = shared("coral", "inat_insect_labels.txt")
    image = shared("coral", photo)
    r = CliRunner().invoke(main, ["detect", str(detector), str(image), "-t", threshold,
                                  "--classify", str(insects), "--classify-labels", str(labels),
                                  "--crop-labels", "bird", "--json", "-d", "cpu"])  # fmt: skip
    assert r.exit_code == 0, r.output
    birds = [d for d in json.loads(r.stdout)["detections"] if d["label"] == "bird"]
    assert birds, "the detector finds the animal as a bird"
    rgb = load_rgb(image)
    alone = Classifier(insects, labels=labels, device="cpu", top_k=3)
    for i, d in enumerate(birds):
        x0, y0, x1, y1 = crop_box(d["box"], (rgb.shape[1], rgb.shape[0]), MARGIN)
        path = tmp_path / f"crop{i}.png"
        Image.fromarray(np.ascontiguousarray(crop(rgb, d["box"]))).save(path)
        assert Image.open(path).size == (x1 - x0, y1 - y0)
        own = alone.classify_path(path)
        assert [c["id"] for c in d["classes"]] == [c.id for c in own.classes]
        assert d["classes"][0]["label"] == own.classes[0].label
        assert d["classes"][0]["score"] == pytest.approx(own.classes[0].score)
    if photo == "dragonfly.bmp":
        # and the crop of the whole dragonfly is the classifier's answer for the photo itself
        assert birds[0]["classes"][0]["label"].startswith("Micrathyria hagenii")
        assert alone.classify_path(image).classes[0].id == birds[0]["classes"][0]["id"]
    alone.close()
