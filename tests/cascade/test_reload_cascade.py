"""Hot reload with a [cascade] (edgekit.stream.reload): the reloaded detector comes back with its
crop classifier, and a replaced classifier bundle is reloaded too (SIGHUP, or the watched path),
in serve's worker process and in-process. The tiny real detector and colour classifier."""

from __future__ import annotations

import shutil

import pytest

from tests.runtime.conftest import write_bundle
from tests.stream.test_reload import Served, swap_symlink
from tests.stream.test_serve_detect import cell, write_video

OTHER = ("robin", "finch", "jay")  # the second classifier: same colours, other names


@pytest.fixture(scope="module")
def static_avi(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("video") / "static.avi",
                       [[cell("red", 1, 1), cell("blue", 2, 2)]], frames_per_scene=20)  # fmt: skip


def species(result) -> dict[str, str]:
    dets = result.to_dict()["detections"]
    return {d["label"]: (d["classes"][0]["label"] if d["classes"] else "") for d in dets}


@pytest.mark.parametrize("mode", ["process", "inline"])
def test_reloaded_detector_keeps_its_classifier_and_a_new_classifier_is_taken(
    mode, detect_bundle, species_bundle, tiny_models, static_avi, tmp_path
):
    det, clf = tmp_path / "detector", tmp_path / "classifier"
    det.symlink_to(detect_bundle)
    clf.symlink_to(species_bundle)
    det2 = shutil.copytree(detect_bundle, tmp_path / "detector-v2")
    other = write_bundle(tmp_path / "other", tiny_models / "u8_01.tflite", (0, 1), labels=OTHER)
    s = Served({"model": {"path": str(det), "device": "cpu", "watch_s": 0.2},
                "cascade": {"classifier": str(clf)}, "pipeline": {"hold_s": 0.0},
                "worker": {"mode": mode}}, static_avi)  # fmt: skip
    try:
        s.wait(lambda: len(s.results) >= 3, what="first results")
        assert species(s.results[-1]) == {"red": "cardinal", "blue": "bluejay"}
        swap_symlink(det, det2)  # a new detector: its crops still go to the classifier
        s.wait(lambda: s.event("model_reloaded") or s.event("reload_failed"), what="reload")
        first = s.event("model_reloaded")
        assert first is not None, [e.to_dict() for e in s.events]
        n = len(s.results)
        s.wait(lambda: len(s.results) >= n + 3, what="results after the reload")
        assert species(s.results[-1]) == {"red": "cardinal", "blue": "bluejay"}
        before = len(s.events)
        swap_symlink(clf, other)  # a new classifier behind the watched [cascade] path
        s.wait(lambda: s.event("model_reloaded", before) or s.event("reload_failed", before),
               what="classifier reload")  # fmt: skip
        second = s.event("model_reloaded", before)
        assert second is not None, [e.to_dict() for e in s.events[before:]]
        n = len(s.results)
        s.wait(lambda: len(s.results) >= n + 3, what="results after the classifier reload")
        assert species(s.results[-1]) == {"red": "robin", "blue": "jay"}
        before = len(s.events)
        swap_symlink(clf, species_bundle)
        s.trigger.set()  # SIGHUP takes the classifier back too
        s.wait(lambda: s.event("model_reloaded", before) or s.event("reload_failed", before),
               what="SIGHUP reload")  # fmt: skip
        n = len(s.results)
        s.wait(lambda: len(s.results) >= n + 3, what="results after SIGHUP")
        assert species(s.results[-1]) == {"red": "cardinal", "blue": "bluejay"}
    finally:
        s.close()
    assert first.details["bundle"] == str(det2)
    assert first.details["classifier"] == str(species_bundle)
    assert second.details["classifier"] == str(other)
    assert len(second.details["classifier_sha256"]) == 64
    assert "classifier" in second.message and str(other) in second.message
    assert not s.event("reload_failed")
