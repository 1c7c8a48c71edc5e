"""The pipeline with the real classifier on a real video; faults injected at the source and at
the Edge TPU backend boundary; smoothing; stats."""

from __future__ import annotations

import threading

import pytest

from edgekit.errors import EdgekitError
from edgekit.stream import serve
from edgekit.stream.capture import CaptureThread
from edgekit.stream.config import from_dict
from edgekit.stream.pipeline import Pipeline, Smoother
from edgekit.stream.sinks import CallbackSink
from edgekit.stream.sources import OpenCVSource

from .conftest import FRAMES_PER_PHOTO
from .stream_faults import FlakySource, compiled_model, installed_fake_tpu


def run_collect(config_dict, classifier=None, source=None):
    results, events = [], []
    sink = CallbackSink(results.append, events.append)
    cfg = from_dict({"output": {"json_lines": False}, **config_dict})
    stats = serve.run(cfg, classifier=classifier, source=source, extra_sinks=[sink])
    return results, events, stats


def test_every_frame_of_a_file_is_classified_in_order(video_avi, classifier):
    results, events, stats = run_collect({}, classifier, OpenCVSource(str(video_avi)))
    assert [r.frame for r in results] == list(range(1, 41))
    assert [e.kind for e in events if not e.kind.startswith("label_")] == ["source_ended"]
    cat, parrot = results[0], results[FRAMES_PER_PHOTO]
    assert cat.classes[0]["label"] in ("tiger cat", "Egyptian cat", "tabby")
    assert parrot.classes[0]["label"] == "macaw"
    d = parrot.to_dict()
    assert set(d) == {"frame", "timestamp", "classes", "inference_ms", "latency_ms", "label"}
    assert set(d["classes"][0]) == {"id", "label", "score"} and len(d["classes"]) == 3
    assert d["latency_ms"] >= d["inference_ms"] > 0
    assert stats["frames"] == 40 and stats["dropped"] == 0 and stats["backend"] == "cpu"
    assert stats["latency_ms"]["p50"] > 0


def test_max_frames_stops_early(video_avi, classifier):
    results, _, _ = run_collect({"pipeline": {"max_frames": 7}}, classifier,
                                OpenCVSource(str(video_avi), loop=True))  # fmt: skip
    assert len(results) == 7


def test_smoother_needs_n_consistent_frames():
    s = Smoother(3)
    assert [s.update(x) for x in "aaabbaabbbb"] == [None, None, *"aaaaaaabb"]
    assert [Smoother(1).update(x) for x in "ab"] == ["a", "b"]


def test_smoothing_in_pipeline(video_avi, classifier):
    results, _, _ = run_collect({"pipeline": {"smoothing": 4}}, classifier,
                                OpenCVSource(str(video_avi)))  # fmt: skip
    # The first reported label needs 4 frames; the cat->parrot switch at frame 11 is reported
    # from frame 14 on.
    assert [r.label for r in results[:3]] == [None, None, None]
    assert results[12].label != "macaw" and results[13].label == "macaw"


def test_camera_loss_and_corrupt_frames_are_survived_and_reported(video_avi, classifier):
    flaky = FlakySource(OpenCVSource(str(video_avi), loop=True), lose_at={5, 20},
                        reopen_failures=1, corrupt_at={9, 10})  # fmt: skip
    results, events, stats = run_collect(
        {"pipeline": {"max_frames": 30}, "source": {"backoff_s": 0.01}}, classifier, flaky
    )
    kinds = [e.kind for e in events]
    assert len(results) == 30
    assert kinds.count("source_lost") == 4  # 2 losses, each with one failed reopen
    assert kinds.count("source_reconnected") == 2
    assert kinds.count("decode_error") == 2
    assert stats["events"]["decode_error"] == 2


class Unreliable:
    """Wraps the real classifier: raises for some frames (a generic, non-TPU failure)."""

    def __init__(self, inner, fail_on):
        self.inner, self.fail_on, self.calls = inner, set(fail_on), 0
        self.runner = inner.runner

    def classify(self, rgb):
        self.calls += 1
        if self.calls in self.fail_on:
            raise ValueError("injected")
        return self.inner.classify(rgb)

    def reopen(self, device=None):
        self.inner.reopen(device)
        self.runner = self.inner.runner


def test_inference_error_skips_the_frame_and_reopens(video_avi, classifier):
    results, events, stats = run_collect({}, Unreliable(classifier, {3}),
                                         OpenCVSource(str(video_avi)))  # fmt: skip
    assert len(results) == 39 and 3 not in [r.frame for r in results]
    kinds = [e.kind for e in events if not e.kind.startswith("label_")]
    assert kinds[:2] == ["inference_error", "backend_reopened"]
    assert stats["errors"] == {"inference": 1}


def tpu_classifier(coral_dir, labels_path):
    from edgekit.classify import Classifier

    return Classifier(compiled_model(coral_dir), labels=labels_path, device="auto", top_k=3)


