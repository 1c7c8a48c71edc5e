"""``edgekit train --task detect``: train the zoo's anchor-free detector (or its YOLOv3-Tiny,
:mod:`edgekit.host.train_yolov3`) on a YOLO/COCO dataset.

Pixels take the device's path: each image is letterboxed (:func:`edgekit.images.letterbox`,
grey 114) to the model input and mapped to floats in ``input_range``; boxes go through the same
:class:`~edgekit.images.Letterbox` record, so targets and predictions share input pixels.

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

The held-out split (``val``) is never trained on; after training its mAP@0.5 is measured with
the same decoder and NMS the device uses (score threshold 0.001 for mAP, as detectors are
benchmarked). Augmentation: horizontal flip (images and targets), brightness/contrast jitter.
"""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from edgekit import atomic, images
from edgekit.detect.dataset import DetectionDataset, Scene, load_dataset
from edgekit.detect.metrics import ImageBoxes, mean_average_precision
from edgekit.errors import EdgekitError
from edgekit.host.train import EpochLines, labels_file

Progress = Optional[Callable[[str], None]]
CENTRE_RADIUS = 2.0
LETTERBOX_FILL = 114
MAP_SCORE_THRESHOLD = 0.001
NMS_IOU = 0.45  # the bundle's default (edgekit convert --iou)
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


def letterbox_scenes(scenes, input_hw, progress: Progress = None):
    """(uint8 (N, H, W, 3), [Letterbox]) for ``scenes`` (read once)."""
    pixels, boxes_in = [], []
    for i, s in enumerate(scenes):
        img, lb = images.letterbox(images.load_rgb(s.path), input_hw, LETTERBOX_FILL)
        pixels.append(img)
        boxes_in.append(lb)
        if progress and (i + 1) % 200 == 0:
            progress(f"  read {i + 1}/{len(scenes)} images")
    return np.stack(pixels), boxes_in


