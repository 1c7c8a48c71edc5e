"""Runs for real on a Coral Edge TPU: `pytest -m edgetpu tests/runtime`. Skipped, with the
reason, on machines without one (like CI). Nothing is faked here."""

from __future__ import annotations

import pytest

from edgekit.backends.edgetpu import SystemStack

pytestmark = pytest.mark.edgetpu


def _why_not() -> str | None:
    try:
        stack = SystemStack()
        devices = stack.list_devices()
        problem = stack.library_problem()
    except Exception as e:  # no interpreter provider, unreadable sysfs...
        return f"Edge TPU stack unusable here: {e}"
    if devices == []:
        return "no Edge TPU attached (no USB 1a6e:089a / 18d1:9302, no /sys/class/apex)"
    if problem:
        return f"libedgetpu not installed ({problem})"
    return None


REASON = _why_not()
skip = pytest.mark.skipif(REASON is not None, reason=REASON or "")


@skip
@pytest.mark.parametrize("model", ["mobilenet_v2_1.0_224_quant", "mobilenet_v1_0.25_128_quant"])
def test_compiled_coral_model_classifies_the_cat_on_the_edgetpu(coral_dir, model):
    from edgekit.classify import Classifier

    labels = coral_dir / "imagenet_labels.txt"
    clf = Classifier(coral_dir / f"{model}_edgetpu.tflite", labels, device=":0")
    assert clf.runner.backend == "edgetpu"
    res = clf.classify_path(coral_dir / "cat.bmp")
    assert res.top.id == 286, res.classes
    # the Edge TPU computes what the CPU twin computes
    cpu = Classifier(coral_dir / f"{model}.tflite", device="cpu")
    assert [c.id for c in cpu.classify_path(coral_dir / "cat.bmp").classes][:1] == [286]


@skip
def test_bench_on_the_edgetpu_reports_first_inference_apart(coral_dir):
    from edgekit.bench import bench

    r = bench(coral_dir / "mobilenet_v2_1.0_224_quant_edgetpu.tflite", "auto", runs=20)
    assert r.backend == "edgetpu" and r.runs == 20
    assert r.first_ms > 0 and r.min_ms <= r.p50_ms <= r.max_ms
