"""Teachable Machine's own Edge TPU export, as TM ships it (converted_edgetpu/: model_edgetpu.tflite
+ labels.txt with ``0 Name`` lines, no bundle), runs in classify, bench and serve --check: its
labels without the index, TM's centre crop, raw uint8 pixels for its quantized input.

The compiled model is Coral's MobileNet v1 (a real ``edgetpu-custom-op`` model); the fake Edge
TPU runs its CPU twin, kept outside the export folder (TM ships no twin)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from edgekit.backends.devices import select_device
from edgekit.classify import Classifier
from edgekit.cli import main
from edgekit.images import load_rgb, prepare

from .runtime_fakes import USB3, FakeInterpreter, FakeStack

V1 = "mobilenet_v1_0.25_128_quant"


class TwinElsewhere(FakeStack):
    """The fake Edge TPU, computing with a CPU twin that is not beside the compiled model."""

    def __init__(self, twin, **kw):
        super().__init__(devices=[USB3], **kw)
        self.twin = twin

    def make_interpreter(self, model_path, device, threads):
        if select_device(self.devices, device) is None:
            raise ValueError("Failed to load delegate from libedgetpu.so.1\n")
        self.opened.append((model_path, device))
        return FakeInterpreter(str(self.twin).replace(".tflite", "_edgetpu.tflite"))


@pytest.fixture()
def tm_edgetpu(coral_dir, tmp_path):
    d = tmp_path / "converted_edgetpu"
    d.mkdir()
    shutil.copy(coral_dir / f"{V1}_edgetpu.tflite", d / "model_edgetpu.tflite")
    names = (coral_dir / "imagenet_labels.txt").read_text().splitlines()
    (d / "labels.txt").write_text("".join(f"{i} {n}\n" for i, n in enumerate(names)))
    twin_dir = tmp_path / "twin"
    twin_dir.mkdir()
    shutil.copy(coral_dir / f"{V1}.tflite", twin_dir / "model.tflite")
    return d / "model_edgetpu.tflite", twin_dir / "model.tflite", names


def test_tm_edgetpu_export_classifies_as_tm_meant(tm_edgetpu, coral_dir, use_stack):
    model, twin, names = tm_edgetpu
    use_stack(TwinElsewhere(twin))
    c = Classifier(model, device="usb", top_k=3)
    assert c.runner.device == "usb:0"
    assert c.labels[286] == names[286] == "Egyptian cat"  # "286 Egyptian cat": index dropped
    assert c.resize == "crop" and c.input_kind == "raw"  # TM's fit; scale 1/128 zp 128
    img = load_rgb(coral_dir / "cat.bmp")
    res = c.classify(img)
    # The same as the twin fed TM's centre crop by hand.
    ref = Classifier(twin, device="cpu", top_k=3)
    crop = prepare(img, c.input_size, resize_mode="crop")
    same = [(x.id, x.score) for x in ref.classify(crop).classes]
    assert same == [(x.id, x.score) for x in res.classes] and res.top.label == "Egyptian cat"


def test_tm_structure_needs_the_indexed_labels(tm_edgetpu, tmp_path):
    from edgekit import teachable

    model = tm_edgetpu[0]
    assert teachable.tflite_export(model).resize == "crop"
    (model.parent / "labels.txt").write_text("cat\ndog\n")  # not TM's "0 Name" lines
    assert teachable.tflite_export(model) is None
    other = model.with_name("mobilenet_edgetpu.tflite")
    shutil.copy(model, other)
    assert teachable.tflite_export(other) is None


def test_tm_edgetpu_export_in_the_cli(tm_edgetpu, coral_dir, use_stack, tmp_path):
    model, twin, _ = tm_edgetpu
    stack = use_stack(TwinElsewhere(twin))
    r = CliRunner().invoke(main, ["classify", str(model), str(coral_dir / "cat.bmp"), "--device",
                                  "usb", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)[0]["classes"][0]["label"] == "Egyptian cat"
    r = CliRunner().invoke(main, ["bench", str(model), "--device", "usb", "--runs", "5",
                                  "--warmup", "1", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["device"] == "usb:0"
    assert stack.opened and all(p.endswith("model_edgetpu.tflite") for p, _ in stack.opened)
    assert np.isfinite(json.loads(r.stdout)["p50_ms"])


def test_tm_edgetpu_export_in_serve(tm_edgetpu, coral_dir, use_stack):
    """serve builds its model through the same factory: labels and crop come with it."""
    from edgekit.stream.config import from_dict
    from edgekit.stream.serve import model_factory

    model, twin, _ = tm_edgetpu
    use_stack(TwinElsewhere(twin))
    cfg = from_dict({"model": {"path": str(model), "device": "usb"}})
    clf = model_factory(cfg)()
    try:
        assert clf.labels[286] == "Egyptian cat" and clf.resize == "crop"
        assert clf.classify(load_rgb(coral_dir / "cat.bmp")).top.label == "Egyptian cat"
    finally:
        clf.close()
