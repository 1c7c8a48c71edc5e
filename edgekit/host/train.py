"""Class-per-folder training of a zoo model, with a split that keeps near-duplicates together.

The classic recipe: ``DATA_DIR/<class>/*.png`` (class names sorted = label ids), images read
with the SAME pixel path the converter calibrates with and the device classifies with
(:func:`edgekit.images.load_rgb` -> :func:`edgekit.images.prepare` (stretch resize) ->
:func:`edgekit.images.to_float` in ``input_range``), data augmentation, dropout, early stopping
on the validation loss (best weights restored).

Split: augmented data sets hold many variants of one photo. A file-level split puts variants of
one photo on both sides and measures memory, not generalization. With ``group_pattern`` (a
regex searched in each file name; in its last match, the first group, or the whole match,
names the original),
whole groups go to validation, per class, until ``val_split`` of the class's files is reached,
always leaving at least one group for training. Without a pattern the split is by file, seeded.

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

import io
import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from edgekit import atomic, images, limits
from edgekit.errors import EdgekitError
from edgekit.groups import compile_pattern, group_key, split_file_for, split_record
from edgekit.host import memory

Progress = Optional[Callable[[str], None]]


@dataclass(frozen=True)
class Sample:
    """One image file: ``label`` is the class id, ``group`` the original photo it came from."""

    path: Path
    label: int
    group: str


def scan(data_dir: str | os.PathLike, group_pattern: str | None = None):
    """List ``DATA_DIR/<class>/`` images. Returns (class names, samples, unmatched file count).

    Files a ``group_pattern`` does not match form a group of their own.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise EdgekitError(
            f"{root}: no such dataset folder", "pass DATA_DIR with one folder per class"
        )
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    found = [(d.name, images.find_images(d)) for d in class_dirs]
    found = [(name, files) for name, files in found if files]
    if not found:
        raise EdgekitError(
            f"{root}: no images found",
            "put images in one sub-folder per class (DATA_DIR/cat/*.jpg)",
        )
    if len(found) < 2:
        raise EdgekitError(
            f"{root}: only one class ({found[0][0]}) has images", "a classifier needs 2+ classes"
        )
    regex = compile_pattern(group_pattern)
    samples, unmatched = [], 0
    for label, (_, files) in enumerate(found):
        for f in files:
            key = group_key(f.name, regex)
            unmatched += regex is not None and key is None
            samples.append(Sample(f, label, key if key is not None else str(f.relative_to(root))))
    if regex is not None and unmatched == len(samples):
        raise EdgekitError(
            f"--group-pattern {group_pattern!r} matches none of the {len(samples)} file names",
            "it is searched in each file name; e.g. (?:apple|bana)[-_](\\d+)",
        )
    return [name for name, _ in found], samples, unmatched


def split(samples: list[Sample], val_split: float, seed: int = 0):
    """Per class, move whole groups to validation until ``val_split`` of the class's files.

    Returns (train, val, {class id: sorted validation group names}). Deterministic for a seed.
    """
    if not 0.0 <= val_split < 1.0:
        raise EdgekitError(f"--val-split {val_split} must be in [0, 1)")
    rng = random.Random(seed)
    train, val, val_groups = [], [], {}
    for label in sorted({s.label for s in samples}):
        members = [s for s in samples if s.label == label]
        groups: dict[str, list[Sample]] = {}
        for s in members:
            groups.setdefault(s.group, []).append(s)
        order = sorted(groups)
        rng.shuffle(order)
        target = val_split * len(members)
        chosen: list[str] = []
        taken = 0
        # Keep at least one group for training; stop once the class's share is reached.
        for g in order[:-1]:
            if taken >= target or val_split == 0:
                break
            chosen.append(g)
            taken += len(groups[g])
        if val_split > 0 and not chosen:
            raise EdgekitError(
                f"class {label} has a single group: nothing can be held out",
                "add photos, or fix --group-pattern so that it tells originals apart",
            )
        val_groups[label] = sorted(chosen)
        for g in order:
            (val if g in chosen else train).extend(groups[g])
    return train, val, val_groups