def test_edge_tpu_unplugged_falls_back_to_cpu_loudly(video_avi, coral_dir, labels_path, caplog):
    with installed_fake_tpu() as tpu:
        clf = tpu_classifier(coral_dir, labels_path)
        assert clf.runner.backend == "edgetpu"
        unplug_after = 8

        class Unplug(CallbackSink):
            def on_result(self, result):
                if result.frame == unplug_after:
                    tpu.plugged = False

        results, events = [], []
        cfg = from_dict({"output": {"json_lines": False}, "model": {"tpu_retry_s": 0}})
        sinks = [Unplug(), CallbackSink(results.append, events.append)]
        stats = serve.run(
            cfg, classifier=clf, source=OpenCVSource(str(video_avi)), extra_sinks=sinks
        )
    kinds = [e.kind for e in events]
    assert "inference_error" in kinds and "cpu_fallback" in kinds
    fallback = events[kinds.index("cpu_fallback")]
    assert "EDGE TPU FAILED" in fallback.message
    assert any("EDGE TPU FAILED" in r.message and r.levelname == "ERROR" for r in caplog.records)
    assert stats["degraded"] is True and stats["backend"] == "cpu"
    assert len(results) == 39  # one frame lost to the fault, every other one classified
    after = next(r for r in results if r.frame == 15)  # a parrot frame, classified on the CPU
    assert after.classes[0]["label"] == "macaw"


def test_edge_tpu_transient_fault_reopens_the_tpu(video_avi, coral_dir, labels_path):
    with installed_fake_tpu() as tpu:
        clf = tpu_classifier(coral_dir, labels_path)
        tpu.fail_invokes = 1
        results, events, stats = run_collect({"pipeline": {"max_frames": 5}}, clf,
                                             OpenCVSource(str(video_avi)))  # fmt: skip
        assert tpu.opens == 2
    kinds = [e.kind for e in events if not e.kind.startswith("label_")]
    assert kinds[:2] == ["inference_error", "backend_reopened"]
    assert stats["backend"] == "edgetpu" and not stats["degraded"] and len(results) == 5


def test_edge_tpu_failure_with_fail_policy_stops_with_an_error(video_avi, coral_dir, labels_path):
    with installed_fake_tpu() as tpu:
        clf = tpu_classifier(coral_dir, labels_path)
        tpu.plugged = False
        with pytest.raises(EdgekitError, match="could not be reopened"):
            run_collect({"model": {"on_tpu_failure": "fail"}}, clf, OpenCVSource(str(video_avi)))


def test_edge_tpu_comes_back_after_fallback(video_avi, coral_dir, labels_path):
    with installed_fake_tpu() as tpu:
        clf = tpu_classifier(coral_dir, labels_path)
        tpu.plugged = False
        results, events = [], []

        class Replug(CallbackSink):
            def on_result(self, result):
                tpu.plugged = True

        cfg = from_dict({"output": {"json_lines": False}, "model": {"tpu_retry_s": 0.001}})
        sinks = [Replug(), CallbackSink(results.append, events.append)]
        stats = serve.run(
            cfg, classifier=clf, source=OpenCVSource(str(video_avi)), extra_sinks=sinks
        )
    kinds = [e.kind for e in events]
    assert kinds.index("cpu_fallback") < kinds.index("tpu_restored")
    assert stats["backend"] == "edgetpu" and stats["degraded"] is False


def test_a_failing_sink_does_not_stop_the_pipeline(video_avi, classifier):
    def boom(result):
        raise OSError("disk full")

    results, _, stats = run_collect({"pipeline": {"max_frames": 3}}, classifier,
                                    OpenCVSource(str(video_avi)))  # fmt: skip
    cap = CaptureThread(OpenCVSource(str(video_avi)))
    got = []
    p = Pipeline(cap, classifier.classify, [CallbackSink(boom), CallbackSink(got.append)],
                 max_frames=4).start()  # fmt: skip
    assert p.done.wait(30)
    assert len(got) == 4 and p.stats.errors["sink"] == 4 and p.error is None


def test_stop_event_ends_run(video_avi, classifier):
    stop = threading.Event()
    n = []

    def count(result):
        n.append(result)
        if len(n) == 3:
            stop.set()

    cfg = from_dict({"output": {"json_lines": False}})
    serve.run(cfg, stop=stop, classifier=classifier,
              source=OpenCVSource(str(video_avi), loop=True),
              extra_sinks=[CallbackSink(count)])  # fmt: skip
    stopped_at = len(n)
    assert stopped_at >= 3
    threading.Event().wait(0.3)
    assert len(n) == stopped_at, "no results after run() returned: the worker was stopped"


def test_capture_side_resize_gives_the_same_scores(video_avi, classifier):
    """The pipeline resizes in the capture thread; scores must equal classify() on the full
    frame (same function, same pixels)."""
    import cv2

    results, _, _ = run_collect({"pipeline": {"max_frames": 12}}, classifier,
                                OpenCVSource(str(video_avi)))  # fmt: skip
    cap = cv2.VideoCapture(str(video_avi))
    for _ in range(12):
        ok, bgr = cap.read()
    direct = classifier.classify(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    assert results[11].rgb.shape == (480, 640, 3), "snapshots keep the full frame"
    assert [c["id"] for c in results[11].classes] == [c.id for c in direct.classes]
    assert [c["score"] for c in results[11].classes] == [round(c.score, 4) for c in direct.classes]
