"""edgekit/host/loaders on real Keras 2 files written by tf_keras: Teachable Machine's nesting,
HDF5 under any suffix, tf.keras SavedModels, the legacy-free fallback, and every refusal with its
cause in one line."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgekit.errors import EdgekitError
from edgekit.manifest import load_bundle

from . import tf_keras_models as tkm
from .conftest import assert_clean_failure, convert_cli


@pytest.fixture(scope="module")
def tf_keras():
    from edgekit.host.tfenv import load_tensorflow

    load_tensorflow()
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    return tf_keras


@pytest.fixture(scope="module")
def tm_export(tf_keras, tmp_path_factory):
    """A Teachable Machine export as TM writes it: keras_model.h5 + labels.txt (``0 Name``)."""
    d = tmp_path_factory.mktemp("converted_keras")
    model = tkm.teachable_machine(tf_keras, classes=2, size=96)
    model.save(d / "keras_model.h5")
    (d / "labels.txt").write_text("0 Apple\n1 Banana\n")
    return d / "keras_model.h5", model


@pytest.fixture(scope="module")
def k2_cnn(tf_keras, tmp_path_factory):
    d = tmp_path_factory.mktemp("k2cnn")
    model = tkm.cnn(tf_keras)
    model.save(d / "cnn.h5")
    model.save(d / "cnn_savedmodel", save_format="tf")
    model.save(d / "cnn_v3.keras")  # the v3 zip format, as Keras 2.13-2.15 wrote it
    shutil.copy(d / "cnn.h5", d / "cnn.model")  # HDF5 under other names, as users save them
    shutil.copy(d / "cnn.h5", d / "cnn.keras")
    return d, model


@pytest.fixture(scope="module")
def refused(tf_keras, tmp_path_factory):
    d = tmp_path_factory.mktemp("refused")
    files = tkm.save_refused(tf_keras, d)
    files["keras1"] = tkm.keras1_file(d / "old.h5")
    files["lfs"] = d / "keras_model.h5"
    files["lfs"].write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:"
        + "ab" * 32
        + "\nsize 2453432\n"
    )
    return files


def _x(n, size, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, 3)).astype(np.float32)


def test_stock_keras3_cannot_load_the_tm_fixture(tm_export):
    """The fixture is faithful: Keras 3 fails on TM's nesting (keras-team/keras#20084)."""
    import keras

    with pytest.raises(Exception):  # noqa: B017 - whatever Keras 3 raises, it does not load
        keras.models.load_model(tm_export[0], compile=False)


def test_teachable_machine_is_recognised(tm_export):
    from edgekit.host import keras_io

    path, model = tm_export
    loaded = keras_io.load(path)
    assert (loaded.format, loaded.loader, loaded.kind) == ("teachable-machine", "tf_keras", "h5")
    hint = loaded.preprocessing
    assert hint.input_range == (-1.0, 1.0) and hint.resize == "crop" and hint.size == (96, 96)
    assert "Teachable Machine" in hint.reason
    assert loaded.labels == ["Apple", "Banana"]
    assert loaded.input_shape == (1, 96, 96, 3) and loaded.output_shape == (1, 2)
    x = _x(3, 96)
    ref = model.predict(x, verbose=0)
    np.testing.assert_allclose(loaded.batched(x), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(loaded.model(x[:1])), ref[:1], rtol=1e-5, atol=1e-6)


def test_teachable_machine_converts_with_its_labels(tm_export, apple_banana_dir, tmp_path):
    r = convert_cli(tm_export[0], tmp_path / "b", apple_banana_dir, "--no-compile",
                    num_calib=12, num_verify=6)  # fmt: skip
    assert r.exit_code == 0, (r.stderr, r.exception)
    b = load_bundle(tmp_path / "b")
    assert list(b.manifest.labels) == ["Apple", "Banana"]
    assert b.manifest.input.shape == (1, 96, 96, 3)


@pytest.mark.parametrize("name", ["cnn.h5", "cnn.model", "cnn.keras"])
def test_keras2_hdf5_under_any_suffix(name, k2_cnn):
    from edgekit.host import keras_io

    d, model = k2_cnn
    loaded = keras_io.load(d / name)
    assert (loaded.format, loaded.loader, loaded.kind) == ("keras2-h5", "tf_keras", "h5")
    assert loaded.fixups == ()  # tf_keras reads Keras 2 configs as they are
    x = _x(4, 32)
    np.testing.assert_allclose(loaded.batched(x), model.predict(x, verbose=0), atol=1e-5)


def test_keras2_savedmodel_loads_as_keras(k2_cnn):
    from edgekit.host import keras_io

    d, model = k2_cnn
    loaded = keras_io.load(d / "cnn_savedmodel")
    assert (loaded.format, loaded.loader, loaded.kind) == ("savedmodel-keras", "tf_keras",
                                                           "savedmodel")  # fmt: skip
    assert "DepthwiseConv2D" in {type(x).__name__ for x in loaded.model.layers[-1].layers}
    x = _x(2, 32)
    np.testing.assert_allclose(loaded.batched(x), model.predict(x, verbose=0), atol=1e-5)