def load_pixels(
    samples: list[Sample],
    size: tuple[int, int],
    progress: Progress = None,
    classes: list[str] | None = None,
    root: Path | None = None,
):
    """Read and resize images -> (uint8 array (N, H, W, 3), kept samples, unreadable paths).

    Refuses, before any training, a dataset with no readable image and, given ``classes`` (names
    by label) and ``root``, a class folder whose images are all unreadable: it would be trained
    as a class with no examples."""
    arrays, kept, bad, why = [], [], [], {}
    for s in samples:
        try:
            arrays.append(images.prepare(images.load_rgb(s.path), size))
            kept.append(s)
        except EdgekitError as e:
            bad.append(str(s.path))
            why.setdefault(s.label, f"{s.path}: {e.message}")
    if not kept:
        where = f"{root}: " if root is not None else ""
        example = why[samples[0].label]
        raise EdgekitError(
            f"{where}none of the {len(samples)} images could be read (e.g. {example})",
            "are they images? replace them with readable image files",
        )
    if classes is not None:
        readable = {s.label for s in kept}
        for label, name in enumerate(classes):
            if label not in readable:
                total = sum(s.label == label for s in samples)
                folder = root / name if root is not None else name
                raise EdgekitError(
                    f"{folder}: all {total} image(s) of class {name!r} are unreadable "
                    f"(e.g. {why[label]}); it would be trained with no examples",
                    "replace them with readable images, or move the folder out of the dataset",
                )
    if bad and progress:
        progress(f"skipped {len(bad)} unreadable image(s), e.g. {bad[0]}")
    return np.stack(arrays), kept, bad


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

    output = Path(output)
    if output.exists() and not force:
        raise EdgekitError(f"{output} already exists", "choose another output or pass --force")
    if output.suffix.lower() not in zoo.MODEL_SUFFIXES:
        raise EdgekitError(f"{output}: unknown model file type", "name it FILE.h5 or FILE.keras")
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
    hist = {k: [round(float(v), 4) for v in vals] for k, vals in history.items()}

    val_acc, per_class = None, {}
    if val_s:
        pred = np.argmax(net.predict(x_val, batch_size=64, verbose=0), axis=-1)
        val_acc = round(float(np.mean(pred == y_val)), 4)
        for c, name in enumerate(classes):
            mask = y_val == c
            per_class[name] = round(float(np.mean(pred[mask] == c)), 4) if mask.any() else None
    # The epoch whose weights were kept (EarlyStopping restores it), counting from 1.
    best_epoch = stopper.best_epoch + 1 if stopper is not None else len(hist["loss"])

    curves_path = output.with_name(f"{output.stem}_curves.png")
    summary_path = output.with_name(f"{output.stem}_train.json")
    split_path = split_file_for(output)
    zoo.save_model(net, output, force=force)
    atomic.write_text(labels_path, labels_text)
    # The split, for `edgekit convert`: it verifies on exactly these held-out photos.
    root = Path(data_dir)
    rel = lambda s: s.path.relative_to(root).as_posix()  # noqa: E731
    atomic.write_text(split_path, split_record(
        root, [rel(s) for s in val_s], [rel(s) for s in train_s], group_pattern, seed, val_split
    ))  # fmt: skip
    atomic.write_bytes(curves_path, _curves_png(hist, f"{model} {size}x{size}", best_epoch))
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
        "outputs": {
            "model": str(output),
            "labels": str(labels_path),
            "curves": str(curves_path),
            "summary": str(summary_path),
            "split": str(split_path),
        },
    }
    atomic.write_text(summary_path, json.dumps(summary, indent=2) + "\n")
    return summary


def labels_file(output: Path, names, force: bool) -> tuple[Path, str]:
    """The labels.txt beside ``output`` and its text (``"<id> <name>"`` lines), refused before
    any training when the file already holds another model's labels and ``force`` is off."""
    labels_path = output.parent / "labels.txt"
    labels_text = "".join(f"{i} {name}\n" for i, name in enumerate(names))
    if labels_path.is_file() and not force and labels_path.read_text("utf-8") != labels_text:
        raise EdgekitError(
            f"{labels_path} already holds other labels (another model's?)",
            "train into another folder, or pass --force to replace it",
        )
    return labels_path, labels_text


class EpochLines:
    """Keras callback reporting one line per epoch through ``say`` (created lazily): the epoch,
    then each of ``keys`` that Keras logged, to 3 decimals."""

    def __new__(cls, say, epochs, keys=("loss", "accuracy", "val_loss", "val_accuracy")):
        import keras

        class _CB(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                parts = [f"epoch {epoch + 1}/{epochs}"]
                for key in keys:
                    if key in logs:
                        parts.append(f"{key} {float(logs[key]):.3f}")
                say("  ".join(parts))

        return _CB()


def _curves_png(hist: dict, title: str, best_epoch: int) -> bytes:
    """Loss and accuracy per epoch (train and validation) as PNG bytes (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.5), dpi=100)
    epochs = range(1, len(hist["loss"]) + 1)
    for ax, key in zip(fig.subplots(1, 2), ("loss", "accuracy")):
        ax.plot(epochs, hist[key], label="train")
        if f"val_{key}" in hist:
            ax.plot(epochs, hist[f"val_{key}"], label="validation")
        ax.axvline(best_epoch, color="grey", linestyle=":", label="kept")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
