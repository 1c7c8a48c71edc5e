"""Every bad input: one clear ``Error:`` line, non-zero exit, no traceback, nothing written."""

from __future__ import annotations

import shutil

import pytest

from .conftest import FAKE_COMPILER, assert_clean_failure, convert_cli, run_cli


def _run(model, out, *extra, calib=None):
    args = ["convert", model, "-o", out, "--num-calib", 20, "--num-verify", 10, "--no-compile"]
    if calib is not None:
        args += ["--calib", calib]
    return run_cli(*args, *extra)


@pytest.fixture(scope="module")
def odd_models(tmp_path_factory):
    """Models edgekit must refuse, saved as .keras (custom layers registered in this process)."""
    import keras
    import tensorflow as tf

    @keras.saving.register_keras_serializable("edgekit_test")
    class ErfLayer(keras.layers.Layer):
        def call(self, x):
            return tf.math.erf(x)  # no TFLite builtin at all

    @keras.saving.register_keras_serializable("edgekit_test")
    class CumsumLayer(keras.layers.Layer):
        def call(self, x):
            return tf.math.cumsum(x, axis=1)  # builtin, but float-only kernel

    d = tmp_path_factory.mktemp("odd")
    paths = {}

    def head(x):
        x = keras.layers.GlobalAveragePooling2D()(x)
        return keras.layers.Dense(2, activation="softmax")(x)

    a, b = keras.Input((16, 16, 3)), keras.Input((16, 16, 3))
    m = keras.Model([a, b], head(keras.layers.Add()([a, b])))
    m.save(paths.setdefault("two_inputs", d / "two_inputs.keras"))
    v = keras.Input((10,))
    m = keras.Model(v, keras.layers.Dense(2)(v))
    m.save(paths.setdefault("vector", d / "vector.keras"))
    for name, layer in (("erf", ErfLayer), ("cumsum", CumsumLayer)):
        i = keras.Input((16, 16, 3))
        x = keras.layers.Conv2D(4, 3)(i)
        m = keras.Model(i, head(layer(name=f"my_{name}")(x)))
        m.save(paths.setdefault(name, d / f"{name}.keras"))
    return paths


def test_missing_model(tmp_path, apple_banana_dir):
    r = _run(tmp_path / "nope.h5", tmp_path / "o", calib=apple_banana_dir)
    assert_clean_failure(r, tmp_path, "nope.h5", "no such file")


def test_not_a_model(tmp_path, apple_banana_dir):
    fake = tmp_path / "x.h5"
    fake.write_text("hello, I am not HDF5\n")
    r = _run(fake, tmp_path / "o", calib=apple_banana_dir)
    assert_clean_failure(r, tmp_path, "x.h5", "not a Keras model")
    fake2 = tmp_path / "y.keras"
    fake2.write_text("nope")
    assert_clean_failure(
        _run(fake2, tmp_path / "o", calib=apple_banana_dir), tmp_path, "not a Keras"
    )


@pytest.mark.parametrize(
    "kind,needles",
    [
        ("two_inputs", ["2 inputs"]),
        ("vector", ["not an image"]),
        ("erf", ["Erf", "my_erf"]),
        ("cumsum", ["CUMSUM", "float"]),
    ],
)
def test_unsupported_models(kind, needles, odd_models, tmp_path, apple_banana_dir):
    r = _run(odd_models[kind], tmp_path / "o", calib=apple_banana_dir)
    assert_clean_failure(r, tmp_path, *needles)
    assert not (tmp_path / "o").exists()


