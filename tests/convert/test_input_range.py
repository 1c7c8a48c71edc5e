"""The input range is decided, never silently assumed (issue 15 item 4).

A real model trained on -1..1 pixels, converted from a labelled class-per-folder --calib without
--input-range, keeps its float accuracy in int8 (on main it was converted as 0..1: int8
accuracy near chance and nothing said so). An explicit range the float model is near chance
with is refused naming the better one; --keep-input-range keeps it; without labels the range
and why are in the output and the bundle.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgekit.errors import EdgekitError
from edgekit.host import input_range as ir
from edgekit.manifest import load_bundle

from .conftest import GROUP, SIZE, assert_clean_failure, run_cli, tiny_net

NUM_VERIFY = 100  # this split holds out 79 apples and 21 bananas (the default one: apples only)


@pytest.fixture(scope="module")
def minus_one_model(apple_banana_dir, tmp_path_factory):
    """tiny_net trained for a few seconds on -1..1 pixels of the calibration side convert will
    use; saved as ``m11.h5`` with ``labels.txt`` beside it (as ``edgekit train`` leaves it)."""
    import keras

    from edgekit import images
    from edgekit.host.calibration import split

    files = images.find_images(apple_banana_dir)
    rels = [f.relative_to(apple_banana_dir).as_posix() for f in files]
    sp = split(rels, GROUP, NUM_VERIFY)
    x = np.stack([images.prepare(images.load_rgb(files[i]), (SIZE, SIZE)) for i in sp.calib])
    y = np.array([0 if files[i].parent.name == "apple" else 1 for i in sp.calib])
    keras.utils.set_random_seed(0)
    model = tiny_net(keras)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(images.to_float(x, (-1.0, 1.0)), y, epochs=15, batch_size=16, verbose=0)
    d = tmp_path_factory.mktemp("m11")
    model.save(d / "m11.h5")
    (d / "labels.txt").write_text("apple\nbanana\n")
    return d / "m11.h5"


def _convert(model, calib, out, *extra):
    return run_cli(
        "convert", model, "-o", out, "--calib", calib, "--group-pattern", GROUP,
        "--num-verify", NUM_VERIFY, "--no-compile", *extra,
    )  # fmt: skip


def test_trained_on_minus_one_keeps_its_float_accuracy_in_int8(
    minus_one_model, apple_banana_dir, tmp_path
):
    r = _convert(minus_one_model, apple_banana_dir, tmp_path / "b")
    assert r.exit_code == 0, (r.output, r.exception)
    m = load_bundle(tmp_path / "b").manifest
    decision = m.calibration["input_range"]
    acc = decision["float_accuracy"]
    print("input range decision:", decision, "verification:", m.verification)
    assert m.input.range == (-1.0, 1.0) and decision["source"] == "measured"
    assert acc["-1..1"] >= 0.95 and acc["0..1"] < 0.7 and set(acc) == {"0..1", "-1..1", "0..255"}
    v = m.verification
    assert v["images"] == NUM_VERIFY and v["accuracy_float"] >= 0.95
    assert v["accuracy_int8"] >= 0.95 and v["accuracy_int8"] >= v["accuracy_float"] - 0.05
    # The device's preprocessing maths: -1..1 over uint8 pixels is scale 2/255.
    assert m.input.scale == pytest.approx(2 / 255, rel=1e-3)
    out = r.stdout
    assert "range   -1..1 (measured: best float top-1" in out
    assert "float top-1 0..1 " in out and "-1..1 100.0%" in out and "0..255 " in out


def test_an_explicit_range_the_model_fails_on_is_refused_naming_the_better_one(
    minus_one_model, apple_banana_dir, tmp_path
):
    r = _convert(minus_one_model, apple_banana_dir, tmp_path / "b", "--input-range", "0,1")
    line = assert_clean_failure(r, tmp_path, "--input-range 0,1", "-1,1", "--keep-input-range")
    assert "no bundle written" in line and not (tmp_path / "b").exists()

    r = _convert(minus_one_model, apple_banana_dir, tmp_path / "k", "--input-range", "0,1",
                 "--keep-input-range", "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["input_range"]["range"] == [0.0, 1.0]
    assert summary["input_range"]["source"] == "option"
    assert summary["input_range"]["float_accuracy"]["-1..1"] >= 0.95
    assert "kept because of --keep-input-range" in r.stderr


def test_without_labels_the_range_and_why_are_in_the_output_and_the_bundle(
    minus_one_model, apple_banana_dir, tmp_path
):
    flat = tmp_path / "flat"  # the same photos, no class folders: nothing to measure with
    flat.mkdir()
    for f in sorted(apple_banana_dir.rglob("*.png"))[:40]:
        (flat / f"{f.parent.name}_{f.name}").write_bytes(f.read_bytes())
    r = run_cli("convert", minus_one_model, "-o", tmp_path / "b", "--calib", flat,
                "--num-calib", 30, "--no-compile")  # fmt: skip
    assert r.exit_code == 0, r.output
    d = load_bundle(tmp_path / "b").manifest.calibration["input_range"]
    assert d["source"] == "default" and d["range"] == [0.0, 1.0] and d["float_accuracy"] is None
    assert "no labelled images" in d["reason"]
    assert "range   0..1 (default: no --input-range, the model does not say" in r.stdout

    # edgekit train's record beside the model is the model's word for its range.
    (minus_one_model.parent / "m11_train.json").write_text('{"input_range": [-1, 1]}')
    try:
        r = run_cli("convert", minus_one_model, "-o", tmp_path / "c", "--calib", flat,
                    "--num-calib", 30, "--no-compile")  # fmt: skip
    finally:
        (minus_one_model.parent / "m11_train.json").unlink()
    assert r.exit_code == 0, r.output
    d = load_bundle(tmp_path / "c").manifest.calibration["input_range"]
    assert d["source"] == "model" and d["range"] == [-1.0, 1.0]
    assert "m11_train.json" in d["reason"]


def test_a_rescaling_layer_means_raw_pixels(apple_banana_dir, tmp_path):
    import keras

    inp = keras.Input((SIZE, SIZE, 3), name="r_image")  # explicit names
    x = keras.layers.Rescaling(1 / 255.0, name="r_rescale")(inp)
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu", name="r_conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="r_pool")(x)
    out = keras.layers.Dense(2, activation="softmax", name="r_dense")(x)
    keras.Model(inp, out, name="r").save(tmp_path / "r.h5")
    r = run_cli("convert", tmp_path / "r.h5", "-o", tmp_path / "b", "--calib", apple_banana_dir,
                "--num-calib", 20, "--num-verify", 0, "--no-compile")  # fmt: skip
    assert r.exit_code == 0, r.output
    m = load_bundle(tmp_path / "b").manifest
    assert m.input.range == (0.0, 255.0)
    assert m.calibration["input_range"]["source"] in ("model", "measured")
    assert m.calibration["input_range"]["hint"]["range"] == [0.0, 255.0]


# The decision rule itself, on made-up measurements (no TensorFlow).


def _m(acc: dict, images=40, classes=2):
    return ir.Measurement(acc, images, images, classes, {r: np.zeros((images, 2)) for r in acc})


def test_decide_prefers_the_hint_then_0_1_on_a_tie_and_needs_evidence():
    tm = ir.Hint((-1.0, 1.0), "Teachable Machine export", "crop", (224, 224))
    tie = _m({(0.0, 1.0): 1.0, (-1.0, 1.0): 0.99, (0.0, 255.0): 0.5})
    assert ir.decide(None, False, None, tie, 2).range == (0.0, 1.0)
    assert ir.decide(None, False, tm, tie, 2).range == (-1.0, 1.0)
    clear = _m({(0.0, 1.0): 0.5, (-1.0, 1.0): 0.55, (0.0, 255.0): 1.0})
    d = ir.decide(None, False, tm, clear, 2)
    assert d.range == (0.0, 255.0) and d.source == "measured" and "suggested -1..1" in d.reason
    weak = _m({(0.0, 1.0): 0.5, (-1.0, 1.0): 0.8, (0.0, 255.0): 0.5})  # below "high" (87.5 %)
    assert ir.decide(None, False, None, weak, 2).source == "default"
    one_class = _m({(0.0, 1.0): 0.0, (-1.0, 1.0): 1.0, (0.0, 255.0): 0.0}, classes=1)
    assert ir.decide(None, False, None, one_class, 2).source == "default"
    few = _m({(0.0, 1.0): 0.0, (-1.0, 1.0): 1.0, (0.0, 255.0): 0.0}, images=ir.MIN_DECIDE - 1)
    assert ir.decide(None, False, tm, few, 2).source == "model"


def test_decide_refuses_a_refuted_explicit_range_unless_kept():
    m = _m({(0.0, 1.0): 0.1, (-1.0, 1.0): 0.97, (0.0, 255.0): 0.1}, classes=10)
    with pytest.raises(EdgekitError) as e:
        ir.decide((0.0, 1.0), False, None, m, 10)
    assert "-1,1" in e.value.message and "--keep-input-range" in e.value.hint
    said = []
    assert ir.decide((0.0, 1.0), True, None, m, 10, warn=said.append).range == (0.0, 1.0)
    assert said and "kept" in said[0]
    # 10 classes: 40 % is well above chance (10 %): not refuted, kept without a word.
    ok = _m({(0.0, 1.0): 0.4, (-1.0, 1.0): 0.97, (0.0, 255.0): 0.1}, classes=10)
    assert ir.decide((0.0, 1.0), False, None, ok, 10).source == "option"


def test_balanced_accuracy_does_not_reward_answering_one_class():
    truth = np.array([0] * 9 + [1])
    assert ir.balanced_accuracy(np.zeros(10, int), truth) == pytest.approx(0.5)
    assert ir.balanced_accuracy(truth.copy(), truth) == 1.0


WILD_TM = (
    Path(__file__).resolve().parents[2].parent
    / "shared" / "data" / "keras-wild" / "tm-2021-k240-fingers" / "keras_model.h5"
)  # fmt: skip


@pytest.mark.skipif(not WILD_TM.is_file(), reason="../shared/data/keras-wild absent")
def test_teachable_machine_export_gets_its_preprocessing_and_labels_in_one_line(
    apple_banana_dir, tmp_path
):
    r = run_cli("convert", WILD_TM, "-o", tmp_path / "b", "--calib", apple_banana_dir,
                "--num-calib", 8, "--num-verify", 4, "--no-compile")  # fmt: skip
    assert r.exit_code == 0, (r.output, r.exception)
    m = load_bundle(tmp_path / "b").manifest
    assert (m.input.range, m.input.resize, m.input.size) == ((-1.0, 1.0), "crop", (224, 224))
    assert m.labels == ("thumb", "index")
    assert m.calibration["input_range"]["source"] == "model"
    said = [line for line in r.stdout.splitlines() if "Teachable Machine export" in line]
    assert any(line.startswith("  model   Teachable Machine export: range -1..1, crop to "
                               "224x224, 2 labels from") for line in said), r.stdout  # fmt: skip