def test_keras2_file_without_tf_keras_uses_keras3_with_the_depthwise_fixup(k2_cnn, monkeypatch):
    """No tf_keras: Keras 3 reads the real Keras 2 file, DepthwiseConv2D 'groups' dropped."""
    from edgekit.host import keras_io
    from edgekit.host.loaders import legacy

    monkeypatch.setattr(legacy, "available", lambda: False)
    d, model = k2_cnn
    loaded = keras_io.load(d / "cnn.model")
    assert loaded.loader == "keras" and any("groups" in f for f in loaded.fixups)
    x = _x(4, 32)
    np.testing.assert_allclose(loaded.batched(x), model.predict(x, verbose=0), atol=1e-5)


def test_keras2_converts_end_to_end(k2_cnn, apple_banana_dir, tmp_path):
    r = convert_cli(k2_cnn[0] / "cnn.model", tmp_path / "b", apple_banana_dir, "--no-compile",
                    num_calib=12, num_verify=6)  # fmt: skip
    assert r.exit_code == 0, (r.stderr, r.exception)
    assert load_bundle(tmp_path / "b").manifest.input.shape == (1, 32, 32, 3)


REFUSALS = {  # case: words the one error line must hold
    "lambda": ["Lambda 'scale_pixels'", "Python code", "standard Keras layers"],
    "custom": ["Doubler", "'doubler'", "--custom-objects"],
    "lstm": ["input shape (None, 10, 8)", "not an image", "LSTM 'lstm_1'"],
    "two_inputs": ["2 inputs", "image", "meta"],
    "weights_only": ["weights only", "save_weights"],
    "keras1": ["Keras 1.2.2", "cannot read Keras 1"],
    "lfs": ["Git LFS pointer", "git lfs pull"],
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusals_name_the_cause(case, refused, apple_banana_dir, tmp_path):
    r = convert_cli(refused[case], tmp_path / "b", apple_banana_dir, "--no-compile")
    line = assert_clean_failure(r, tmp_path, *REFUSALS[case])
    assert len(line) < 600 and "..." not in line  # one line, whole, no config dump
    assert not (tmp_path / "b").exists()


def test_custom_objects_file_lets_conversion_go_on(refused):
    from edgekit.host import keras_io

    with pytest.raises(EdgekitError, match="Doubler"):
        keras_io.load(refused["custom"])
    loaded = keras_io.load(refused["custom"], custom_objects=refused["custom_py"])
    assert loaded.loader == "tf_keras" and loaded.output_shape == (1, 2)
    assert "Doubler" in {type(x).__name__ for x in loaded.model.layers[-1].layers}


def test_custom_objects_file_that_fails_to_import(refused, tmp_path):
    from edgekit.host import keras_io

    bad = tmp_path / "bad.py"
    bad.write_text("import no_such_module_here\n")
    with pytest.raises(EdgekitError, match="importing it failed.*no_such_module_here"):
        keras_io.load(refused["custom"], custom_objects=bad)


def test_savedmodel_without_serving_default_lists_its_signatures(tmp_path):
    import tensorflow as tf

    class Net(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.float32)])
        def predict(self, x):
            return {"scores": tf.reduce_mean(x, axis=[1, 2])}

    net = Net()
    tf.saved_model.save(net, str(tmp_path / "sm"), signatures={"predict": net.predict})
    from edgekit.host import keras_io

    with pytest.raises(EdgekitError, match=r"no serving_default signature \(signatures: predict\)"):
        keras_io.load(tmp_path / "sm")


@pytest.mark.parametrize(
    "content, words",
    [
        (b"", "empty file"),
        (b"hello, not a model\n", "a text file"),
        (b"\x1c\x00\x00\x00TFL3" + b"\x00" * 64, "already a TensorFlow Lite model"),
        (b"\x00\x01\x02\x03garbage" * 10, "neither HDF5 nor"),
    ],
)
def test_content_not_suffix_decides(content, words, tmp_path):
    from edgekit.host.loaders.sniff import sniff

    p = tmp_path / "model.h5"
    p.write_bytes(content)
    with pytest.raises(EdgekitError, match=words):
        sniff(p)


def test_rescaling_at_the_input_means_raw_pixels(tmp_path):
    import keras

    from edgekit.host import keras_io

    inp = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inp)
    x = keras.layers.Conv2D(4, 3)(x)
    out = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))
    keras.Model(inp, out).save(tmp_path / "r.keras")
    hint = keras_io.load(tmp_path / "r.keras").preprocessing
    assert hint.input_range == (0.0, 255.0) and "Rescaling" in hint.reason


def test_keras_applications_body_says_minus_one_to_one(k2_cnn, tf_keras, tmp_path):
    """A Keras-2-saved keras.applications MobileNetV2 (random weights): -1..1, and why."""
    from edgekit.host import keras_io

    m = tf_keras.applications.MobileNetV2(input_shape=(64, 64, 3), alpha=0.35, weights=None,
                                          classes=3)  # fmt: skip
    m.save(tmp_path / "mnv2.h5")
    loaded = keras_io.load(tmp_path / "mnv2.h5")
    assert loaded.format == "keras2-h5" and loaded.preprocessing.input_range == (-1.0, 1.0)
    assert "MobileNetV2" in loaded.preprocessing.reason
    assert keras_io.load(k2_cnn[0] / "cnn.h5").preprocessing is None  # nothing to go on


