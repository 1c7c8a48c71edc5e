"""Session fixtures for the converter tests: one tiny real model trained on apple-banana (split by
original photo, trained only on the side the converter calibrates on), saved in every format."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = Path(__file__).resolve().parent
FAKE_COMPILER = HERE / "fake_edgetpu_compiler"
GROUP = r"(?:apple|bana)[-_](\d+)"
SIZE = 32


def tiny_net(keras, size=SIZE, classes=2, name="tiny"):
    """Conv -> DepthwiseConv -> pointwise Conv -> pool -> Dense softmax: Edge-TPU friendly."""
    inp = keras.Input((size, size, 3), name="image")
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inp)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(16, 1, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(classes, activation="softmax")(x)
    return keras.Model(inp, out, name=name)


@pytest.fixture(scope="session")
def ab_split(apple_banana_dir):
    """(files, split) exactly as ``edgekit convert --group-pattern GROUP`` splits the folder."""
    from edgekit import images
    from edgekit.host.calibration import split

    files = images.find_images(apple_banana_dir)
    rels = [f.relative_to(apple_banana_dir).as_posix() for f in files]
    return files, split(rels, GROUP)


@pytest.fixture(scope="session")
def trained(ab_split, tmp_path_factory):
    """A tiny model trained on the calibration side only; saved as Keras 3 .h5, .keras, a
    Keras-2-layout .h5 and a SavedModel. Returns a dict of paths plus ``dir``."""
    import keras

    from edgekit import images

    from .keras2_h5 import make_keras2_h5

    files, sp = ab_split
    x = np.stack([images.prepare(images.load_rgb(files[i]), (SIZE, SIZE)) for i in sp.calib])
    y = np.array([0 if files[i].parent.name == "apple" else 1 for i in sp.calib])
    keras.utils.set_random_seed(0)
    model = tiny_net(keras)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    # 30 epochs: at 12 this net still answered "banana" for every photo under 0..1 (train
    # accuracy 0.5) and, by accident, separated the classes under -1..1, which convert's input
    # range measurement then rightly preferred. At 30 it is right on 0..1 (held-out 1.0).
    model.fit(x.astype("float32") / 255.0, y, epochs=30, batch_size=16, verbose=0)
    d = tmp_path_factory.mktemp("models")
    paths = {"dir": d, "h5": d / "tiny.h5", "keras": d / "tiny.keras", "h5_k2": d / "tiny_k2.h5"}
    model.save(paths["h5"])
    model.save(paths["keras"])
    make_keras2_h5(paths["h5"], paths["h5_k2"])
    paths["savedmodel"] = d / "tiny_savedmodel"
    model.export(paths["savedmodel"], verbose=False)
    labels = d / "labels.txt"
    labels.write_text("apple\nbanana\n")
    paths["labels"] = labels
    return paths


@pytest.fixture()
def no_compiler_path(monkeypatch, tmp_path):
    """PATH without any edgetpu_compiler (the real one cannot exist here anyway)."""
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + "/usr/bin:/bin")


def run_cli(*args):
    """Invoke ``edgekit`` in-process; returns click's Result (stdout / stderr apart)."""
    from click.testing import CliRunner

    from edgekit.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True)


def convert_cli(model, out, calib, *extra, num_calib=20, num_verify=10):
    """``edgekit convert MODEL -o OUT --calib CALIB --num-calib N --num-verify M *extra``."""
    return run_cli(
        "convert", model, "-o", out, "--calib", calib,
        "--num-calib", num_calib, "--num-verify", num_verify, *extra,
    )  # fmt: skip


def assert_clean_failure(result, parent: Path, *needles: str, code: int = 1):
    """One ``Error:`` line, the expected exit code, no traceback, no temp dirs left."""
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    err = result.stderr
    assert "Traceback" not in err and "Traceback" not in result.stdout
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, err
    for n in needles:
        assert n.lower() in errors[0].lower(), (n, errors[0])
    leftovers = [p.name for p in parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name]
    assert leftovers == []
    return errors[0]
