"""``edgekit train --task detect --model yolov3_tiny``: targets and loss of YOLOv3's anchor heads.

The rest of the run (dataset, held-out split, letterboxing, flip and colour augmentation, the
optimiser, the summary) is :func:`edgekit.host.train_detect.train_detector`'s; this module is
the head-specific part (:class:`YoloV3Head`), as darknet trains YOLOv3 (Redmon & Farhadi 2018,
arXiv:1804.02767, section 2.1):

Targets: each ground-truth box (input pixels) goes to the ONE anchor, among all heads' anchors,
whose (w, h) has the highest IoU with the box's (both centred), in the cell of that anchor's head
holding the box centre. Its targets: tx, ty = the centre's offset in the cell (0..1), tw, th =
log(w / anchor w), log(h / anchor h), objectness 1, the one-hot class, and a box weight
2 - w h / (W H) (small boxes count more, as darknet). Per head, the target array is
(rows, cols, A, 6 + nc): tx, ty, tw, th, objectness, weight, classes. A later box landing on an
anchor and cell already taken replaces it (rare in the scenes edgekit composes).

Loss per image, summed over cells and divided by the batch: binary cross-entropy of sigmoid(tx,
ty) with the offsets and squared error of (tw, th) on positives (times the box weight), binary
cross-entropy of objectness on every cell except the negatives whose predicted box already
overlaps a ground truth (IoU > 0.5: darknet's ignore rule, so a good second guess is not
punished), binary cross-entropy of the classes on positives. The decoder that reads the trained
heads is the device's ``yolov3`` (:mod:`edgekit.detect.yolov3`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IGNORE_IOU = 0.5  # darknet's ignore_thresh
MAX_TRUTHS = 16  # boxes per image kept for the ignore rule (composed scenes hold <= 3)


def _wh_iou(wh: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """IoU of centred boxes: (M, 2) sizes against (K, 2) anchors -> (M, K)."""
    inter = np.minimum(wh[:, None, 0], anchors[None, :, 0]) * np.minimum(
        wh[:, None, 1], anchors[None, :, 1]
    )
    union = wh[:, None, 0] * wh[:, None, 1] + anchors[None, :, 0] * anchors[None, :, 1] - inter
    return inter / np.maximum(union, 1e-9)


@dataclass(frozen=True)
class YoloV3Head:
    """The zoo ``yolov3_tiny``'s heads as training sees them: ``heads`` (stride, grid, anchors,
    Keras output index; :class:`edgekit.host.convert_heads.Head`), ``input_hw``, classes."""

    heads: tuple
    input_hw: tuple[int, int]
    num_classes: int

    @classmethod
    def for_model(cls, net, input_hw, num_classes: int, anchors) -> YoloV3Head:
        from edgekit.host.convert_heads import grid_heads

        shapes = [tuple(int(d or 1) for d in o.shape) for o in net.outputs]
        return cls(grid_heads(shapes, input_hw, anchors), tuple(input_hw), num_classes)

    @property
    def per_head(self) -> int:
        return len(self.heads[0].anchors)

    def targets(self, boxes: np.ndarray, labels) -> list[np.ndarray]:
        """One image's targets, one (rows, cols, A * (6 + nc) + 4 * MAX_TRUTHS) float32 array
        per head, in head order (smallest stride first): per anchor tx, ty, tw, th, objectness,
        weight, classes, then the image's boxes (x0, y0, x1, y1 in input pixels, zero rows
        after the last) repeated in every cell for the ignore rule. ``boxes``: (M, 4) in input
        pixels."""
        a = self.per_head
        out = [np.zeros((*h.grid, a, 6 + self.num_classes), np.float32) for h in self.heads]
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        if len(boxes):
            anchors = np.array([x for h in self.heads for x in h.anchors], np.float64)
            wh = np.maximum(boxes[:, 2:] - boxes[:, :2], 1e-3)
            best = _wh_iou(wh, anchors).argmax(axis=1)
            area = float(self.input_hw[0] * self.input_hw[1])
            for (x0, y0, x1, y1), (w, h), label, k in zip(boxes, wh, labels, best):
                level, j = divmod(int(k), a)
                head = self.heads[level]
                cx, cy = (x0 + x1) / 2 / head.stride, (y0 + y1) / 2 / head.stride
                col = min(max(int(cx), 0), head.grid[1] - 1)
                row = min(max(int(cy), 0), head.grid[0] - 1)
                aw, ah = head.anchors[j]
                t = out[level][row, col, j]
                t[:] = 0
                t[:6] = (cx - col, cy - row, np.log(w / aw), np.log(h / ah), 1.0,
                         2.0 - w * h / area)  # fmt: skip
                t[6 + int(label)] = 1.0
        truths = np.zeros((MAX_TRUTHS, 4), np.float32)
        b = boxes[:MAX_TRUTHS]
        truths[: len(b)] = b
        return [np.concatenate([t.reshape(*t.shape[:2], -1),
                                np.broadcast_to(truths.ravel(), (*t.shape[:2], truths.size))],
                               axis=-1)  # fmt: skip
                for t in out]

    def flip(self, tf, y):
        """Targets of the left-right mirrored image (one head's, unbatched): columns reversed,
        tx -> 1 - tx on positives, boxes x0, x1 -> W - x1, W - x0 (zero rows stay zero)."""
        a, c = self.per_head, 6 + self.num_classes
        y = y[:, ::-1]
        gh, gw = tf.shape(y)[0], tf.shape(y)[1]
        t = tf.reshape(y[..., : a * c], (gh, gw, a, c))
        pos = t[..., 4:5]
        t = tf.concat([(1.0 - t[..., 0:1]) * pos, t[..., 1:]], axis=-1)
        b = tf.reshape(y[..., a * c :], (gh, gw, MAX_TRUTHS, 4))
        real = tf.cast(tf.reduce_any(b != 0, axis=-1, keepdims=True), tf.float32)
        w = float(self.input_hw[1])
        b = tf.concat([(w - b[..., 2:3]) * real, b[..., 1:2], (w - b[..., 0:1]) * real,
                       b[..., 3:4]], axis=-1)  # fmt: skip
        return tf.concat([tf.reshape(t, (gh, gw, a * c)), tf.reshape(b, (gh, gw, 4 * MAX_TRUTHS))],
                         axis=-1)  # fmt: skip

    def loss(self, level: int):
        """Keras loss of head ``level``: y_true (B, rows, cols, A * (6 + nc) + 4 * MAX_TRUTHS)
        (the targets, then the image's boxes for the ignore rule), y_pred (B, rows, cols,
        A * (5 + nc)) raw logits."""
        import tensorflow as tf

        head = self.heads[level]
        a, nc = self.per_head, self.num_classes
        gh, gw = head.grid
        s = float(head.stride)
        anchors = tf.constant(np.array(head.anchors, np.float32))
        gy, gx = np.mgrid[0:gh, 0:gw]
        grid = tf.constant(np.stack([gx, gy], -1)[:, :, None, :].astype(np.float32))
        bce = tf.nn.sigmoid_cross_entropy_with_logits

        def loss(y_true, y_pred):
            y_true = tf.cast(y_true, tf.float32)
            b = tf.shape(y_pred)[0]
            c = a * (6 + nc)
            t = tf.reshape(y_true[..., :c], (b, gh, gw, a, 6 + nc))
            truths = tf.reshape(y_true[:, 0, 0, c:], (b, 1, 1, 1, MAX_TRUTHS, 4))
            p = tf.reshape(y_pred, (b, gh, gw, a, 5 + nc))
            pos, weight = t[..., 4], t[..., 5]
            xy = bce(labels=t[..., 0:2], logits=p[..., 0:2])
            wh = tf.square(p[..., 2:4] - t[..., 2:4])
            box = tf.reduce_sum((tf.reduce_sum(xy, -1) + tf.reduce_sum(wh, -1)) * pos * weight)
            # the ignore rule: the predicted box against every ground truth of its image
            centre = (tf.sigmoid(p[..., 0:2]) + grid) * s
            size = tf.exp(tf.minimum(p[..., 2:4], 10.0)) * anchors
            pb = tf.concat([centre - size / 2, centre + size / 2], -1)[..., None, :]
            lo = tf.maximum(pb[..., :2], truths[..., :2])
            hi = tf.minimum(pb[..., 2:], truths[..., 2:])
            inter = tf.reduce_prod(tf.maximum(hi - lo, 0.0), -1)
            area_p = tf.reduce_prod(pb[..., 2:] - pb[..., :2], -1)
            area_t = tf.reduce_prod(truths[..., 2:] - truths[..., :2], -1)
            iou = inter / tf.maximum(area_p + area_t - inter, 1e-9)
            best = tf.stop_gradient(tf.reduce_max(iou, -1))
            keep = tf.maximum(pos, tf.cast(best <= IGNORE_IOU, tf.float32))
            obj = tf.reduce_sum(bce(labels=pos, logits=p[..., 4]) * keep)
            cls = tf.reduce_sum(tf.reduce_sum(bce(labels=t[..., 6:], logits=p[..., 5:]), -1) * pos)
            return (box + obj + cls) / tf.cast(b, tf.float32)

        return loss

    def keras_targets(self, boxes, labels):
        """``fit``'s targets for images with ``boxes`` (input pixels) and ``labels``: a tuple of
        (N, rows, cols, channels) arrays in the model's output order, the flip of one image's
        tuple, and the losses in that order."""
        import tensorflow as tf

        per_image = [self.targets(b, lab) for b, lab in zip(boxes, labels)]
        order = sorted(range(len(self.heads)), key=lambda i: self.heads[i].keras_index)
        y = tuple(np.stack([t[i] for t in per_image]) for i in order)

        def flip(ys):
            return tuple(self.flip(tf, v) for v in ys)

        return y, flip, [self.loss(i) for i in order]

    def evaluate_outputs(self, outputs) -> list[dict]:
        """``predict``'s outputs (one array per output, model order) as one decoder input per
        image, in head order."""
        per_head = [np.asarray(outputs[h.keras_index]) for h in self.heads]
        return [{i: o[j : j + 1] for i, o in enumerate(per_head)} for j in range(len(per_head[0]))]

    def decoder(self):
        """The device's ``yolov3`` decoder bound to float outputs in head order."""
        from edgekit.host.convert_heads import decoder

        return decoder(self.input_hw, self.heads, self.num_classes)

    def detection_block(self) -> dict:
        return {
            "decoder": "yolov3",
            "params": {
                "anchors": [list(x) for h in self.heads for x in h.anchors],
                "strides": [h.stride for h in self.heads],
                "heads": [h.to_dict() for h in self.heads],
            },
        }
