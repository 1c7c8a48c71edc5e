"""Classification: Coral's real models and photos, the quantization maths, and real tiny bundles
whose manifests control preprocessing (colour order, resize, range, int8 I/O)."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.classify import Class, Classifier, make_quantizer, pixel_lut
from edgekit.errors import EdgekitError
from edgekit.images import to_float

from .conftest import TINY_LABELS
from .runtime_fakes import USB3, FakeStack

V1, V2 = "mobilenet_v1_0.25_128_quant", "mobilenet_v2_1.0_224_quant"


@pytest.fixture(scope="module")
def v2(coral_dir):
    return Classifier(coral_dir / f"{V2}.tflite", coral_dir / "imagenet_labels.txt", "cpu")


@pytest.mark.parametrize(
    "image, cid, label", [("cat.bmp", 286, "Egyptian cat"), ("parrot.jpg", 89, "macaw"),
                          ("grace_hopper.bmp", 653, "military uniform"),
                          ("bird.bmp", 20, "chickadee")],
)  # fmt: skip
def test_coral_mobilenet_v2_classifies_its_photos(v2, coral_dir, image, cid, label):
    res = v2.classify_path(coral_dir / image)
    assert (res.top.id, res.top.label) == (cid, label)
    assert v2.input_kind == "raw"  # scale 1/128, zero point 128: raw pixels are exact
    assert res.inference_ms > 0 and res.preprocess_ms > 0


def test_cat_score_and_ranking(v2, coral_dir):
    res = v2.classify_path(coral_dir / "cat.bmp")
    assert 0.7 <= res.top.score <= 0.85
    assert [c.id for c in res.classes[:3]] == [286, 282, 283]  # Egyptian, tabby, tiger cat
    assert list(res.classes) == sorted(res.classes, key=lambda c: -c.score)
    assert isinstance(res.classes[0], Class) and len(res.classes) == 5


def test_edgetpu_twins_run_through_their_cpu_twins(coral_dir, no_edgetpu):
    for name, image, cid in [(V2, "parrot.jpg", 89), (V1, "cat.bmp", 286)]:
        said = []
        emu = Classifier(coral_dir / f"{name}_edgetpu.tflite", device="auto", top_k=3,
                         on_warning=said.append)  # fmt: skip
        cpu = Classifier(coral_dir / f"{name}.tflite", device="cpu", top_k=3)
        a, b = emu.classify_path(coral_dir / image), cpu.classify_path(coral_dir / image)
        assert a.classes == b.classes and a.top.id == cid
        assert emu.runner.backend == "cpu" and len(said) == 1 and "CPU twin" in said[0]


def test_top_k_threshold_and_labels(coral_dir):
    c = Classifier(coral_dir / f"{V2}.tflite", device="cpu", top_k=3, threshold=0.5)
    res = c.classify_path(coral_dir / "cat.bmp")
    assert [(x.id, x.label) for x in res.classes] == [(286, "286")]  # no label file: ids
    c = Classifier(coral_dir / f"{V2}.tflite", {286: "cat"}, device="cpu", top_k=1)
    assert c.classify_path(coral_dir / "cat.bmp").classes[0].label == "cat"
    with pytest.raises(EdgekitError, match="top_k"):
        Classifier(coral_dir / f"{V2}.tflite", device="cpu", top_k=0)
    with pytest.raises(EdgekitError, match="uint8"):
        c.classify(np.zeros((10, 10, 3), np.float32))


def test_reopen_after_an_edgetpu_fault(coral_dir, use_stack):
    from edgekit.backends import EdgeTpuError

    stack = use_stack(FakeStack(devices=[USB3], fail_invoke_after=1))
    c = Classifier(coral_dir / f"{V1}_edgetpu.tflite", device="usb")
    img = np.zeros((128, 128, 3), np.uint8)
    first = c.classify(img)
    with pytest.raises(EdgeTpuError):
        c.classify(img)
    stack.fail_invoke_after = None
    c.reopen()
    assert c.runner.device == "usb:0" and c.classify(img).classes == first.classes
    c.reopen(device="cpu")
    assert c.runner.backend == "cpu" and c.classify(img).classes == first.classes


# -- quantization maths -----------------------------------------------------------------------


def test_exact_paths_are_recognised():
    px = np.arange(256, dtype=np.uint8).reshape(16, 16, 1)
    f, kind = make_quantizer(np.uint8, 1 / 255, 0, (0, 1))
    assert kind == "raw" and np.array_equal(f(px), px)
    f, kind = make_quantizer(np.int8, np.float32(1 / 255), -128, (0, 1))
    assert kind == "xor80" and f(px).dtype == np.int8
    assert np.array_equal(f(px).astype(int), px.astype(int) - 128)
    f, kind = make_quantizer(np.uint8, 1 / 128, 128, (-1, 127 / 128))  # Coral's MobileNets
    assert kind == "raw"


def test_inexact_range_uses_the_manifest_formula():
    # range -1..1 with scale 2/255 needs zero point 127.5: not exact, q = round(x/s) + zp
    scale, zp = np.float32(2 / 255), 127
    lut = pixel_lut(np.uint8, scale, zp, (-1, 1))
    x = to_float(np.arange(256, dtype=np.uint8), (-1, 1)).astype(np.float64)
    v = x / scale
    want = np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5) + zp, 0, 255)
    assert np.array_equal(lut, want.astype(np.uint8))
    assert make_quantizer(np.uint8, scale, zp, (-1, 1))[1] == "lut"
    # clipping: a range wider than the tensor's
    assert pixel_lut(np.int8, 1 / 255, -128, (-1, 1))[0] == -128
    # float input: the float value itself
    assert np.allclose(pixel_lut(np.float32, 0, 0, (0, 1))[255], 1.0)


# -- bundles ----------------------------------------------------------------------------------


def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def _expected(rgb, value_range, color="rgb"):
    """Float reference of the tiny model: softmax(3 * channel means) in model channel order."""
    px = rgb[..., ::-1] if color == "bgr" else rgb
    return _softmax(3 * to_float(px, value_range).reshape(-1, 3).mean(0))


RED = np.zeros((16, 16, 3), np.uint8)
RED[..., 0] = 255
MIXED = np.zeros((16, 16, 3), np.uint8)
MIXED[...] = (200, 100, 50)


def test_bundle_rgb_reads_manifest_labels_and_feeds_raw_pixels(bundles):
    c = Classifier(bundles["rgb"], device="cpu", top_k=3)
    assert c.input_kind == "raw" and c.input_size == (16, 16)
    res = c.classify(RED)
    assert (res.top.id, res.top.label) == (0, "red")
    got = np.array([s.score for s in sorted(res.classes, key=lambda k: k.id)])
    assert np.allclose(got, _expected(RED, (0, 1)), atol=0.01)


def test_bundle_bgr_swaps_channels_in_a_controlled_way(bundles):
    rgb = Classifier(bundles["rgb"], device="cpu", top_k=3).classify(RED)
    bgr = Classifier(bundles["bgr"], device="cpu", top_k=3).classify(RED)
    assert (rgb.top.id, bgr.top.id) == (0, 2) and bgr.top.label == "blue"
    assert bgr.top.score == rgb.top.score  # same model, mirrored input


def test_bundle_int8_io_matches_uint8(bundles):
    c8 = Classifier(bundles["int8"], device="cpu", top_k=3)
    assert c8.input_kind == "xor80" and c8.runner.input_dtype == np.int8
    a = c8.classify(MIXED)
    b = Classifier(bundles["rgb"], device="cpu", top_k=3).classify(MIXED)
    assert [x.id for x in a.classes] == [x.id for x in b.classes] == [0, 1, 2]
    for x, y, want in zip(a.classes, b.classes, _expected(MIXED, (0, 1))):
        assert abs(x.score - y.score) <= 0.01 and abs(x.score - want) <= 0.01


def test_bundle_range_minus1_1_quantizes_through_the_table(bundles):
    c = Classifier(bundles["m11"], device="cpu", top_k=3)
    assert c.input_kind == "lut"
    res = c.classify(MIXED)
    got = np.array([s.score for s in sorted(res.classes, key=lambda k: k.id)])
    assert np.allclose(got, _expected(MIXED, (-1, 1)), atol=0.01)
    # fed as if 0..1 (the wrong preprocessing) the scores would visibly differ
    assert not np.allclose(got, _expected(MIXED, (0, 1)), atol=0.05)


def test_bundle_resize_mode_comes_from_the_manifest(bundles):
    wide = np.zeros((16, 48, 3), np.uint8)  # red | green | blue thirds
    wide[:, :16, 0] = wide[:, 16:32, 1] = wide[:, 32:, 2] = 255
    crop = Classifier(bundles["crop"], device="cpu", top_k=3).classify(wide)
    stretch = Classifier(bundles["rgb"], device="cpu", top_k=3).classify(wide)
    assert crop.top.label == "green" and crop.top.score > 0.8  # the centre third only
    assert max(x.score for x in stretch.classes) < 0.5  # all three about equal


def test_label_file_overrides_bundle_labels(bundles, tmp_path):
    f = tmp_path / "labels.txt"
    f.write_text("0: rouge\n1: vert\n2: bleu\n")
    c = Classifier(bundles["rgb"], labels=f, device="cpu")
    assert c.classify(RED).top.label == "rouge"
    assert Classifier(bundles["rgb"], device="cpu").labels == dict(enumerate(TINY_LABELS))


def test_manifest_that_does_not_match_its_model(bundles, tmp_path):
    import json
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(bundles["rgb"], bad)
    m = json.loads((bad / "edgekit.json").read_text())
    m["input"]["shape"] = [1, 32, 32, 3]
    (bad / "edgekit.json").write_text(json.dumps(m))
    with pytest.raises(EdgekitError, match="does not match its model"):
        Classifier(bad, device="cpu")


def test_a_model_file_inside_a_bundle_uses_the_bundles_manifest(bundles, tmp_path):
    """`classify bundle/<stem>_int8.tflite` gets the bundle's labels and preprocessing (here
    m11's -1..1 range and bgr's channel order), as the bundle directory itself does."""
    for name in ("m11", "bgr"):
        model_file = next(bundles[name].glob("*_int8.tflite"))
        by_file = Classifier(model_file, device="cpu", top_k=3).classify(MIXED)
        by_dir = Classifier(bundles[name], device="cpu", top_k=3).classify(MIXED)
        assert [(c.id, c.label, c.score) for c in by_file.classes] == [
            (c.id, c.label, c.score) for c in by_dir.classes
        ]
        assert by_file.top.label in ("red", "green", "blue")
    # A copy of the same file outside the bundle is a bare .tflite again: numbered labels.
    import shutil

    loose = tmp_path / "loose.tflite"
    shutil.copy(next(bundles["rgb"].glob("*_int8.tflite")), loose)
    assert Classifier(loose, device="cpu").classify(RED).top.label == "0"
