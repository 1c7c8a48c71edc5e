"""End to end: a model trained on apple-banana (split by original photo) -> bundle, checked with
the real int8 interpreter, the TFLite reader and the manifest loader."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgekit.manifest import load_bundle
from edgekit.tflite import read_model

from .conftest import FAKE_COMPILER, GROUP, convert_cli, run_cli


@pytest.fixture(scope="session")
def bundle(trained, apple_banana_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("e2e") / "bundle"
    r = run_cli(
        "convert",
        trained["h5"],
        "-o",
        out,
        "--calib",
        apple_banana_dir,
        "--group-pattern",
        GROUP,
        "--labels",
        trained["labels"],
        "--compiler",
        FAKE_COMPILER,
        "--json",
    )
    assert r.exit_code == 0, (r.stdout, r.stderr, r.exception)
    return out, json.loads(r.stdout), r


def test_bundle_files_and_manifest(bundle, trained):
    out, summary, _ = bundle
    assert sorted(p.name for p in out.iterdir()) == [
        "edgekit.json",
        "labels.txt",
        "tiny_int8.tflite",
        "tiny_int8_edgetpu.log",
        "tiny_int8_edgetpu.tflite",
    ]
    assert summary["bundle"] == str(out) and summary["compiled"] is True
    m = load_bundle(out).manifest
    assert m.input.shape == (1, 32, 32, 3) and m.input.dtype == "uint8"
    # range 0..1 from uint8 pixels: the converter picks scale 1/255, zero point 0, so the device
    # feeds raw pixels with no arithmetic.
    assert m.input.scale == pytest.approx(1 / 255) and m.input.zero_point == 0
    assert m.output.shape == (1, 2) and m.output.dtype == "uint8"
    assert m.labels == ("apple", "banana")
    assert (out / "labels.txt").read_text() == "apple\nbanana\n"
    assert m.source["format"] == "h5" and len(m.source["sha256"]) == 64
    assert m.tools["tensorflow"] and m.tools["keras"]
    assert m.tools["edgetpu_compiler"] == "16.0.384591198"
    # 8 original photos per class; "apple_7" and "bana_7" are different photos: 16 groups.
    assert m.calibration["group_pattern"] == GROUP and m.calibration["groups"] == 16
    assert m.calibration["used"] > 100 and m.calibration["unreadable"] == 0


def test_int8_model_is_static_full_integer(bundle):
    out, _, _ = bundle
    info = read_model(out / "tiny_int8.tflite")
    assert info.float_tensors() == () and info.dynamic_tensors() == ()
    assert info.inputs[0].shape_signature in (None, (1, 32, 32, 3))
    ops = info.op_counts()
    assert not {"SHAPE", "PACK", "STRIDED_SLICE"} & set(ops)
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"} <= set(ops)
    conv = next(op for op in info.main.operators if op.opcode == "CONV_2D")
    weights = info.main.tensors[conv.inputs[1]]
    assert weights.dtype == "int8" and weights.quantization.per_channel


def test_agreement_on_held_out_photos(bundle, ab_split):
    """Done-when criterion: >= 98% top-1 agreement on images of photos never trained on nor
    calibrated with."""
    out, _, _ = bundle
    v = load_bundle(out).manifest.verification
    files, sp = ab_split
    assert v["images"] == len(sp.verify) >= 50
    assert v["agreement"] >= 0.98
    assert v["mean_abs_error"] < 0.05 and v["max_abs_error"] < 0.5
    assert 0.0 <= v["accuracy_int8"] <= 1.0 and "accuracy_float" in v
    # as edgekit.json and convert --json carry them: fractions to 4 decimals, errors to 6
    # (they read 0.6666666666666666 and 0.2339928299188614)
    for key, digits in (("agreement", 4), ("accuracy_int8", 4), ("accuracy_float", 4),
                        ("mean_abs_error", 6), ("max_abs_error", 6)):  # fmt: skip
        assert v[key] == round(v[key], digits), (key, v[key])
    # held-out photos are really disjoint from calibration photos
    import re

    def photo(i):  # (class, original photo number): apple_7 and bana_7 are different photos
        return files[i].parent.name, re.findall(r"(?:apple|bana)[-_](\d+)", files[i].name)[-1]

    assert not {photo(i) for i in sp.verify} & {photo(i) for i in sp.calib}


def test_bundle_runs_like_the_device_will(bundle, apple_banana_dir, ab_split):
    """Feed raw pixels to the bundle's model as the manifest says; compare with the float model."""
    import keras
    from ai_edge_litert.interpreter import Interpreter

    from edgekit import images

    out, _, _ = bundle
    b = load_bundle(out)
    m = b.manifest
    files, sp = ab_split
    model = keras.models.load_model(m.source["path"], compile=False)
    interp = Interpreter(model_path=str(b.cpu_model))
    interp.allocate_tensors()
    i, o = interp.get_input_details()[0], interp.get_output_details()[0]
    agree = 0
    for idx in sp.verify[:20]:
        px = images.prepare(
            images.load_rgb(files[idx]), m.input.size, m.input.resize, m.input.color
        )
        x = images.to_float(px, m.input.range)
        q = np.clip(np.round(x / m.input.scale) + m.input.zero_point, 0, 255).astype(np.uint8)
        interp.set_tensor(i["index"], q[None])
        interp.invoke()
        score = (
            interp.get_tensor(o["index"]).astype(np.float32) - m.output.zero_point
        ) * m.output.scale
        ref = np.asarray(model(x[None]))
        agree += int(score.argmax() == ref.argmax())
    assert agree >= 19


