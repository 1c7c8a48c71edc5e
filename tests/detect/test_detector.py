"""Detector and open_task_model on a tiny real int8 detector (edgekit's anchor-free head)."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from edgekit.classify import Classifier
from edgekit.detect import Detections, Detector
from edgekit.errors import EdgekitError
from edgekit.tasks import model_task, open_task_model
from tests.conftest import CORAL
from tests.detect.conftest import scene

# Input pixels per quantization step of the head's l, t, r, b (scale 0.078 * stride 8) / 2,
# plus bilinear edges: a box side is within about a pixel of the truth.
ATOL = 1.0


def _by_label(res: Detections) -> dict:
    return {d.label: d for d in res.detections}


def test_boxes_land_on_the_original_image_through_the_letterbox(detect_bundle):
    det = Detector(detect_bundle, device="cpu")
    assert det.task == "detect" and det.decoder_name == "edgekit-anchor-free"
    assert det.resize == "letterbox" and det.threshold == 0.5  # from the bundle's params
    # 64x48 -> scale 0.5, padded 4 rows top and bottom: each square covers one 8x8 cell exactly
    img = scene(64, 48, [("red", 32, 8, 48, 24), ("blue", 0, 24, 16, 40)])
    res = det.detect(img)
    assert res.image_size == (64, 48)
    got = _by_label(res)
    assert sorted(got) == ["blue", "red"] and len(res) == 2
    np.testing.assert_allclose(got["red"].box, (32, 8, 48, 24), atol=2 * ATOL)
    np.testing.assert_allclose(got["blue"].box, (0, 24, 16, 40), atol=2 * ATOL)
    assert got["red"].id == 0 and got["blue"].id == 2 and got["red"].score > 0.99
    assert res.inference_ms > 0 and res.decode_ms > 0 and res.preprocess_ms > 0
    assert res.counts() == {"blue": 1, "red": 1}
    assert det.run(img).to_dict()["detections"] == res.to_dict()["detections"]
    det.close()


def test_tall_image_pads_left_and_right(detect_bundle):
    det = Detector(detect_bundle, device="cpu")
    # 48 wide x 64 high -> scale 0.5, 4 columns of padding left: cell (row 2, col 1) is
    # original x 8..24, y 32..48
    res = det.detect(scene(48, 64, [("green", 8, 32, 24, 48)]))
    (d,) = res.detections
    assert d.label == "green"
    np.testing.assert_allclose(d.box, (8, 32, 24, 48), atol=2 * ATOL)


def test_threshold_max_detections_and_labels(detect_bundle):
    img = scene(32, 32, [("red", 0, 0, 8, 8), ("red", 24, 24, 32, 32), ("green", 8, 0, 16, 8)])
    det = Detector(detect_bundle, device="cpu", max_detections=2, labels={0: "R", 1: "G"})
    res = det.detect(img)
    assert len(res) == 2 and {d.label for d in res} <= {"R", "G"}
    assert [d.score for d in res] == sorted((d.score for d in res), reverse=True)
    # a threshold of 1.0 keeps nothing; the grey padding never becomes an object
    assert len(Detector(detect_bundle, device="cpu", threshold=1.0).detect(img)) == 0
    assert len(Detector(detect_bundle, device="cpu", threshold=0.2).detect(scene(64, 16, []))) == 0


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"threshold": math.nan}, "score_threshold"),
        ({"iou": 1.5}, "iou"),
        ({"max_detections": 10**9}, "max_detections"),
        ({"max_detections": 0}, "max_detections"),
        ({"decoder": "yolov99"}, "unknown decoder 'yolov99'"),
        (
            {"decoder": "ssd-postprocess"},
            "ssd-postprocess decoder: no TFLite_Detection_PostProcess",
        ),
    ],
)
def test_bad_options_are_one_line(detect_bundle, kw, match):
    with pytest.raises(EdgekitError, match=match) as e:
        Detector(detect_bundle, device="cpu", **kw)
    assert "\n" not in str(e.value)


def test_bad_input_image(detect_bundle):
    det = Detector(detect_bundle, device="cpu")
    with pytest.raises(EdgekitError, match="uint8"):
        det.detect(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(EdgekitError, match=r"\(H, W, 3\)"):
        det.detect(np.zeros((8, 8, 4), np.uint8))


def test_a_classifier_is_not_guessed_to_be_a_detector():
    model = CORAL / "mobilenet_v1_0.25_128_quant.tflite"
    assert model_task(model) == "classify"
    with pytest.raises(EdgekitError, match=r"decode outputs \[\[1, 1001\]\]") as e:
        Detector(model, device="cpu")
    # serve [cascade] / bench --classify with the classifier as the detector said only
    # "pass --decoder": name the likely mix-up
    assert "a classifier?" in str(e.value) and "`edgekit classify`" in str(e.value)


def test_anchors_for_a_head_without_anchors_say_so(detect_bundle, tmp_path):
    """--anchors on a YOLOv8 export said "unknown yolov8 detection param(s): anchors; known:
    box_units, fill, ..." (names the user never typed)."""
    f = tmp_path / "anchors.txt"
    f.write_text("10,14, 23,27, 37,58, 81,82, 135,169, 344,319")
    with pytest.raises(EdgekitError) as e:
        Detector(detect_bundle, device="cpu", anchors=f)
    assert str(e.value).endswith(
        "--anchors is for a yolov3 head (anchor grids); this model decodes as "
        "edgekit-anchor-free; leave --anchors out (or pass --decoder yolov3 if the model is one)"
    )


