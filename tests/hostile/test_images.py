"""edgekit.images, the one pixel path: every Pillow mode converted correctly (one test per
mode) and decompression bombs refused cheaply with one line (issue 9)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edgekit import images
from edgekit.errors import EdgekitError

from .conftest import cli


def _roundtrip(tmp_path, img: Image.Image, name: str) -> np.ndarray:
    path = tmp_path / name
    img.save(path)
    return images.load_rgb(path)


def test_16_bit_grayscale_png_is_scaled_not_saturated(tmp_path):
    ramp = (np.arange(16, dtype=np.uint32) * 4369).astype(np.uint16).reshape(4, 4)  # 0..65535
    img = Image.fromarray(ramp)
    assert img.mode == "I;16"
    rgb = _roundtrip(tmp_path, img, "gray16.png")
    expected = np.rint(ramp / 257).astype(np.uint8)
    assert rgb.dtype == np.uint8 and rgb.shape == (4, 4, 3)
    assert (rgb == expected[..., None]).all()  # was: everything above 255 -> white


def test_mode_I_32_bit_holding_16_bit_values(tmp_path):
    a = np.array([[0, 257, 32896, 65535]], np.int32)
    rgb = images.to_rgb(Image.fromarray(a))
    assert rgb[0, :, 0].tolist() == [0, 1, 128, 255]


def test_mode_I_holding_8_bit_values_stays_as_is(tmp_path):
    a = np.array([[0, 7, 128, 255]], np.int32)
    assert images.to_rgb(Image.fromarray(a))[0, :, 1].tolist() == [0, 7, 128, 255]


def test_mode_F_float_image(tmp_path):
    unit = np.array([[0.0, 0.5, 1.0, np.nan]], np.float32)  # 0..1 convention, NaN -> 0
    assert images.to_rgb(Image.fromarray(unit))[0, :, 0].tolist() == [0, 128, 255, 0]
    wide = np.array([[-5.0, 3.0, 200.0, 1e9]], np.float32)  # 0..255 convention, clipped
    assert images.to_rgb(Image.fromarray(wide))[0, :, 2].tolist() == [0, 3, 200, 255]


def test_mode_P_palette(tmp_path):
    img = Image.new("P", (2, 1))
    img.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    img.putdata([0, 1])
    rgb = _roundtrip(tmp_path, img, "pal.png")
    assert rgb[0].tolist() == [[10, 20, 30], [200, 100, 50]]


def test_palette_with_transparency_composites_over_black(tmp_path):
    img = Image.new("P", (2, 1))
    img.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    img.putdata([0, 1])
    img.info["transparency"] = 1
    rgb = _roundtrip(tmp_path, img, "paltrans.png")
    assert rgb[0].tolist() == [[10, 20, 30], [0, 0, 0]]


def test_mode_LA(tmp_path):
    img = Image.fromarray(np.array([[[200, 255], [200, 0], [200, 128]]], np.uint8))
    assert img.mode == "LA"
    rgb = _roundtrip(tmp_path, img, "la.png")
    assert rgb[0, :, 0].tolist() == [200, 0, 100]


def test_mode_RGBA(tmp_path):
    a = np.array([[[255, 0, 0, 255], [0, 255, 0, 0], [0, 0, 255, 128]]], np.uint8)
    rgb = _roundtrip(tmp_path, Image.fromarray(a), "rgba.png")
    assert rgb[0].tolist() == [[255, 0, 0], [0, 0, 0], [0, 0, 128]]


def test_mode_CMYK(tmp_path):
    # C, M, Y, K 0..255: pure cyan ink -> (0, 255, 255); no ink -> white; full black -> black.
    a = np.array([[[255, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 255]]], np.uint8)
    rgb = _roundtrip(tmp_path, Image.frombytes("CMYK", (3, 1), a.tobytes()), "cmyk.jpg")
    assert np.abs(rgb[0].astype(int) - [[0, 255, 255], [255, 255, 255], [0, 0, 0]]).max() <= 8


def test_mode_L_and_1(tmp_path):
    assert images.to_rgb(Image.new("L", (1, 1), 77))[0, 0].tolist() == [77, 77, 77]
    assert images.to_rgb(Image.new("1", (1, 1), 1))[0, 0].tolist() == [255, 255, 255]


def _bomb(path, side=20000):
    """A tiny PNG declaring side x side pixels (a few kB on disk, gigabytes decoded)."""
    Image.new("1", (side, side)).save(path, optimize=True)
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    return _bomb(tmp_path_factory.mktemp("bomb") / "bomb.png")


def test_decompression_bomb_refused_cheaply(bomb, monkeypatch):
    assert bomb.stat().st_size < 200_000
    decoded = []
    real_load = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(1) or real_load(self))
    with pytest.raises(EdgekitError, match=r"bomb.png: image is too large"):
        images.load_rgb(bomb)
    with pytest.raises(EdgekitError, match="too large"):
        images.check_image_size(bomb)
    assert decoded == []  # refused from the header: not one pixel decoded


def test_just_above_our_limit_is_refused_before_decoding(tmp_path):
    side = int(images.MAX_PIXELS**0.5) + 1  # below Pillow's own bomb limit, above ours
    path = _bomb(tmp_path / "big.png", side)
    with pytest.raises(EdgekitError, match=rf"too large \({side}x{side} pixels\)"):
        images.load_rgb(path)


def test_check_image_size_reads_the_header(photo):
    with Image.open(photo) as img:
        assert images.check_image_size(photo) == img.size


def test_classify_skips_a_bomb_and_goes_on(bundle, bomb, photo):
    r = cli("classify", bundle, bomb, photo, "-d", "cpu")
    assert r.exit_code == 1  # one image failed: reported, the other classified
    assert "too large" in r.output and f"{photo}:" in r.output