def decoder_for(input_hw, num_classes: int, strides, dtype="float32", scale=0.0, zero_point=0):
    """The device's ``edgekit-anchor-free`` decoder bound to a (1, N, 4 + nc) output."""
    from edgekit.detect.decoders import HeadIO, OutputTensor, get_decoder

    n = sum((input_hw[0] // s) * (input_hw[1] // s) for s in strides)
    out = OutputTensor(0, "detections", (1, n, 4 + num_classes), dtype, scale, zero_point)
    params = head_params(strides)
    return get_decoder("edgekit-anchor-free")(HeadIO(tuple(input_hw), (out,)), params)


def head_params(strides) -> dict:
    """Decoder params of the zoo detector's head (docs/DESIGN.md "edgekit detector head")."""
    return {"strides": list(strides)}


def evaluate(outputs, letterboxes, scenes: list[Scene], decoder, threshold=MAP_SCORE_THRESHOLD,
             evaluate_out=None):  # fmt: skip
    """mAP@0.5 of raw head ``outputs`` (N, cells, 4 + nc) against the scenes' labels, boxes
    mapped back to original pixels. ``evaluate_out(outputs)``: one decoder input per image
    for another head's outputs (YOLOv3's per-head arrays)."""
    preds, truths = [], []
    raws = evaluate_out(outputs) if evaluate_out else [{0: out[None]} for out in outputs]
    for raw, lb, scene in zip(raws, letterboxes, scenes):
        boxes, scores, classes = decoder.decode(raw, threshold, NMS_IOU, 100)
        preds.append(ImageBoxes.make(lb.to_original(boxes), classes, scores))
        truths.append(ImageBoxes.make(scene.boxes, scene.labels))
    return mean_average_precision(preds, truths, 0.5)


def train_detector(
    data_dir: str | os.PathLike,
    model: str,
    output: str | os.PathLike,
    input_size: int | None = None,
    epochs: int = 40,
    batch_size: int = 16,
    val_split: float = 0.2,
    seed: int = 0,
    alpha: float | None = None,
    input_range: tuple[float, float] = (0.0, 1.0),
    learning_rate: float = 2e-3,
    force: bool = False,
    progress: Progress = None,
) -> dict:
    """Train zoo detector ``model`` on ``data_dir``; writes FILE.h5, labels.txt beside it and
    ``<stem>_train.json``; returns the summary (``val_map50``: float mAP@0.5 on the held-out
    split, per-class AP, counts, history)."""
    from edgekit import zoo

    output = Path(output)
    if output.exists() and not force:
        raise EdgekitError(f"{output} already exists", "choose another output or pass --force")
    if output.suffix.lower() not in zoo.MODEL_SUFFIXES:
        raise EdgekitError(f"{output}: unknown model file type", "name it FILE.h5 or FILE.keras")
    entry = zoo.get(model)
    if entry.task != "detect":
        raise EdgekitError(
            f"zoo model {model!r} is not a detector",
            "--task detect needs a detector: "
            + ", ".join(n for n, e in zoo.REGISTRY.items() if e.task == "detect"),
        )
    if entry.decoder not in ("edgekit-anchor-free", "yolov3"):
        raise EdgekitError(
            f"zoo model {model!r} ({entry.decoder} head) cannot be trained by edgekit yet",
            "train the zoo model detector, or train it elsewhere and `edgekit convert` it",
        )
    if not 1 <= epochs <= 10_000 or not 1 <= batch_size <= 4096:
        raise EdgekitError("--epochs and --batch-size must be at least 1 (and sane)")
    if not (np.isfinite(learning_rate) and 0 < learning_rate < 1):
        raise EdgekitError(f"--learning-rate {learning_rate:g} must be in (0, 1)", "e.g. 0.002")
    lo, hi = (float(v) for v in input_range)
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        raise EdgekitError(f"--input-range {lo},{hi}: high must be above low", "e.g. 0,1 or -1,1")
    say = progress or (lambda _msg: None)
    started = time.monotonic()
    data = load_dataset(data_dir)
    names = list(data.names)
    labels_path, labels_text = labels_file(output, names, force)
    train_scenes, val_scenes, val_note = _held_out(data, val_split, seed, say)
    size = int(input_size or entry.default_input)
    hw = (size, size)
    options: dict = {"classes": len(names)}
    if alpha is not None:
        options["alpha"] = alpha
    strides = entry.module_attr("STRIDES")
    say(
        f"{len(train_scenes)} training and {len(val_scenes)} held-out images, "
        f"{len(names)} classes: {', '.join(names)}"
    )

    from edgekit.host.tfenv import load_tensorflow

    load_tensorflow()
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    net = zoo.build(model, input_size=size, **options)
    x_train, lb_train = letterbox_scenes(train_scenes, hw, say)
    # The held-out images too, now: an unreadable one refused after training wasted the run.
    x_val, lb_val = letterbox_scenes(val_scenes, hw) if val_scenes else (None, None)
    if entry.decoder == "yolov3":
        from edgekit.host.train_yolov3 import YoloV3Head

        head = YoloV3Head.for_model(net, hw, len(names), entry.module_attr("ANCHORS"))
        y_train, flip_y, loss = head.keras_targets(
            [lb.to_input(s.boxes) for s, lb in zip(train_scenes, lb_train)],
            [s.labels for s in train_scenes],
        )
        decoder, evaluate_out = head.decoder(), head.evaluate_outputs
        detection = head.detection_block()
    else:
        centres, cell_strides = entry.module_attr("cells")(hw, strides)
        y_train = np.stack(
            [
                make_targets(
                    lb.to_input(s.boxes), s.labels, centres, cell_strides, hw, len(names), strides
                )
                for s, lb in zip(train_scenes, lb_train)
            ]
        )
        perm = tf.constant(flip_permutation(hw, strides))
        swap = tf.constant([2, 1, 0, 3] + list(range(4, 4 + len(names))))

        def flip_y(y):
            return tf.gather(tf.gather(y, perm), swap, axis=1)

        loss = detection_loss(hw)
        decoder = decoder_for(hw, len(names), strides)
        evaluate_out = None
        detection = {"decoder": "edgekit-anchor-free", "params": head_params(strides)}
    from edgekit.host.train_augment import augmented_dataset

    ds = augmented_dataset(x_train, y_train, flip_y, (hi - lo) / 255.0, lo, seed, batch_size)
    steps = epochs * int(np.ceil(len(x_train) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=0.02)
    # No XLA: on a 2-core CPU it compiles for minutes and then runs slower than plain kernels.
    net.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss, jit_compile=False)
    # shuffle=False: the dataset shuffles itself (and Keras warns about the flag otherwise).
    epoch_lines = EpochLines(say, epochs, keys=("loss",))
    history = net.fit(ds, epochs=epochs, verbose=0, shuffle=False, callbacks=[epoch_lines]).history
    hist = {k: [float(v) for v in vals] for k, vals in history.items()}

    result = None
    if val_scenes:
        say(f"measuring mAP@0.5 on {len(val_scenes)} held-out images")
        out = net.predict(images.to_float(x_val, (lo, hi)), batch_size=32, verbose=0)
        result = evaluate(out, lb_val, val_scenes, decoder, evaluate_out=evaluate_out)

    summary_path = output.with_name(f"{output.stem}_train.json")
    curves_path = output.with_name(f"{output.stem}_curves.png")
    zoo.save_model(net, output, force=force)
    atomic.write_text(labels_path, labels_text)
    atomic.write_bytes(curves_path, _loss_png(hist["loss"], f"{model} {size}x{size}"))
    summary = {
        "task": "detect",
        "model": model,
        "options": options,
        "input_size": size,
        "input_range": [lo, hi],
        "classes": names,
        "dataset": {"path": str(data.root), "layout": data.layout, "held_out": val_note},
        "counts": {
            "train": _count(train_scenes, names),
            "val": _count(val_scenes, names),
        },
        "epochs_run": len(hist["loss"]),
        "val_map50": result.map if result else None,
        "val_ap50_per_class": result.to_dict(names)["ap_per_class"] if result else {},
        "detection": detection,
        "history": hist,
        "seconds": round(time.monotonic() - started, 1),
        "outputs": {
            "model": str(output),
            "labels": str(labels_path),
            "curves": str(curves_path),
            "summary": str(summary_path),
        },
    }
    atomic.write_text(summary_path, json.dumps(summary, indent=2) + "\n")
    return summary


def _held_out(data: DetectionDataset, val_split: float, seed: int, say):
    """(train scenes, held-out scenes, note). The dataset's own val split when it has one;
    otherwise a seeded ``val_split`` of the train images (and a warning: those are only held-out
    scenes, not held-out photos)."""
    if data.val:
        return list(data.train), list(data.val), "the dataset's validation split"
    if not 0.0 <= val_split < 1.0 or not np.isfinite(val_split):
        raise EdgekitError(f"--val-split {val_split} must be in [0, 1)")
    scenes = list(data.train)
    if val_split == 0:
        return scenes, [], "none"
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(scenes))
    n = int(round(val_split * len(scenes)))
    if n < 1 or n >= len(scenes):
        raise EdgekitError(f"{len(scenes)} images: too few to hold {val_split:g} out", "add images")
    say(
        f"Warning: {data.root} has no validation split; holding out {n} random images "
        "(they may share photos with the training images)"
    )
    val = set(order[:n].tolist())
    return (
        [s for i, s in enumerate(scenes) if i not in val],
        [scenes[i] for i in sorted(val)],
        (f"{n} random training images (no validation split in the dataset)"),
    )


def _count(scenes, names):
    c = np.zeros(len(names), int)
    for s in scenes:
        np.add.at(c, s.labels, 1)
    return {"images": len(scenes), "objects": {n: int(c[i]) for i, n in enumerate(names)}}


def _loss_png(loss: list[float], title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.5), dpi=100)
    ax = fig.subplots()
    ax.plot(range(1, len(loss) + 1), loss)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (GIoU + QFL)")
    ax.grid(alpha=0.3)
    ax.set_title(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
