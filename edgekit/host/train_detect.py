"""``edgekit train --task detect``: train the zoo's anchor-free detector (or its YOLOv3-Tiny,
:mod:`edgekit.host.train_yolov3`) on a YOLO/COCO dataset.

Pixels take the device's path: each image is letterboxed (:func:`edgekit.images.letterbox`,
grey 114) to the model input and mapped to floats in ``input_range``; boxes go through the same
:class:`~edgekit.images.Letterbox` record, so targets and predictions share input pixels.

Targets and loss (FCOS-style cells, generalized IoU + quality focal loss) are in
:mod:`edgekit.host.detect_targets`; letterboxing, the decoder and mAP@0.5 in
:mod:`edgekit.host.detect_eval` (shared with ``convert``); the files written beside the model in
:mod:`edgekit.host.train_outputs`.

The held-out split (``val``) is never trained on; after training its mAP@0.5 is measured with
the same decoder and NMS the device uses (score threshold 0.001 for mAP, as detectors are
benchmarked). Augmentation: horizontal flip (images and targets), brightness/contrast jitter.
"""

from __future__ import annotations

import os
import time

import numpy as np

from edgekit import atomic, images
from edgekit.detect.dataset import DetectionDataset, load_dataset
from edgekit.errors import EdgekitError
from edgekit.host.detect_eval import (  # noqa: F401  (re-exported: convert imported them here)
    LETTERBOX_FILL,
    MAP_SCORE_THRESHOLD,
    NMS_IOU,
    Progress,
    decoder_for,
    evaluate,
    head_params,
    letterbox_scenes,
)
from edgekit.host.detect_targets import (  # noqa: F401  (re-exported)
    CENTRE_RADIUS,
    QUALITY_FLOOR,
    detection_loss,
    flip_permutation,
    level_ranges,
    make_targets,
)
from edgekit.host.train_outputs import (
    EpochLines,
    check_output,
    history_floats,
    labels_file,
    loss_png,
    output_files,
    outputs_record,
    write_summary,
)


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

    output = check_output(output, force)
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
    hist = history_floats(history)

    result = None
    if val_scenes:
        say(f"measuring mAP@0.5 on {len(val_scenes)} held-out images")
        out = net.predict(images.to_float(x_val, (lo, hi)), batch_size=32, verbose=0)
        result = evaluate(out, lb_val, val_scenes, decoder, evaluate_out=evaluate_out)

    curves_path, summary_path = output_files(output)
    zoo.save_model(net, output, force=force)
    atomic.write_text(labels_path, labels_text)
    atomic.write_bytes(curves_path, loss_png(hist["loss"], f"{model} {size}x{size}"))
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
        "outputs": outputs_record(output, labels_path, curves_path, summary_path),
    }
    return write_summary(summary_path, summary)


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