def test_compile_report_in_manifest(bundle):
    out, _, _ = bundle
    c = load_bundle(out).manifest.compile
    assert c["status"] == "compiled"
    rep = c["report"]
    assert rep["success"] and rep["version"] == "16.0.384591198"
    assert rep["ops_total"] == sum(c["int8_ops"].values()) == rep["ops_tpu"] and rep["ops_cpu"] == 0
    assert rep["subgraphs"] == 1 and rep["off_chip_bytes"] >= 0 and rep["on_chip_bytes"] > 0
    assert {r["status"] for r in rep["operators"]} == {"Mapped to Edge TPU"}
    assert c["prediction"] is not None and c["prediction"]["cpu_ops"] == 0


def test_human_summary(trained, apple_banana_dir, tmp_path):
    r = convert_cli(
        trained["keras"],
        tmp_path / "b",
        apple_banana_dir,
        "--compiler",
        FAKE_COMPILER,
        num_calib=40,
        num_verify=20,
    )
    assert r.exit_code == 0, r.stderr
    assert "Wrote" in r.stdout and "agreement" in r.stdout and "on the Edge TPU" in r.stdout
    assert "only 40 calibration images" in r.stderr  # < 100 images: a warning, not an error


def test_device_runtime_reproduces_the_reported_accuracy(bundle, apple_banana_dir):
    """Issue 3's done-when: the device-side Classifier, reading only the bundle, classifies the
    converter's held-out photos with exactly the int8 accuracy the converter reported (same pixel
    path, same quantization), and `edgekit classify --json` agrees with it."""
    from edgekit.classify import Classifier

    out, _, _ = bundle
    m = load_bundle(out).manifest
    held_out = m.calibration["verify_files"]
    assert len(held_out) == m.verification["images"] > 0
    clf = Classifier(out, device="cpu", top_k=1)
    hits = 0
    for rel in held_out:
        top = clf.classify_path(apple_banana_dir / rel).classes[0]
        hits += int(top.label == rel.split("/", 1)[0])
    assert hits / len(held_out) == pytest.approx(m.verification["accuracy_int8"], abs=1e-9)

    sample = [str(apple_banana_dir / rel) for rel in held_out[:3]]
    r = run_cli("classify", out, *sample, "--device", "cpu", "--top-k", "1", "--json")
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert [g["classes"][0]["label"] for g in got] == [
        clf.classify_path(p).classes[0].label for p in sample
    ]
