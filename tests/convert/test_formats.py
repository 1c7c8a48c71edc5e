"""Model formats and shapes: Keras 3 .h5/.keras, Keras 2 .h5 (DepthwiseConv2D groups), SavedModel,
dynamic height/width."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.errors import EdgekitError
from edgekit.manifest import load_bundle
from edgekit.tflite import read_model

from .conftest import convert_cli, run_cli


def _convert(model, calib, out, *extra):
    r = convert_cli(model, out, calib, "--no-compile", *extra, num_calib=30, num_verify=20)
    assert r.exit_code == 0, (r.stderr, r.exception)
    return load_bundle(out), r


def test_keras2_h5_reproduces_the_groups_error(trained):
    """The fixture is faithful: stock Keras 3 refuses the Keras-2-layout file."""
    import keras

    with pytest.raises(Exception, match="groups"):
        keras.models.load_model(trained["h5_k2"], compile=False)


def test_keras2_h5_loads_with_same_outputs(trained):
    import keras

    from edgekit.host import keras_io

    x = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32)
    ref = np.asarray(keras.models.load_model(trained["h5"], compile=False)(x))
    loaded = keras_io.load(trained["h5_k2"])
    assert any("groups" in f for f in loaded.fixups)
    assert loaded.input_shape == (1, 32, 32, 3)
    np.testing.assert_allclose(loaded.batched(x), ref, rtol=1e-6, atol=1e-6)
    model = keras_io.load_model(trained["h5_k2"])
    assert tuple(model.inputs[0].shape) == (1, 32, 32, 3)
    np.testing.assert_allclose(np.asarray(model(x[:1])), ref[:1], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("fmt", ["h5_k2", "keras", "savedmodel"])
def test_formats_convert(fmt, trained, apple_banana_dir, tmp_path):
    b, r = _convert(trained[fmt], apple_banana_dir, tmp_path / "out")
    assert b.manifest.source["format"] == ("h5" if fmt == "h5_k2" else fmt)
    info = read_model(b.cpu_model)
    assert info.inputs[0].shape == (1, 32, 32, 3)
    assert info.float_tensors() == () and info.dynamic_tensors() == ()
    assert "SHAPE" not in info.op_counts()
    assert b.manifest.verification["agreement"] >= 0.9
    if fmt == "h5_k2":
        assert "groups" in r.stderr  # the fix-up is reported, not hidden


@pytest.fixture(scope="module")
def dynamic_model(tmp_path_factory):
    import keras

    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(x))
    path = tmp_path_factory.mktemp("dyn") / "dyn.keras"
    model.save(path)
    return path


def test_dynamic_hw_needs_input_size(dynamic_model, apple_banana_dir, tmp_path):
    from .conftest import assert_clean_failure

    r = run_cli(
        "convert", dynamic_model, "-o", tmp_path / "o", "--calib", apple_banana_dir, "--no-compile"
    )
    assert_clean_failure(r, tmp_path, "dynamic", "--input-size")
    assert not (tmp_path / "o").exists()
    b, _ = _convert(dynamic_model, apple_banana_dir, tmp_path / "o2", "--input-size", "24x28")
    assert b.manifest.input.shape == (1, 24, 28, 3)
    assert read_model(b.cpu_model).dynamic_tensors() == ()


def test_input_size_must_match_a_static_model(trained):
    from edgekit.host import keras_io

    with pytest.raises(EdgekitError, match="does not match"):
        keras_io.load(trained["keras"], input_size=(64, 64))


def test_options_reach_the_manifest(trained, apple_banana_dir, tmp_path):
    b, _ = _convert(
        trained["keras"],
        apple_banana_dir,
        tmp_path / "o",
        "--io",
        "int8",
        "--color",
        "bgr",
        "--resize",
        "crop",
        "--input-range",
        "-1,1",
    )
    m = b.manifest
    assert m.input.dtype == "int8" and m.output.dtype == "int8"
    assert (m.input.color, m.input.resize, m.input.range) == ("bgr", "crop", (-1.0, 1.0))
    # -1..1 over 256 int8 levels: scale 2/255, zero point near the bottom of the int8 range
    assert m.input.scale == pytest.approx(2 / 255, rel=1e-3) and -128 <= m.input.zero_point <= 0


def test_grayscale_model_runs_on_the_device_as_it_was_verified(apple_banana_dir, tmp_path):
    """A 1-channel model: calibration feeds it luma, and the device-side Classifier, reading
    only the bundle, must feed it the same luma (scores match the float model within the
    quantization error the converter reported)."""
    import keras
    import numpy as np

    from edgekit import images
    from edgekit.classify import Classifier
    from edgekit.manifest import load_bundle

    keras.utils.set_random_seed(1)
    inp = keras.Input((24, 24, 1))
    x = keras.layers.Conv2D(8, 3, activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(x))
    model.save(tmp_path / "gray.h5")
    r = run_cli(
        "convert", tmp_path / "gray.h5", "-o", tmp_path / "b", "--calib", apple_banana_dir,
        "--num-calib", 60, "--num-verify", 12, "--no-compile",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    m = load_bundle(tmp_path / "b").manifest
    assert m.input.shape == (1, 24, 24, 1)
    clf = Classifier(tmp_path / "b", device="cpu", top_k=2)
    tolerance = m.verification["max_abs_error"] + 2 * m.output.scale
    for rel in m.calibration["verify_files"]:
        rgb = images.load_rgb(apple_banana_dir / rel)
        ref = np.asarray(model(images.to_float(images.prepare(rgb, (24, 24), channels=1))[None]))
        got = np.zeros(2)
        for c in clf.classify(rgb).classes:
            got[c.id] = c.score
        assert np.abs(got - ref[0]).max() <= tolerance


def test_labels_beside_the_model_are_used_unless_they_do_not_fit(
    trained, apple_banana_dir, tmp_path
):
    """`edgekit train` writes labels.txt beside the model: convert picks it up (saying so) when
    --labels is not given, and ignores it with a warning when its count does not fit."""
    import shutil

    from edgekit.manifest import load_bundle

    work = tmp_path / "w"
    work.mkdir()
    shutil.copy(trained["h5"], work / "m.h5")
    (work / "labels.txt").write_text("0 apple\n1 banana\n")
    args = ("--calib", apple_banana_dir, "--num-calib", 20, "--num-verify", 6, "--no-compile")
    r = run_cli("convert", work / "m.h5", "-o", tmp_path / "a", *args)
    assert r.exit_code == 0, r.output
    assert f"using labels from {work / 'labels.txt'}" in r.stderr
    assert load_bundle(tmp_path / "a").manifest.labels == ("apple", "banana")

    (work / "labels.txt").write_text("apple\nbanana\ncherry\n")
    r = run_cli("convert", work / "m.h5", "-o", tmp_path / "b", *args)
    assert r.exit_code == 0, r.output
    assert "ignoring" in r.stderr and "3 labels for 2 model outputs" in r.stderr
    assert load_bundle(tmp_path / "b").manifest.labels is None