def test_open_task_model_picks_the_task(detect_bundle):
    det = open_task_model(detect_bundle, device="cpu", top_k=3, iou=0.5, threshold=None)
    assert isinstance(det, Detector) and det.task == "detect" and det.iou == 0.5
    rec = det.run(scene(32, 32, [("red", 8, 8, 16, 16)]))
    assert rec.to_dict()["detections"][0]["label"] == "red" and rec.inference_ms > 0
    clf = open_task_model(CORAL / "mobilenet_v1_0.25_128_quant.tflite", device="cpu", top_k=3,
                          iou=0.5, threshold=None)  # fmt: skip
    assert isinstance(clf, Classifier) and clf.task == "classify"
    rec = clf.run(np.zeros((128, 128, 3), np.uint8))
    assert len(rec.to_dict()["classes"]) == 3 and rec.inference_ms > 0
    # forced to classify, a detector's rows are not class scores: refused, never reported
    with pytest.raises(EdgekitError, match=r"output \[1, 16, 7\] .* not one score per class"):
        open_task_model(detect_bundle, task="classify", device="cpu")
    with pytest.raises(EdgekitError, match="unknown task"):
        open_task_model(detect_bundle, task="segment")


def test_task_factory_is_picklable_and_records_cross_processes(detect_bundle):
    # the Edge TPU worker builds the model in a child from a picklable factory
    import functools
    import multiprocessing as mp

    factory = functools.partial(open_task_model, str(detect_bundle), device="cpu")
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        rec = pool.apply(_run_in_child, (factory, scene(32, 32, [("blue", 0, 8, 8, 16)])))
    assert isinstance(rec, Detections) and rec.detections[0].label == "blue"


def _run_in_child(factory, img):
    return factory().run(img)


def test_the_detection_path_never_imports_tensorflow(detect_bundle):
    import subprocess

    code = (
        "import sys, numpy as np\n"
        "from edgekit.tasks import open_task_model\n"
        f"m = open_task_model({str(detect_bundle)!r}, device='cpu')\n"
        "m.run(np.zeros((40, 30, 3), np.uint8))\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'cv2')]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_a_stateful_model_carries_its_state_from_call_to_call(stateful_bundle):
    det = Detector(stateful_bundle, device="cpu")
    assert det.input_size == (32, 32)  # the image input, not the (1, 4, 4, 3) state input
    red, black = scene(32, 32, [("red", 8, 8, 16, 16)]), scene(32, 32, [])
    assert [d.label for d in det.detect(red)] == ["red"]
    (remembered,) = det.detect(black).detections  # the state says: red was there
    assert remembered.label == "red"
    np.testing.assert_allclose(remembered.box, (8, 8, 16, 16), atol=ATOL)
    assert len(Detector(stateful_bundle, device="cpu").detect(black)) == 0  # fresh state
    det.reset()
    assert len(det.detect(black)) == 0


def test_a_manifest_that_does_not_match_its_model_is_one_line(detect_bundle, tmp_path):
    from tests.detect.conftest import edit_manifest

    def wrong(d):
        d["input"]["shape"] = [1, 64, 64, 3]

    b = edit_manifest(detect_bundle, tmp_path / "b", wrong)
    with pytest.raises(EdgekitError, match=r"manifest input \[1, 64, 64, 3\] does not match"):
        Detector(b, device="cpu")


def test_a_bare_anchor_free_tflite_gets_its_strides_from_its_shape(tiny_detector):
    # no manifest: --decoder names the layout, the strides follow from [1, 16, 7] on 32x32
    det = Detector(tiny_detector, device="cpu", decoder="edgekit-anchor-free", threshold=0.5)
    (d,) = det.detect(scene(64, 48, [("red", 32, 8, 48, 24)])).detections
    assert d.id == 0 and d.label == "0"  # no labels without a bundle
    np.testing.assert_allclose(d.box, (32, 8, 48, 24), atol=2 * ATOL)


def test_a_forced_decoder_on_another_head_is_said(detect_bundle):
    """`detect --decoder yolov5` on a YOLOv8 export printed '0 objects' without a word: a
    decoder forced on outputs that look like another head is said once (and not when it is
    the head's own)."""
    from edgekit.detect.decoders import guess_decoder
    from edgekit.tflite import read_model

    model = next(detect_bundle.glob("*.tflite"))
    guessed = guess_decoder(read_model(model))
    assert guessed is not None
    other = "yolov5" if guessed != "yolov5" else "yolov8"
    notes: list[str] = []
    Detector(model, device="cpu", decoder=other, on_warning=notes.append)
    assert any(f"look like a {guessed} head" in n for n in notes), notes
    notes.clear()
    Detector(model, device="cpu", decoder=guessed, on_warning=notes.append)
    assert not any("look like" in n for n in notes)
