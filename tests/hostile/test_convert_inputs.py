"""convert's remaining hostile inputs (issue 15 item 6): an output name too long for the file
system, a model whose input makes many-GB tensors, a --calib of only unreadable images. Each is
one line, exit 1, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.errors import EdgekitError

from .conftest import cli


def _listing(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


@pytest.mark.parametrize("length", [300, 250])
def test_output_name_too_long_is_one_line(tiny_keras, tmp_path, length):
    # 300: more than any Linux file system takes (OSError traceback on main); 250: fits, but
    # not with the ".<name>.tmp-XXXXXXXX" sibling the bundle is built in.
    before = _listing(tmp_path)
    r = cli("convert", tiny_keras["h5"], "-o", tmp_path / ("b" * length), "--synthetic-calib",
            "--num-calib", 4, "--no-compile")  # fmt: skip
    assert r.exit_code == 1 and "choose a shorter output name" in r.output
    assert f"a name of {length} bytes" in r.output and len(r.output.strip().splitlines()) == 1
    assert _listing(tmp_path) == before


def test_output_name_at_the_limit_converts(tiny_keras, tmp_path):
    r = cli("convert", tiny_keras["h5"], "-o", tmp_path / ("b" * 241), "--synthetic-calib",
            "--num-calib", 4, "--no-compile")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert (tmp_path / ("b" * 241) / "edgekit.json").is_file()


def test_input_of_many_gigabytes_is_refused_before_any_image_is_decoded(tmp_path):
    import keras

    inp = keras.Input((30000, 30000, 3), name="big_image")  # 2.7 G floats per image
    x = keras.layers.Conv2D(4, 3, strides=4, name="big_conv")(inp)
    x = keras.layers.GlobalAveragePooling2D(name="big_pool")(x)
    out = keras.layers.Dense(2, activation="softmax", name="big_dense")(x)
    keras.Model(inp, out, name="big").save(tmp_path / "big.h5")
    calib = tmp_path / "calib"
    calib.mkdir()
    (calib / "a.png").write_bytes(b"not decoded: the estimate comes first")
    before = _listing(tmp_path)
    r = cli("convert", tmp_path / "big.h5", "-o", tmp_path / "out", "--calib", calib,
            "--no-compile")  # fmt: skip
    assert r.exit_code == 1
    assert "30000x30000x3 input" in r.output and "of memory" in r.output
    assert "--input-size" in r.output and len(r.output.strip().splitlines()) == 1
    assert _listing(tmp_path) == before


def test_conversion_estimate_is_modest_for_an_ordinary_model():
    import keras

    from edgekit.host.memory import GiB, activations, conversion_bytes

    # Every name explicit: default names take numbers from Keras' process-wide counters.
    inp = keras.Input((224, 224, 3), name="est_image")
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", name="est_conv")(inp)  # 112x112x32
    x = keras.layers.GlobalAveragePooling2D(name="est_pool")(x)
    model = keras.Model(inp, keras.layers.Dense(2, name="est_dense")(x), name="est")
    total, largest = activations(model)
    assert largest == 112 * 112 * 32 and total == 224 * 224 * 3 + 112 * 112 * 32 + 32 + 2
    assert conversion_bytes(model, (224, 224), 3, 400) < 2 * GiB


def test_calib_of_only_unreadable_images_writes_nothing(tiny_keras, tmp_path):
    calib = tmp_path / "calib"
    for cls in ("a", "b"):
        (calib / cls).mkdir(parents=True)
        for i in range(3):
            (calib / cls / f"{i}.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    before = _listing(tmp_path)
    r = cli("convert", tiny_keras["h5"], "-o", tmp_path / "out", "--calib", calib,
            "--no-compile")  # fmt: skip
    assert r.exit_code == 1 and "none of the 6 image files could be read" in r.output
    assert "verifying" not in r.output
    assert _listing(tmp_path) == before


def test_detector_calib_skips_unreadable_images_and_refuses_when_all_are(tmp_path):
    """The detector's image loader (it stopped at the first unreadable file, naming only that
    one): unreadable files are skipped and counted like a classifier's; none readable is one
    line."""
    import numpy as np
    from PIL import Image

    from edgekit.host.convert_detect import load_images

    junk = tmp_path / "junk"
    junk.mkdir()
    for i in range(4):
        (junk / f"s{i}.jpg").write_bytes(b"GIF89a nope")
    with pytest.raises(EdgekitError, match="none of the 4 image files could be read"):
        load_images(junk, (32, 32), 10, 1, None)
    for i in range(5):
        Image.fromarray(np.full((40, 50, 3), 40 * i, np.uint8)).save(junk / f"ok{i}.png")
    imgs = load_images(junk, (32, 32), 10, 2, None)
    assert len(imgs.calib) + len(imgs.verify) == 5 and imgs.stats["unreadable"] == 4
    assert any("skipped 4 unreadable" in w for w in imgs.warnings)
