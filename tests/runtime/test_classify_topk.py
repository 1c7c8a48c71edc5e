"""Top-k is deterministic and lists no class scoring 0: ties (a uint8 output has 256 levels, so
they are common) in class-id order, whichever ids a partition happened to leave; checked
against a full stable sort of the real models' dequantized outputs and through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edgekit.classify import Classifier

V2 = "mobilenet_v2_1.0_224_quant"


def reference(scores: np.ndarray, k: int, threshold: float = 0.0) -> list[int]:
    """The definition: a full sort by (score descending, id ascending), the first k, then
    those scoring above 0 and at least ``threshold``."""
    order = sorted(range(scores.size), key=lambda i: (-scores[i], i))[:k]
    return [i for i in order if scores[i] > 0 and scores[i] >= threshold]


@pytest.fixture(scope="module")
def v2(coral_dir):
    return Classifier(coral_dir / f"{V2}.tflite", coral_dir / "imagenet_labels.txt", "cpu",
                      top_k=20)  # fmt: skip


@pytest.mark.parametrize("image", ["cat.bmp", "parrot.jpg", "grace_hopper.bmp", "bird.bmp"])
def test_coral_photos_rank_as_a_full_stable_sort(v2, coral_dir, image):
    from edgekit.images import load_rgb

    x, pre = v2.make_input(load_rgb(coral_dir / image))
    raw, _, _ = v2.invoke_input(x, pre)
    scores = v2.scores(raw)
    full = [c.id for c in v2.top(scores)]  # top 20
    try:
        for k in (1, 3, 8, 20):
            v2.top_k = k
            want = reference(scores, k)
            assert [c.id for c in v2.top(scores)] == want == full[: len(want)], (image, k)
    finally:
        v2.top_k = 20
    res = v2.classify_path(coral_dir / image)
    assert all(c.score > 0 for c in res.classes)
    assert [(-c.score, c.id) for c in res.classes] == sorted((-c.score, c.id) for c in res.classes)


def test_ties_come_in_id_order_and_zeros_are_left_out(coral_dir, v2):
    """Scores of a uint8 softmax over 1001 classes: many equal steps, most of them 0."""
    step = np.float32(1 / 256)
    scores = np.zeros(1001, np.float32)
    scores[[900, 17, 450, 3]] = step  # four tied at one step, ids out of order
    scores[600] = 200 * step
    scores[999] = 2 * step
    v2.top_k = 4
    try:
        assert [c.id for c in v2.top(scores)] == [600, 999, 3, 17]  # not 450 or 900
        v2.top_k = 20
        assert [c.id for c in v2.top(scores)] == [600, 999, 3, 17, 450, 900]  # no 0.000 rows
        v2.threshold = 2 * float(step)
        assert [c.id for c in v2.top(scores)] == [600, 999]
        v2.threshold = 0.0
        assert v2.top(np.zeros(1001, np.float32)) == (), "all zero: nothing to rank"
    finally:
        v2.top_k, v2.threshold = 20, 0.0


def test_cli_lists_the_same_classes_every_time(coral_dir, tmp_path):
    """`edgekit classify -k 8` on a photo the model is sure of: one class, not seven 0.000s."""
    cmd = [sys.executable, "-c", "from edgekit.cli import run; run()", "classify",
           str(coral_dir / f"{V2}.tflite"), str(coral_dir / "parrot.jpg"),
           str(coral_dir / "cat.bmp"), "-k", "8", "-d", "cpu", "--json"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    parrot, cat = json.loads(out.stdout)
    assert [c["id"] for c in parrot["classes"]] == [89]
    ids = [c["id"] for c in cat["classes"]]
    assert ids[:3] == [286, 282, 283] and all(c["score"] > 0 for c in cat["classes"])
    tied = [c["id"] for c in cat["classes"] if c["score"] == cat["classes"][-1]["score"]]
    assert len(tied) > 1 and tied == sorted(tied), "a tie, listed in id order"
    assert set(parrot) == {"image", "classes"} and set(parrot["classes"][0]) == {
        "id", "label", "score"}, "the JSON keys are unchanged"
