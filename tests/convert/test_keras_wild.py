"""Every real third-party Keras file in ../shared/data/keras-wild (see its README) converts, or is
refused with its cause. Skipped cleanly when ../shared is absent (it is never shipped)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.manifest import load_bundle

from .conftest import assert_clean_failure, convert_cli

WILD = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "keras-wild"

# id: (file, expected format, classes, TM labels or None); None format = refused with the words.
EXPECTED = {
    "tm-2020-k224-recycling": ("keras_model.h5", "teachable-machine", 5,
                               ["PLASTIC", "PAPER", "METAL", "CARDBOARD", "GLASS"]),
    "tm-2020-k224-tempscan": ("keras_model.h5", "teachable-machine", 4,
                              ["HP_Correct", "HP_turn_left", "HP_turn_right", "HP_too_far"]),
    "tm-2021-k240-fingers": ("keras_model.h5", "teachable-machine", 2, ["thumb", "index"]),
    "tm-2021-k240-digits": ("keras_model.h5", "teachable-machine", 10,
                            [str(i) for i in range(10)]),
    "liveness-k224": ("liveness.model", "keras2-h5", 2, None),
    "trafficsign-k212tf": ("trafficsignnet.model", "keras2-h5", 43, None),
}  # fmt: skip
REFUSED = {
    "mnist-dense-dotkeras-k260": ("checkpoint_path.keras", ["(None, 784)", "not an image"]),
}

pytestmark = pytest.mark.skipif(not WILD.is_dir(), reason="../shared/data/keras-wild absent")


def test_every_wild_file_is_covered():
    on_disk = {p.name for p in WILD.iterdir() if p.is_dir()}
    assert on_disk == set(EXPECTED) | set(REFUSED)


@pytest.mark.parametrize("wid", sorted(EXPECTED))
def test_wild_file_loads_as_what_it_is(wid):
    from edgekit.host import keras_io

    name, fmt, classes, labels = EXPECTED[wid]
    loaded = keras_io.load(WILD / wid / name)
    assert (loaded.format, loaded.loader) == (fmt, "tf_keras")
    assert loaded.output_shape == (1, classes)
    if fmt == "teachable-machine":
        assert loaded.labels == labels
        hint = loaded.preprocessing
        assert (hint.input_range, hint.resize, hint.size) == ((-1.0, 1.0), "crop", (224, 224))
        assert hint.reason == "Teachable Machine export"


@pytest.mark.parametrize("wid", ["tm-2020-k224-recycling", "tm-2021-k240-fingers", "liveness-k224",
                                 "trafficsign-k212tf"])  # fmt: skip
def test_wild_file_converts(wid, apple_banana_dir, tmp_path):
    """One TM export of each vintage (2.2.4-tf, 2.4.0) and both .model files, end to end."""
    name, _, classes, labels = EXPECTED[wid]
    r = convert_cli(WILD / wid / name, tmp_path / "b", apple_banana_dir, "--no-compile",
                    num_calib=8, num_verify=4)  # fmt: skip
    assert r.exit_code == 0, (r.stderr, r.exception)
    b = load_bundle(tmp_path / "b")
    assert b.manifest.output.shape[-1] == classes
    if labels:
        assert list(b.manifest.labels) == labels


@pytest.mark.parametrize("wid", sorted(REFUSED))
def test_wild_file_is_refused_with_its_cause(wid, apple_banana_dir, tmp_path):
    name, words = REFUSED[wid]
    r = convert_cli(WILD / wid / name, tmp_path / "b", apple_banana_dir, "--no-compile")
    assert_clean_failure(r, tmp_path, *words)
    assert not (tmp_path / "b").exists()


def test_keras3_failure_keeps_its_cause_whole():
    """Keras 3 on a 2.2.4-tf file: the cause sits after a multi-kB config dump; it is kept, the
    dump is not (it used to be cut at 300 characters, cause lost)."""
    from edgekit.errors import EdgekitError
    from edgekit.host.loaders import keras3
    from edgekit.host.loaders.architecture import read_hdf5
    from edgekit.host.tfenv import load_tensorflow

    load_tensorflow()
    path = WILD / "tm-2020-k224-recycling" / "keras_model.h5"
    with pytest.raises(EdgekitError) as e:
        keras3.load(path, "hdf5", read_hdf5(path), {}, [])
    msg = str(e.value)
    assert "Conv2D" in msg and "unexpected keyword argument 'dtype'" in msg
    assert "config=" not in msg and "\n" not in msg


def test_low_agreement_is_said(apple_banana_dir, tmp_path):
    """A finger-counting TM model calibrated and verified on fruit: int8 agrees with float on 8
    of 10 held-out photos (measured), and the bundle was written with that only in the summary
    line. Now a warning says so and what to do; --min-agreement still refuses instead."""
    model = WILD / "tm-2021-k240-fingers" / "keras_model.h5"
    r = convert_cli(model, tmp_path / "b", apple_banana_dir, "--no-compile",
                    num_calib=20, num_verify=10)  # fmt: skip
    assert r.exit_code == 0, (r.stderr, r.exception)
    v = load_bundle(tmp_path / "b").manifest.verification
    assert v["agreement"] < 0.9, v  # the case this test is about
    warned = [x for x in r.stderr.splitlines() if "agrees with the float model on only" in x]
    assert len(warned) == 1 and f"{v['agreement']:.1%} of {v['images']} held-out" in warned[0]
    assert "--min-agreement" in warned[0]
    r = convert_cli(model, tmp_path / "c", apple_banana_dir, "--no-compile", "--min-agreement",
                    "0.5", num_calib=20, num_verify=10)  # fmt: skip
    assert r.exit_code == 0 and "agrees with the float model" not in r.stderr
