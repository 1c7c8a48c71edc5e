"""mAP@0.5 and IoU (edgekit.detect.metrics) against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.detect.metrics import ImageBoxes, average_precision, box_iou, mean_average_precision


def gt(boxes, labels):
    return ImageBoxes.make(boxes, labels)


def det(boxes, labels, scores):
    return ImageBoxes.make(boxes, labels, scores)


def test_box_iou_by_hand():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30], [3, 3, 3, 9]])
    # overlap 5x10 = 50, union 150; identical; disjoint; degenerate (zero width).
    assert box_iou(a, b)[0].tolist() == pytest.approx([1 / 3, 1.0, 0.0, 0.0])
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 4)


def test_perfect_detections_score_one_and_ranking_matters():
    truths = [gt([[0, 0, 10, 10], [20, 20, 40, 40]], [0, 1])]
    assert mean_average_precision([det(truths[0].boxes, [0, 1], [0.9, 0.8])], truths).map == 1.0
    # Class 0: a false positive ranked ABOVE the true positive: precision at recall 1 is 1/2.
    preds = [det([[50, 50, 60, 60], [0, 0, 10, 10], [20, 20, 40, 40]], [0, 0, 1], [0.9, 0.5, 0.7])]
    r = mean_average_precision(preds, truths)
    assert r.per_class == {0: 0.5, 1: 1.0}
    assert r.map == 0.75
    # ...ranked below it: no cost.
    preds = [det([[50, 50, 60, 60], [0, 0, 10, 10], [20, 20, 40, 40]], [0, 0, 1], [0.1, 0.5, 0.7])]
    assert mean_average_precision(preds, truths).map == 1.0


def test_iou_threshold_duplicates_and_wrong_class():
    truths = [gt([[0, 0, 10, 10]], [0])]
    # IoU exactly 0.5 counts (>=), a duplicate of a matched box is a false positive.
    half = [[0, 0, 10, 5]]  # inside: IoU 50/100
    r = mean_average_precision([det(half + [[0, 0, 10, 10]], [0, 0], [0.9, 0.8])], truths)
    assert r.per_class[0] == 1.0  # first (IoU 0.5) matches; the second is a duplicate FP
    assert r.detections == {0: 2}
    just_below = [[0, 0, 10, 4.9]]
    assert mean_average_precision([det(just_below, [0], [0.9])], truths).map == 0.0
    # Right box, wrong class: class 0 has AP 0, class 1 has no ground truth and is not averaged.
    r = mean_average_precision([det([[0, 0, 10, 10]], [1], [0.9])], truths)
    assert r.per_class == {0: 0.0} and r.map == 0.0


def test_recall_and_precision_curve_across_images():
    # 2 images, 3 ground-truth boxes of class 0; detections (score order): TP, FP, TP; one missed.
    truths = [gt([[0, 0, 10, 10], [30, 30, 40, 40]], [0, 0]), gt([[0, 0, 20, 20]], [0])]
    preds = [
        det([[0, 0, 10, 10], [60, 60, 70, 70]], [0, 0], [0.9, 0.8]),
        det([[1, 1, 20, 20]], [0], [0.7]),
    ]
    # recall 1/3 @ precision 1, then 2/3 @ 2/3: AP = 1/3 * 1 + 1/3 * 2/3 = 5/9.
    assert mean_average_precision(preds, truths).map == pytest.approx(5 / 9)
    assert average_precision(np.array([1 / 3, 1 / 3, 2 / 3]), np.array([1, 0.5, 2 / 3])) == (
        pytest.approx(5 / 9)
    )


def test_no_ground_truth_and_mismatched_inputs():
    r = mean_average_precision([det([[0, 0, 5, 5]], [0], [0.5])], [gt(np.zeros((0, 4)), [])])
    assert r.map is None and r.per_class == {}
    assert mean_average_precision([], []).map is None
    with pytest.raises(ValueError):
        mean_average_precision([], [gt([[0, 0, 1, 1]], [0])])
    with pytest.raises(ValueError):
        ImageBoxes.make([[0, 0, 1, 1]], [0, 1])
    with pytest.raises(ValueError):
        mean_average_precision([gt([[0, 0, 1, 1]], [0])], [gt([[0, 0, 1, 1]], [0])], 0)


def test_to_dict_names_classes():
    truths = [gt([[0, 0, 10, 10]], [1])]
    d = mean_average_precision([det([[0, 0, 10, 10]], [1], [0.9])], truths).to_dict(["a", "b"])
    assert d["map"] == 1.0 and d["ap_per_class"] == {"b": 1.0} and d["ground_truth"] == {"b": 1}