def test_empty_and_unreadable_calibration(trained, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    assert_clean_failure(_run(trained["h5"], tmp_path / "o", calib=empty), tmp_path, "no images")
    bad = tmp_path / "bad"
    bad.mkdir()
    for i in range(3):
        (bad / f"broken{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    assert_clean_failure(_run(trained["h5"], tmp_path / "o", calib=bad), tmp_path, "could be read")
    assert_clean_failure(
        _run(trained["h5"], tmp_path / "o", calib=tmp_path / "nodir"), tmp_path, "no such folder"
    )


def test_unreadable_images_are_skipped_and_counted(trained, tmp_path, apple_banana_dir):
    calib = tmp_path / "calib"
    shutil.copytree(apple_banana_dir / "apple", calib / "apple")
    (calib / "apple" / "zz_broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    (calib / "apple" / "gray.png").parent.mkdir(exist_ok=True)
    from PIL import Image

    Image.new("L", (40, 30), 128).save(calib / "apple" / "gray.png")  # grayscale is fine
    r = convert_cli(
        trained["h5"], tmp_path / "o", calib, "--no-compile", "--json", num_calib=500, num_verify=0
    )
    assert r.exit_code == 0, r.stderr
    assert "1 unreadable" in r.stderr
    import json

    cal = json.loads(r.stdout)["manifest"]["calibration"]
    assert cal["unreadable"] == 1 and cal["unreadable_files"] == ["apple/zz_broken.jpg"]
    assert cal["used"] == cal["found"] - 1


def test_no_calib_refused_unless_synthetic(trained, tmp_path):
    r = _run(trained["h5"], tmp_path / "o")
    assert_clean_failure(r, tmp_path, "--calib")
    r = _run(trained["h5"], tmp_path / "o", "--synthetic-calib")
    assert r.exit_code == 0 and "synthetic" in r.stderr
    assert (tmp_path / "o" / "tiny_int8.tflite").is_file()


def test_labels_mismatch(trained, tmp_path, apple_banana_dir):
    labels = tmp_path / "three.txt"
    labels.write_text("apple\nbanana\ncherry\n")
    r = _run(trained["h5"], tmp_path / "o", "--labels", labels, calib=apple_banana_dir)
    assert_clean_failure(r, tmp_path, "3 labels", "2 model outputs")


def test_out_dir_exists(trained, tmp_path, apple_banana_dir):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert_clean_failure(
        _run(trained["h5"], out, calib=apple_banana_dir), tmp_path, "exists", "--force"
    )
    assert (out / "keep.txt").read_text() == "mine"
    # --force replaces only a bundle (or an empty folder), never a folder of the user's files
    r = _run(trained["h5"], out, "--force", calib=apple_banana_dir)
    assert_clean_failure(r, tmp_path, "not an edgekit bundle")
    assert (out / "keep.txt").read_text() == "mine"
    (out / "edgekit.json").write_text("{}")
    r = _run(trained["h5"], out, "--force", calib=apple_banana_dir)
    assert r.exit_code == 0 and not (out / "keep.txt").exists()
    assert (out / "edgekit.json").is_file()


def test_min_agreement_gate(trained, tmp_path, apple_banana_dir):
    ok = _run(trained["h5"], tmp_path / "o", "--min-agreement", "0.5", calib=apple_banana_dir)
    assert ok.exit_code == 0
    # 100% cannot be beaten; demand more than is possible -> validation error, nothing written
    bad = _run(trained["h5"], tmp_path / "p", "--min-agreement", "1.5", calib=apple_banana_dir)
    assert_clean_failure(bad, tmp_path, "--min-agreement", "0<=x<=1", code=2)


def test_min_agreement_failure_writes_nothing(tmp_path, apple_banana_dir):
    """A model whose decision hangs on a weight int8 cannot represent: logits
    (10 r, 10 r + 0.001 (g - b)) from the mean colour. Per-channel int8 weights have a scale of
    10/127, so 0.001 rounds to 0, both int8 logits are equal and argmax is always class 0,
    while the float model picks class 1 whenever green outweighs blue."""
    import keras
    import numpy as np

    i = keras.Input((16, 16, 3))
    dense = keras.layers.Dense(2)
    m = keras.Model(i, dense(keras.layers.GlobalAveragePooling2D()(i)))
    dense.set_weights([np.array([[10, 10], [0, 1e-3], [0, -1e-3]], np.float32), np.zeros(2)])
    path = tmp_path / "fragile.keras"
    m.save(path)
    r = convert_cli(
        path,
        tmp_path / "o",
        apple_banana_dir,
        "--no-compile",
        "--min-agreement",
        0.95,
        num_calib=50,
        num_verify=60,
    )
    assert_clean_failure(r, tmp_path, "agreement", "below --min-agreement", "no bundle written")
    assert not (tmp_path / "o").exists()


def test_compiler_path_not_executable(trained, tmp_path, apple_banana_dir):
    r = run_cli(
        "convert",
        trained["h5"],
        "-o",
        tmp_path / "o",
        "--calib",
        apple_banana_dir,
        "--compiler",
        tmp_path / "missing_compiler",
    )
    assert_clean_failure(r, tmp_path, "--compiler", "not an executable")
    assert FAKE_COMPILER.is_file()


@pytest.mark.parametrize(
    "name, data, says",
    [
        ("model.tflite", b"\x1c\x00\x00\x00TFL3" + b"\x00" * 64, "`edgekit compile`"),
        ("photo.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 64, "not a Keras model"),
        ("model.h5", b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 9\n",
         "git lfs pull"),
    ],
)
def test_what_the_file_is_comes_before_asking_for_images(tmp_path, name, data, says):
    """`edgekit convert model.tflite -o out` said "no calibration images" and, once given
    --calib, that a .tflite cannot be converted: the file itself is refused first, with what to
    run instead (an int8 .tflite needs `edgekit compile`)."""
    model = tmp_path / name
    model.write_bytes(data)
    r = run_cli("convert", model, "-o", tmp_path / "out")
    assert_clean_failure(r, tmp_path, says)
    assert "calibration" not in r.stderr and not (tmp_path / "out").exists()
