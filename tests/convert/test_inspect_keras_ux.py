"""`edgekit inspect` on Keras models that are no image model, and the options that do not apply
to Keras: a dense MNIST model (flattened 784 input) saved as the DLwP notebooks' ModelCheckpoint
did (Keras 2 HDF5 under a .keras name) is described, not refused; --tensors and --with refuse a
Keras file in one line instead of ignoring the option or saying "not a TFLite model"."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from .conftest import assert_clean_failure, run_cli

WILD_MNIST = (Path(__file__).resolve().parents[2].parent / "shared" / "data" / "keras-wild"
              / "mnist-dense-dotkeras-k260" / "checkpoint_path.keras")  # fmt: skip


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    """{"k2": Keras 2 HDF5 as checkpoint.keras, "k3": a Keras 3 .keras zip}: Dense(64, relu) ->
    Dense(10, softmax) on a flattened 28x28 digit (50,890 parameters)."""
    from edgekit.host.tfenv import load_tensorflow

    load_tensorflow()
    import keras
    import tf_keras

    d = tmp_path_factory.mktemp("dense")
    k2 = tf_keras.Sequential([tf_keras.Input((784,)), tf_keras.layers.Dense(64, "relu"),
                              tf_keras.layers.Dense(10, "softmax")])  # fmt: skip
    k2.save(d / "k2.h5")
    k2.save(d / "k2_savedmodel", save_format="tf")
    shutil.copy(d / "k2.h5", d / "checkpoint.keras")  # HDF5 inside, .keras outside
    k3 = keras.Sequential([keras.Input((784,)), keras.layers.Dense(64, activation="relu"),
                           keras.layers.Dense(10, activation="softmax")])  # fmt: skip
    k3.save(d / "k3.keras")
    return {"k2": d / "checkpoint.keras", "k3": d / "k3.keras", "dir": d}


def test_a_dense_keras2_model_is_described_not_refused(dense):
    r = run_cli("inspect", dense["k2"], "--json")
    assert r.exit_code == 0, (r.output, r.exception)
    rep = json.loads(r.stdout)
    assert rep["format"] == "keras" and rep["params"] == 50_890 and rep["macs"] == 50_816
    assert [x["type"] for x in rep["layers"]] == ["Dense", "Dense"]
    assert rep["input_shapes"] == [[784]] and rep["output_shapes"] == [[10]]
    assert rep["image_model"] is False and "not an image model" in rep["notes"][0]
    assert "edgekit convert" in rep["notes"][0]
    assert rep["edgetpu"]["latency_ms"]["usb3"] > 0, "what edgekit predicts for its layers"


def test_a_tf_keras_savedmodel_of_it_too(dense):
    r = run_cli("inspect", dense["dir"] / "k2_savedmodel", "--json")
    assert r.exit_code == 0, (r.output, r.exception)
    rep = json.loads(r.stdout)
    assert rep["params"] == 50_890 and rep["image_model"] is False


def test_the_text_says_it_is_no_image_model(dense):
    r = run_cli("inspect", dense["k3"])
    assert r.exit_code == 0, (r.output, r.exception)
    out = r.stdout
    assert "Input    [784]" in out and "Output   [10]" in out
    assert "Note     not an image model: input [784]" in out
    assert "Params   50,890" in out and "Latency  predicted" in out


def test_an_image_model_gets_no_note(tmp_path):
    from edgekit.host.tfenv import load_tensorflow

    load_tensorflow()
    import keras

    layers = keras.layers
    m = keras.Sequential([keras.Input((16, 16, 3)), layers.Conv2D(4, 3),
                          layers.GlobalAveragePooling2D(), layers.Dense(2)])  # fmt: skip
    m.save(tmp_path / "img.keras")
    r = run_cli("inspect", tmp_path / "img.keras", "--json")
    assert r.exit_code == 0, (r.output, r.exception)
    rep = json.loads(r.stdout)
    assert rep["image_model"] is True and rep["notes"] == []


@pytest.mark.skipif(not WILD_MNIST.is_file(), reason="../shared/data/keras-wild absent")
def test_the_real_dlwp_checkpoint_is_described():
    r = run_cli("inspect", WILD_MNIST)
    assert r.exit_code == 0, (r.output, r.exception)
    assert "Params   407,050" in r.stdout and "not an image model: input [784]" in r.stdout


def test_tensors_of_a_keras_model_is_refused_in_one_line(dense):
    for model in (dense["k2"], dense["k3"], dense["dir"] / "k2.h5"):
        r = run_cli("inspect", model, "--tensors")
        line = assert_clean_failure(r, dense["dir"], "--tensors", "Keras model", code=2)
        assert "output shape" in line
    assert r.stdout == ""


def test_with_a_keras_partner_says_convert_first(dense, coral_dir):
    tflite = coral_dir / "mobilenet_v1_0.25_128_quant.tflite"
    if not tflite.is_file():
        pytest.skip("../shared/data/coral absent")
    for args in ((tflite, "--with", dense["k2"]), (dense["dir"] / "k2.h5", "--with", tflite)):
        r = run_cli("inspect", *args)
        assert_clean_failure(r, dense["dir"], "is a Keras model", "convert it first")
    r = run_cli("inspect", tflite, "--with", dense["dir"])  # a plain folder: not a bundle
    assert_clean_failure(r, dense["dir"], "not an edgekit bundle")
    r = run_cli("inspect", tflite, "--with", tflite.with_name("mobilenet_v2_1.0_224_quant.tflite"),
                "--tensors")  # fmt: skip
    assert_clean_failure(r, dense["dir"], "--tensors", "--with", code=2)


def test_custom_objects_with_a_tflite_is_refused_in_one_line(dense, coral_dir):
    """--custom-objects only means something for a Keras model: with a .tflite (or --with) it
    was silently ignored."""
    tflite = coral_dir / "mobilenet_v1_0.25_128_quant.tflite"
    if not tflite.is_file():
        pytest.skip("../shared/data/coral absent")
    custom = dense["dir"] / "custom.py"
    custom.write_text("def unused_activation(x):\n    return x\n")
    r = run_cli("inspect", tflite, "--custom-objects", custom)
    assert_clean_failure(r, dense["dir"], "--custom-objects", "no Keras model", code=2)
    r = run_cli("inspect", tflite, "--with", tflite, "--custom-objects", custom)
    assert_clean_failure(r, dense["dir"], "--custom-objects", "--with", code=2)
    r = run_cli("inspect", dense["k3"], "--custom-objects", custom)  # a Keras model: taken
    assert r.exit_code == 0, r.output
