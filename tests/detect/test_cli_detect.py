"""`edgekit detect`: text, the exact JSON contract, annotated copies, per-image errors, option
ranges, a pseudo-terminal run, and no TensorFlow on the way."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edgekit.cli import main
from tests.detect.conftest import scene


def _cli(*args):
    return CliRunner().invoke(main, ["detect", *map(str, args)])


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("images")
    out = {}
    for name, img in {
        "two.png": scene(64, 48, [("red", 32, 8, 48, 24), ("blue", 0, 24, 16, 40)]),
        "none.jpg": scene(40, 40, []),
        "green.bmp": scene(48, 64, [("green", 8, 32, 24, 48)]),
        "big.png": scene(256, 192, [("red", 128, 32, 192, 96), ("blue", 0, 96, 64, 160)]),
    }.items():
        Image.fromarray(img).save(d / name)
        out[name] = d / name
    (d / "broken.png").write_bytes(b"not an image")
    out["broken.png"] = d / "broken.png"
    return out


def test_json_for_one_image_is_exactly_the_contract(detect_bundle, images):
    res = _cli(detect_bundle, images["two.png"], "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) == {"image", "detections", "inference_ms", "decode_ms"}
    assert out["image"] == str(images["two.png"])
    # the times the text line shows ("(8.6 ms inference, 0.5 ms decode)"), to 1 us
    assert out["inference_ms"] > 0 and out["inference_ms"] == round(out["inference_ms"], 3)
    assert 0 <= out["decode_ms"] == round(out["decode_ms"], 3)
    assert [set(d) for d in out["detections"]] == [{"id", "label", "score", "box"}] * 2
    by = {d["label"]: d for d in out["detections"]}
    assert by["red"]["id"] == 0 and by["blue"]["id"] == 2
    np.testing.assert_allclose(by["red"]["box"], [32, 8, 48, 24], atol=2)
    np.testing.assert_allclose(by["blue"]["box"], [0, 24, 16, 40], atol=2)


def test_several_images_give_a_list_and_text(detect_bundle, images):
    res = _cli(detect_bundle, images["two.png"], images["none.jpg"], "--json")
    out = json.loads(res.stdout)
    assert isinstance(out, list) and [len(o["detections"]) for o in out] == [2, 0]
    text = _cli(detect_bundle, images["two.png"], images["none.jpg"])
    assert text.exit_code == 0
    lines = text.stdout.splitlines()
    assert lines[0].startswith(f"{images['two.png']}: 2 objects")
    assert any(line.split()[:2] == ["red", "(0)"] for line in lines)
    assert any(line.startswith(f"{images['none.jpg']}: 0 objects") for line in lines)


def test_a_bad_image_is_reported_and_the_rest_still_run(detect_bundle, images):
    res = _cli(detect_bundle, images["broken.png"], images["two.png"], "--json")
    assert res.exit_code == 1
    bad, good = json.loads(res.stdout)
    assert "cannot read image" in bad["error"] and len(good["detections"]) == 2
    text = _cli(detect_bundle, images["broken.png"], images["two.png"])
    assert text.exit_code == 1 and text.stderr.count("Error:") == 1
    assert "Traceback" not in text.output


def test_annotate_draws_the_boxes_on_copies(detect_bundle, images, tmp_path):
    out = tmp_path / "ann"
    res = _cli(detect_bundle, images["big.png"], images["green.bmp"], images["big.png"],
               "--annotate", out)  # fmt: skip
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["big-2.png", "big.png", "green.png"]
    ann = np.asarray(Image.open(out / "big.png").convert("RGB"))
    src = np.asarray(Image.open(images["big.png"]).convert("RGB"))
    assert ann.shape == src.shape and (ann != src).any()
    # the red square's box (128, 32, 192, 96): its bottom and right edges are drawn on the
    # square's border in the palette colour of class 0 (the label sits at its top)
    red = (255, 56, 56)
    assert any(tuple(ann[y, 160]) == red for y in range(92, 98))
    assert any(tuple(ann[64, x]) == red for x in range(188, 194))
    # and the image far from any box is untouched
    assert (ann[170:, 100:] == src[170:, 100:]).all()


@pytest.mark.parametrize(
    "args, code, match",
    [
        (["--threshold", "2"], 2, "--threshold"),
        (["--iou", "nan"], 2, "--iou"),
        (["--max-detections", "1000000000"], 2, "--max-detections"),
        (["--decoder", "yolov99"], 2, "--decoder"),
        (["--decoder", "ssd-postprocess"], 1, "ssd-postprocess decoder: no TFLite_Detection"),
        (["--labels", "/nonexistent/labels.txt"], 1, "no such label file"),
    ],
)
def test_bad_options_are_one_line(detect_bundle, images, args, code, match):
    res = _cli(detect_bundle, images["two.png"], *args)
    assert res.exit_code == code, res.output
    assert match in res.output and "Traceback" not in res.output


def test_annotate_into_a_file_fails_before_running(detect_bundle, images, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = _cli(detect_bundle, images["two.png"], "--annotate", blocker / "sub")
    assert res.exit_code == 1 and "is a file, not a folder" in res.output


def test_under_a_terminal_without_tensorflow(detect_bundle, images):
    code = (
        "import sys\nfrom edgekit.cli import main\n"
        f"try:\n    main(['detect', {str(detect_bundle)!r}, {str(images['two.png'])!r}])\n"
        "except SystemExit as e:\n    rc = e.code\n"
        "print('TF' if 'tensorflow' in sys.modules else 'noTF', rc)\n"
    )
    cmd = f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"
    out = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "red (0)" in out.stdout and "noTF 0" in out.stdout


def test_annotate_into_the_photos_folder_never_overwrites_a_photo(detect_bundle, images,
                                                                  tmp_path):  # fmt: skip
    """`detect m photos/two.png --annotate photos/` wrote the annotated copy over the photo
    itself: the original was lost without a word."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("two.png", "none.jpg"):
        (photos / name).write_bytes(images[name].read_bytes())
    before = {p.name: p.read_bytes() for p in photos.iterdir()}
    res = _cli(detect_bundle, photos / "two.png", photos / "none.jpg", "--annotate", photos)
    assert res.exit_code == 0, res.output
    assert {p.name: p.read_bytes() for p in photos.iterdir() if p.name in before} == before
    assert sorted(p.name for p in photos.iterdir()) == ["none-2.jpg", "none.jpg", "two-2.png",
                                                        "two.png"]  # fmt: skip
