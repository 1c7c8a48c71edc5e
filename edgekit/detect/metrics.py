"""Detection quality in pure numpy: IoU and mean average precision (mAP@0.5, PASCAL VOC style).

Boxes are (x0, y0, x1, y1) in pixels, x1 > x0 and y1 > y0. Per class, detections of all images
are sorted by score (ties: the earlier image, then the earlier row, so the result is
deterministic) and each is matched greedily to the unmatched ground-truth box of its class in its
image with the highest IoU; a match with IoU >= the threshold is a true positive, everything
else (including a second detection of an already matched box) a false positive. AP is the area
under the precision-recall curve with precision made monotone from the right ("all points"
interpolation, VOC 2010 onwards and the COCO toolkit's idea without its 101-point sampling).
mAP averages AP over the classes that have ground truth; a class with ground truth but no
detection scores 0, a class with detections but no ground truth is not counted.

The same function compares int8 with float detections: use the float model's detections (above
its score threshold) as the ground truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ImageBoxes:
    """One image's boxes: ``boxes`` (N, 4) float, ``labels`` (N,) int class ids, ``scores`` (N,)
    float (ground truth: ignored, may be None)."""

    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray | None = None

    @classmethod
    def make(cls, boxes, labels, scores=None) -> ImageBoxes:
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        lab = np.asarray(labels, dtype=np.int64).reshape(-1)
        s = None if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(lab) != len(b) or (s is not None and len(s) != len(b)):
            raise ValueError(
                f"{len(b)} boxes, {len(lab)} labels, {0 if s is None else len(s)} scores"
            )
        return cls(b, lab, s)

    @classmethod
    def from_detections(cls, detections) -> ImageBoxes:
        """From an ``edgekit.detect.Detections`` record (its ``id`` is the class)."""
        items = list(detections.detections)
        return cls.make([d.box for d in items], [d.id for d in items], [d.score for d in items])


@dataclass(frozen=True)
class MapResult:
    """``map``: mean AP over classes with ground truth (None when there is no ground truth);
    ``per_class``: {class id: AP}; ``ground_truth`` / ``detections``: box counts per class."""

    map: float | None
    iou: float
    images: int
    per_class: dict[int, float] = field(default_factory=dict)
    ground_truth: dict[int, int] = field(default_factory=dict)
    detections: dict[int, int] = field(default_factory=dict)

    def to_dict(self, names: Sequence[str] | None = None) -> dict:
        def key(c: int):
            return names[c] if names is not None and 0 <= c < len(names) else str(c)

        return {
            "map": self.map,
            "iou": self.iou,
            "images": self.images,
            "ap_per_class": {key(c): ap for c, ap in sorted(self.per_class.items())},
            "ground_truth": {key(c): n for c, n in sorted(self.ground_truth.items())},
            "detections": {key(c): n for c, n in sorted(self.detections.items())},
        }


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N, 4) with every box in ``b`` (M, 4): (N, M) float64.

    Degenerate boxes (zero or negative width/height) have area 0 and IoU 0 with everything.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    wa = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    wb = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    union = wa[:, None] + wb[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under a precision-recall curve (points in detection order), precision made
    monotonically non-increasing from the right (all-points interpolation)."""
    r = np.concatenate([[0.0], np.asarray(recall, np.float64), [1.0]])
    p = np.concatenate([[0.0], np.asarray(precision, np.float64), [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.nonzero(r[1:] != r[:-1])[0]
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def mean_average_precision(
    predictions: Sequence[ImageBoxes],
    truths: Sequence[ImageBoxes],
    iou_threshold: float = 0.5,
) -> MapResult:
    """mAP of ``predictions`` against ``truths`` (one ImageBoxes each per image, same order)."""
    if len(predictions) != len(truths):
        raise ValueError(f"{len(predictions)} prediction images, {len(truths)} ground-truth images")
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"IoU threshold {iou_threshold} must be in (0, 1]")
    classes = sorted(
        {int(c) for t in truths for c in t.labels} | {int(c) for p in predictions for c in p.labels}
    )
    per_class, n_gt, n_det = {}, {}, {}
    for c in classes:
        gts = [t.boxes[t.labels == c] for t in truths]
        total = sum(len(g) for g in gts)
        rows = []  # (-score, image, row, box)
        for i, p in enumerate(predictions):
            scores = p.scores if p.scores is not None else np.ones(len(p.boxes))
            for j in np.nonzero(p.labels == c)[0]:
                rows.append((-float(scores[j]), i, int(j)))
        rows.sort()
        n_det[c] = len(rows)
        if total == 0:
            continue
        n_gt[c] = total
        used = [np.zeros(len(g), dtype=bool) for g in gts]
        tp = np.zeros(len(rows))
        for k, (_, i, j) in enumerate(rows):
            if not len(gts[i]):
                continue
            ious = box_iou(predictions[i].boxes[j], gts[i])[0]
            ious[used[i]] = -1.0
            best = int(np.argmax(ious))
            if ious[best] >= iou_threshold:
                used[i][best] = True
                tp[k] = 1.0
        ctp = np.cumsum(tp)
        recall = ctp / total
        precision = ctp / np.arange(1, len(rows) + 1)
        per_class[c] = average_precision(recall, precision) if rows else 0.0
    value = float(np.mean(list(per_class.values()))) if per_class else None
    return MapResult(value, float(iou_threshold), len(truths), per_class, n_gt, n_det)
