"""serve fits a detector's frames to its input in the capture thread (letterbox or stretch, the
detector's own step: edgekit.fitted), as it resizes a classifier's: the worker gets input-size
pixels plus the way back, and the record's boxes are exactly the in-process detector's on the
whole frame. On the tiny fixture detector (letterbox; stateful) and on Google's real stateful
SSD video detector (stretch; ../shared, skipped without it)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from PIL import Image

from edgekit.detect.detector import Detector
from edgekit.errors import EdgekitError
from edgekit.fitted import Fit, FittedFrame
from edgekit.stream import serve
from edgekit.stream.config import from_dict
from edgekit.stream.sinks import CallbackSink
from edgekit.stream.worker import ModelProcess
from tests.stream.worker_models import FitProbe

from .conftest import scene, shared


def _tiny_frames() -> list[np.ndarray]:
    return [scene(64, 48, [("red", 32, 8, 48, 24), ("blue", 0, 24, 16, 40)]),
            scene(64, 48, [("green", 8, 8, 40, 40)]),
            scene(64, 48, [("blue", 40, 16, 56, 32)])]  # fmt: skip


def _ssd_frames() -> list[np.ndarray]:
    """The video's three 256x256 frames at 400x300: the stretch to 256x256 has work to do."""
    out = []
    for i in (1, 2, 3):
        img = Image.open(shared("coral", "automl-traffic", f"000{i}.bmp")).convert("RGB")
        out.append(np.asarray(img.resize((400, 300), Image.BILINEAR)))
    return out


def _model(request, which: str):
    if which == "ssd":
        return shared("coral", "automl-traffic", "traffic_model.tflite"), _ssd_frames()
    return request.getfixturevalue(which), _tiny_frames()


def _comparable(d: dict) -> tuple:
    """A result line's detections and image size (scores as serve rounds them: 4 decimals)."""
    dets = [{**x, "score": round(x["score"], 4)} for x in d["detections"]]
    return dets, list(d["image_size"])


@pytest.mark.parametrize(("which", "mode"), [
    ("detect_bundle", "process"), ("detect_bundle", "inline"), ("stateful_bundle", "process"),
    ("ssd", "process"),
])  # fmt: skip
def test_serve_fits_detector_frames_before_the_worker_with_identical_boxes(
    request, tmp_path, which, mode
):
    model, frames = _model(request, which)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"{i}.png")
    inline = Detector(model, device="cpu", threads=1)
    want = [inline.detect(f).to_dict() for f in frames]  # in order: a stateful model's carry
    h, w = inline.input_size
    cfg = from_dict({"model": {"path": str(model), "device": "cpu"}, "worker": {"mode": mode},
                     "source": {"uri": str(folder)}, "output": {"json_lines": False}})  # fmt: skip
    probe = functools.partial(FitProbe, str(model), device="cpu", threads=1)
    m = serve.start_workers(probe, cfg) if mode == "process" else probe()
    results = []
    try:
        serve.run(cfg, classifier=m, extra_sinks=[CallbackSink(results.append)])
    finally:
        m.close()
    assert len(results) == len(frames)
    assert any(d["detections"] for d in want)  # real boxes to compare
    for r, wanted, f in zip(results, want, frames):
        got = r.to_dict()
        # the model was handed the input-size pixels (across the process boundary: only those)
        assert (got["seen"], got["fitted"]) == ([h, w, 3], True)
        assert f.shape[:2] != (h, w)
        assert _comparable(got) == _comparable(wanted)


def test_a_frame_fitted_for_another_model_runs_from_its_whole_frame(detect_bundle):
    """A hot reload can swap the model between the capture's fit and the worker: a frame fitted
    another way is run from its whole frame (in process and across the worker's boundary);
    without its frame it is one line, not a wrong box."""
    frame = _tiny_frames()[0]
    det = Detector(detect_bundle, device="cpu", threads=1)
    want = det.detect(frame)
    assert len(want.detections) == 2
    other = Fit((16, 24), "letterbox", 0)(frame)
    same = det.fit(frame)
    assert isinstance(same, FittedFrame) and same.pixels.shape[:2] == det.input_size
    for given in (other, same):
        got = det.detect(given)
        assert (got.detections, got.image_size) == (want.detections, want.image_size)
    with pytest.raises(EdgekitError, match="original is not here"):
        det.detect(other._replace(frame=None))
    worker = ModelProcess(functools.partial(Detector, str(detect_bundle), device="cpu",
                                            threads=1))  # fmt: skip
    try:
        assert worker.fit == det.fit
        for given in (other, same, frame):
            got = worker.run(given)
            assert (got.detections, got.image_size) == (want.detections, want.image_size)
    finally:
        worker.close()


@pytest.mark.parametrize("which", ["stateful_bundle", "ssd"])
def test_the_workers_records_on_fitted_frames_are_the_in_process_records(request, which):
    """Record for record (boxes, scores, labels, image size; a stateful model's carry), two
    frames in flight: the worker given fitted frames vs the detector in process on the whole
    frames."""
    model, frames = _model(request, which)
    frames = frames + frames[::-1]
    inline = Detector(model, device="cpu", threads=1)
    want = [inline.detect(f) for f in frames]
    worker = ModelProcess(functools.partial(Detector, str(model), device="cpu", threads=1))
    got = []
    try:
        fit = worker.fit
        assert fit == inline.fit
        worker.submit(fit(frames[0]))
        for f in frames[1:]:
            worker.submit(fit(f))
            got.append(worker.collect())
        got.append(worker.collect())
    finally:
        worker.close()
    assert sum(len(w.detections) for w in want) >= 2
    assert [(g.detections, g.image_size) for g in got] == [(w.detections, w.image_size)
                                                           for w in want]  # fmt: skip
