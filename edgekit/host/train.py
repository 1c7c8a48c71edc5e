"""Class-per-folder training of a zoo model, with a split that keeps near-duplicates together.

The classic recipe: ``DATA_DIR/<class>/*.png`` (class names sorted = label ids), images read
with the SAME pixel path the converter calibrates with and the device classifies with
(:func:`edgekit.images.load_rgb` -> :func:`edgekit.images.prepare` (stretch resize) ->
:func:`edgekit.images.to_float` in ``input_range``), data augmentation, dropout, early stopping
on the validation loss (best weights restored).

The dataset (:mod:`edgekit.host.train_data`): ``scan`` lists ``DATA_DIR/<class>/`` into samples,
``split`` moves whole groups of near-duplicates (``group_pattern``) to validation, per class,
``load_pixels`` reads them; this module trains and writes the outputs
(:mod:`edgekit.host.train_outputs`).

Augmentation layers (flip, shift, rotation, zoom) sit in a training-only wrapper in front of the
model and are not saved: they are no Edge TPU ops and would not convert to int8.

Outputs (all atomic): ``FILE.h5`` (or ``.keras``), ``labels.txt`` beside it, ``<stem>_curves.png``
(loss and accuracy per epoch), ``<stem>_train.json`` (the summary :func:`train` returns) and
``<stem>_split.json`` (which photos trained and which were held out: ``edgekit convert`` reads
it and verifies on exactly the held-out ones, so they are never trained or calibrated on).
Note: the held-out accuracy is measured on the validation groups, which early stopping also uses
to pick the epoch (``patience=0`` trains a fixed number of epochs and leaves them untouched).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from edgekit import atomic, images, limits
from edgekit.errors import EdgekitError
from edgekit.groups import split_file_for, split_record
from edgekit.host import memory
from edgekit.host.train_data import (  # noqa: F401  (re-exported: tests and scripts use them here)
    Progress,
    Sample,
    load_pixels,
    scan,
    split,
)
from edgekit.host.train_outputs import (
    EpochLines,
    check_output,
    curves_png,
    history_floats,
    labels_file,
    output_files,
    outputs_record,
    write_summary,
)


def augmentation(seed: int = 0):
    """Training-time augmentation: horizontal flip, +-10% shift, +-0.05 turn, +-10% zoom."""
    import keras

    layers = keras.layers
    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomTranslation(0.1, 0.1, fill_mode="reflect", seed=seed),
            layers.RandomRotation(0.05, fill_mode="reflect", seed=seed),
            layers.RandomZoom(0.1, fill_mode="reflect", seed=seed),
        ],
        name="augment",
    )


def train(
    data_dir: str | os.PathLike,
    model: str,
    output: str | os.PathLike,
    input_size: int | None = None,
    epochs: int = 20,
    batch_size: int = 16,
    val_split: float = 0.25,
    group_pattern: str | None = None,
    seed: int = 0,
    alpha: float | None = None,
    input_range: tuple[float, float] = (0.0, 1.0),
    patience: int = 5,
    dropout: float = 0.3,
    learning_rate: float = 1e-3,
    force: bool = False,
    progress: Progress = None,
) -> dict:
    """Train zoo model ``model`` on ``data_dir`` and write the outputs (see module docstring).

    Returns the summary: classes, per-class counts (train/val), validation groups, epochs run,
    best epoch, ``val_accuracy`` (float model on the held-out groups, None if ``val_split`` is
    0), per-class validation accuracy, history, output paths and settings.
    """
    from edgekit import zoo

    output = check_output(output, force)
    atomic.check_destination(output)  # an unwritable output is found now, not after training
    entry = zoo.get(model)
    if entry.default_classes is None:
        raise EdgekitError(f"zoo model {model!r} is not a classifier", "pick another --model")
    if entry.task != "classify":
        raise EdgekitError(f"zoo model {model!r} is a detector", "train it with --task detect")
    if epochs < 1 or batch_size < 1:
        raise EdgekitError("--epochs and --batch-size must be at least 1")
    lo, hi = (limits.finite("--input-range", v, -1e6, 1e6) for v in input_range)
    limits.finite("--learning-rate", learning_rate, 1e-12, 10.0)
    limits.finite("--dropout", dropout, 0.0, 0.999)
    limits.finite("--val-split", val_split, 0.0, 0.999)
    if alpha is not None:
        limits.finite("--alpha", alpha, 1e-6, 4.0)
    if not hi > lo:
        raise EdgekitError(f"--input-range {lo},{hi}: high must be above low", "e.g. 0,1 or -1,1")
    say = progress or (lambda _msg: None)
    started = time.monotonic()

    classes, samples, unmatched = scan(data_dir, group_pattern)
    labels_path, labels_text = labels_file(output, classes, force)
    size = int(input_size or entry.default_input)
    options: dict = {"classes": len(classes)}
    if alpha is not None:
        options["alpha"] = alpha
    if "dropout" in entry.options():
        options["dropout"] = dropout
    say(f"{len(samples)} images in {len(classes)} classes: {', '.join(classes)}")
    if size > entry.default_input:
        from edgekit.host.tfenv import load_tensorflow

        load_tensorflow()  # the estimate builds the design at small sizes
    memory.check_training(entry, size, len(samples), batch_size, options)  # before any pixel
    pixels, samples, unreadable = load_pixels(samples, (size, size), say, classes, Path(data_dir))
    index = {s.path: i for i, s in enumerate(samples)}
    train_s, val_s, val_groups = split(samples, val_split, seed)

    from edgekit.host.tfenv import load_tensorflow

    load_tensorflow()  # first import: quietly (no oneDNN/absl banner on stderr)
    import keras

    keras.utils.set_random_seed(seed)
    net = zoo.build(model, input_size=size, **options)

    def arrays(subset):
        idx = [index[s.path] for s in subset]
        x = images.to_float(pixels[idx], (lo, hi))
        return x, np.array([s.label for s in subset], dtype=np.int32)

    x_train, y_train = arrays(train_s)
    x_val, y_val = arrays(val_s) if val_s else (None, None)
    inp = keras.Input(shape=net.input_shape[1:], name="image")
    # Augmentation acts in [0, 1]-agnostic geometry only, so it works for any input range.
    trainer = keras.Model(inp, net(augmentation(seed)(inp)), name=f"train_{net.name}")
    trainer.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    callbacks = [EpochLines(say, epochs)]
    stopper = None
    if val_s and patience > 0:
        stopper = keras.callbacks.EarlyStopping(
            monitor="val_loss",
            # Improvements below 0.001 in cross-entropy are noise on a small validation set.
            min_delta=1e-3,
            patience=patience,
            restore_best_weights=True,
        )
        callbacks.append(stopper)
    history = trainer.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=epochs,
        validation_data=(x_val, y_val) if val_s else None,
        callbacks=callbacks,
        shuffle=True,
        verbose=0,
    ).history
    # 4 decimals: Keras' float32 logs printed in full read 0.4545454680919647 in the summary
    hist = history_floats(history, digits=4)

    val_acc, per_class = None, {}
    if val_s:
        pred = np.argmax(net.predict(x_val, batch_size=64, verbose=0), axis=-1)
        val_acc = round(float(np.mean(pred == y_val)), 4)
        for c, name in enumerate(classes):
            mask = y_val == c
            per_class[name] = round(float(np.mean(pred[mask] == c)), 4) if mask.any() else None
    # The epoch whose weights were kept (EarlyStopping restores it), counting from 1.
    best_epoch = stopper.best_epoch + 1 if stopper is not None else len(hist["loss"])

    curves_path, summary_path = output_files(output)
    split_path = split_file_for(output)
    zoo.save_model(net, output, force=force)
    atomic.write_text(labels_path, labels_text)
    # The split, for `edgekit convert`: it verifies on exactly these held-out photos.
    root = Path(data_dir)
    rel = lambda s: s.path.relative_to(root).as_posix()  # noqa: E731
    atomic.write_text(split_path, split_record(
        root, [rel(s) for s in val_s], [rel(s) for s in train_s], group_pattern, seed, val_split
    ))  # fmt: skip
    atomic.write_bytes(curves_path, curves_png(hist, f"{model} {size}x{size}", best_epoch))
    summary = {
        "model": model,
        "options": options,
        "input_size": size,
        "input_range": [lo, hi],
        "classes": classes,
        "counts": {
            name: {
                "train": sum(s.label == c for s in train_s),
                "val": sum(s.label == c for s in val_s),
            }
            for c, name in enumerate(classes)
        },
        "group_pattern": group_pattern,
        "ungrouped_files": unmatched,
        "val_groups": {classes[c]: g for c, g in val_groups.items()},
        "unreadable": unreadable,
        "epochs_run": len(hist["loss"]),
        "best_epoch": best_epoch,
        "val_accuracy": val_acc,
        "val_accuracy_per_class": per_class,
        "history": hist,
        "seconds": round(time.monotonic() - started, 1),
        "outputs": outputs_record(output, labels_path, curves_path, summary_path, split_path),
    }
    return write_summary(summary_path, summary)
