"""The zoo anchor-free detector's training targets and loss (``edgekit train --task detect``).

Targets (FCOS-style, one row per output cell, layout in docs/DESIGN.md "edgekit detector head"):
a box of longer side L (input pixels) belongs to stride s when L <= 8 s (the smallest stride) /
L >= 6 s' (s' the next smaller stride) up to 8 s (the largest stride takes everything above),
so neighbouring strides overlap; a cell is positive for it when the cell centre lies inside the
box and within ``CENTRE_RADIUS`` strides of the box centre (the cell holding the box centre
always is). A cell claimed by several boxes takes the smallest. Targets are the (l, t, r, b)
distances / input size and the one-hot class.

Loss: generalized IoU on positive cells (Rezatofighi et al. 2019) plus quality focal loss on the
class scores (Li et al. 2020, GFL, beta 2): the positive class's target is 0.5 + 0.5 IoU of the
cell's current predicted box with its ground truth, so a score also says how good the box is and
NMS keeps the best-placed one (the 0.5 floor keeps the class signal strong while boxes are still
poor early in a short training). Both normalized by the number of positive cells in the batch.
"""

from __future__ import annotations

import numpy as np

CENTRE_RADIUS = 2.0
# The positive class's score target: QUALITY_FLOOR + (1 - QUALITY_FLOOR) * IoU.
QUALITY_FLOOR = 0.5


def level_ranges(strides) -> list[tuple[float, float]]:
    """(min, max) longer box side in input pixels that each stride is responsible for."""
    out = []
    for i, s in enumerate(strides):
        lo = 0.0 if i == 0 else 6.0 * strides[i - 1]
        hi = float("inf") if i == len(strides) - 1 else 8.0 * s
        out.append((lo, hi))
    return out


def make_targets(boxes, labels, centres, cell_strides, input_hw, num_classes, strides):
    """Targets for one image: (N, 4 + nc) float32. ``boxes`` (M, 4) in input pixels."""
    h, w = input_hw
    n = len(centres)
    target = np.zeros((n, 4 + num_classes), np.float32)
    owner_area = np.full(n, np.inf)
    ranges = dict(zip(strides, level_ranges(strides)))
    cx, cy = centres[:, 0], centres[:, 1]
    for (x0, y0, x1, y1), label in zip(np.asarray(boxes, np.float64), labels):
        bw, bh = x1 - x0, y1 - y0
        longer, area = max(bw, bh), bw * bh
        bcx, bcy = (x0 + x1) / 2, (y0 + y1) / 2
        for s in strides:
            lo, hi = ranges[s]
            if not lo <= longer <= hi:
                continue
            level = cell_strides == s
            r = CENTRE_RADIUS * s
            pos = level & (cx > x0) & (cx < x1) & (cy > y0) & (cy < y1)
            pos &= (np.abs(cx - bcx) <= r) & (np.abs(cy - bcy) <= r)
            idx = np.nonzero(level)[0]
            nearest = idx[np.argmin((cx[idx] - bcx) ** 2 + (cy[idx] - bcy) ** 2)]
            pos[nearest] = True
            pos &= area < owner_area
            if not pos.any():
                continue
            owner_area[pos] = area
            ltrb = np.stack([cx[pos] - x0, cy[pos] - y0, x1 - cx[pos], y1 - cy[pos]], axis=1)
            target[pos, :4] = np.clip(ltrb / np.array([w, h, w, h]), 0.0, 1.0)
            target[pos, 4:] = 0.0
            target[pos, 4 + int(label)] = 1.0
    return target


def flip_permutation(input_hw, strides) -> np.ndarray:
    """Row permutation that mirrors the head's cells left-right (rows of a flipped image)."""
    h, w = input_hw
    perm, offset = [], 0
    for s in strides:
        gh, gw = h // s, w // s
        grid = np.arange(gh * gw).reshape(gh, gw)[:, ::-1]
        perm.append(grid.ravel() + offset)
        offset += gh * gw
    return np.concatenate(perm)


def detection_loss(input_hw, box_weight: float = 2.0):
    """Keras loss: GIoU on positives + quality focal loss (see the module docstring)."""
    import tensorflow as tf

    h, w = input_hw
    scale = tf.constant([w, h, w, h], tf.float32)
    eps = 1e-6

    def loss(y_true, y_pred):
        y_true = tf.cast(y_true, tf.float32)
        t_cls, p_cls = y_true[..., 4:], tf.clip_by_value(y_pred[..., 4:], eps, 1 - eps)
        pos = tf.cast(tf.reduce_max(t_cls, axis=-1) > 0, tf.float32)
        npos = tf.maximum(tf.reduce_sum(pos), 1.0)
        pb, tb = y_pred[..., :4] * scale, y_true[..., :4] * scale
        area_p = (pb[..., 0] + pb[..., 2]) * (pb[..., 1] + pb[..., 3])
        area_t = (tb[..., 0] + tb[..., 2]) * (tb[..., 1] + tb[..., 3])
        lo, hi = tf.minimum(pb, tb), tf.maximum(pb, tb)
        inter = (lo[..., 0] + lo[..., 2]) * (lo[..., 1] + lo[..., 3])
        union = area_p + area_t - inter
        iou = inter / (union + eps)
        enclose = (hi[..., 0] + hi[..., 2]) * (hi[..., 1] + hi[..., 3])
        giou = iou - (enclose - union) / (enclose + eps)
        box_loss = tf.reduce_sum((1.0 - giou) * pos) / npos
        quality = tf.stop_gradient(tf.clip_by_value(iou, 0.0, 1.0))[..., None]
        q = t_cls * (QUALITY_FLOOR + (1.0 - QUALITY_FLOOR) * quality)
        bce = -(q * tf.math.log(p_cls) + (1 - q) * tf.math.log(1 - p_cls))
        cls_loss = tf.reduce_sum(tf.square(q - p_cls) * bce) / npos
        return cls_loss + box_weight * box_loss

    return loss
