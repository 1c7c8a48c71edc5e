"""Class-aware non-maximum suppression in numpy.

Greedy NMS as in torchvision's ``batched_nms`` (which Ultralytics uses): boxes of different
classes never suppress each other, which is done in one pass by shifting each class's boxes by
``class_id * (max coordinate + 1)`` so that boxes of two classes can never overlap.
Cost: one vectorized IoU row per kept box, so O(kept * candidates); candidates are capped by the
caller (score threshold, then the ``max_candidates`` best).
"""

from __future__ import annotations

import numpy as np


def iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (4,) x0, y0, x1, y1 box with (N, 4) boxes -> (N,) float."""
    ix0 = np.maximum(box[0], boxes[:, 0])
    iy0 = np.maximum(box[1], boxes[:, 1])
    ix1 = np.minimum(box[2], boxes[:, 2])
    iy1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, max_keep: int) -> np.ndarray:
    """Indices of the boxes kept by greedy NMS, best score first (ties: lower index first).

    boxes: (N, 4) float x0, y0, x1, y1; scores: (N,); a box is dropped when its IoU with an
    already kept box is > ``iou``. At most ``max_keep`` indices.
    """
    order = np.argsort(-scores, kind="stable")
    boxes = boxes.astype(np.float64, copy=False)
    keep: list[int] = []
    while order.size and len(keep) < max_keep:
        i = int(order[0])
        keep.append(i)
        if order.size == 1:
            break
        rest = order[1:]
        order = rest[iou_one_to_many(boxes[i], boxes[rest]) <= iou]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(
    boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float, max_keep: int
) -> np.ndarray:
    """Class-aware :func:`nms`: only boxes of the same class suppress each other."""
    if boxes.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    boxes = boxes.astype(np.float64, copy=False)
    span = float(np.abs(boxes).max()) + 1.0
    shifted = boxes + (classes.astype(np.float64) * span)[:, None]
    return nms(shifted, scores, iou, max_keep)