def test_convert_and_inspect_take_custom_objects(refused, apple_banana_dir, tmp_path):
    import json

    from .conftest import run_cli

    extra = ("--no-compile", "--custom-objects", refused["custom_py"])
    r = convert_cli(refused["custom"], tmp_path / "b", apple_banana_dir, *extra, num_calib=8,
                    num_verify=4)  # fmt: skip
    assert r.exit_code == 0, (r.stderr, r.exception)
    assert load_bundle(tmp_path / "b").manifest.input.shape == (1, 16, 16, 3)
    r = run_cli("inspect", refused["custom"], "--json")
    assert r.exit_code == 1 and "Doubler" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("inspect", refused["custom"], "--custom-objects", refused["custom_py"], "--json")
    assert r.exit_code == 0, r.stderr
    assert "Doubler" in {layer["type"] for layer in json.loads(r.stdout)["layers"]}


def test_inspect_reads_keras2_hdf5_under_any_name_and_tm(k2_cnn, tm_export):
    import json

    from .conftest import run_cli

    r = run_cli("inspect", k2_cnn[0] / "cnn.model", "--json")
    assert r.exit_code == 0, r.stderr
    assert "DepthwiseConv2D" in {layer["type"] for layer in json.loads(r.stdout)["layers"]}
    r = run_cli("inspect", tm_export[0], "--json")
    assert r.exit_code == 0, r.stderr
    types = {layer["type"] for layer in json.loads(r.stdout)["layers"]}
    assert {"DepthwiseConv2D", "GlobalAveragePooling2D", "Dense"} <= types


def test_keras2_v3_zip_goes_to_tf_keras_when_keras3_cannot(k2_cnn):
    from edgekit.host import keras_io

    d, model = k2_cnn
    loaded = keras_io.load(d / "cnn_v3.keras")
    assert (loaded.format, loaded.loader, loaded.kind) == ("keras2-zip", "tf_keras", "keras")
    x = _x(2, 32)
    np.testing.assert_allclose(loaded.batched(x), model.predict(x, verbose=0), atol=1e-5)


def test_custom_objects_file_for_a_keras3_model(tmp_path):
    """A Keras 3 subclass in the user's file: Keras 3 loads the model with it."""
    import keras

    from edgekit.host import keras_io
    from edgekit.host.loaders.custom import load_custom_objects

    src = tmp_path / "k3layers.py"
    src.write_text("import keras\n\n\nclass Halver(keras.layers.Layer):\n"
                   "    def call(self, x):\n        return x * 0.5\n")  # fmt: skip
    halver = load_custom_objects(src)["Halver"]
    inp = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(halver(name="half")(inp))
    keras.Model(inp, keras.layers.Dense(2)(x)).save(tmp_path / "k3.keras")
    with pytest.raises(EdgekitError, match=r"Halver \('half'\)"):
        keras_io.load(tmp_path / "k3.keras")
    loaded = keras_io.load(tmp_path / "k3.keras", custom_objects=src)
    assert (loaded.loader, loaded.format) == ("keras", "keras3")


def test_custom_function_is_named(tf_keras, tmp_path):
    """Not a layer: a custom activation function, found only by the loader's own error."""
    from edgekit.host import keras_io

    src = tmp_path / "acts.py"
    src.write_text("import tensorflow as tf\n\n\ndef swishy(x):\n    return x * tf.sigmoid(x)\n")
    ns: dict = {}
    exec(src.read_text(), ns)
    inp = tf_keras.Input((16, 16, 3))
    x = tf_keras.layers.Conv2D(4, 3, activation=ns["swishy"])(inp)
    out = tf_keras.layers.Dense(2)(tf_keras.layers.GlobalAveragePooling2D()(x))
    tf_keras.Model(inp, out).save(tmp_path / "act.h5")
    # tf_keras 2.21 saves the function as {"class_name": "function", "config": "swishy"} and
    # its error names "function": the refusal names the function itself.
    with pytest.raises(EdgekitError, match="custom activation 'swishy'.*--custom-objects"):
        keras_io.load(tmp_path / "act.h5")


def test_tensorflow_start_up_prints_nothing(tmp_path):
    """Device discovery's C++ lines (cuInit on GPU-less machines) stay out of the terminal."""
    import subprocess
    import sys

    code = ("from edgekit.host.tfenv import load_tensorflow\n"
            "tf = load_tensorflow()\nprint(int(tf.constant(2) + 1))\n")  # fmt: skip
    env = {k: v for k, v in __import__("os").environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env=env)  # fmt: skip
    assert p.returncode == 0 and p.stdout.strip() == "3", p.stderr
    assert p.stderr.strip() == "", p.stderr
