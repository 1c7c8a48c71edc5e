"""What ``edgekit train`` writes beside a trained model, for classifiers and detectors alike:
the output refused before any training (:func:`check_output`), ``labels.txt``
(:func:`labels_file`), one progress line per epoch (:class:`EpochLines`), the curves PNGs and
``<stem>_train.json`` (:func:`write_summary`). All writes are atomic."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

from edgekit import atomic
from edgekit.errors import EdgekitError


def check_output(output: str | os.PathLike, force: bool) -> Path:
    """``output`` as a Path; refused (one line) when it exists and ``force`` is off, or when it
    is not a model file name (FILE.h5 / FILE.keras)."""
    from edgekit import zoo

    output = Path(output)
    if output.exists() and not force:
        raise EdgekitError(f"{output} already exists", "choose another output or pass --force")
    if output.suffix.lower() not in zoo.MODEL_SUFFIXES:
        raise EdgekitError(f"{output}: unknown model file type", "name it FILE.h5 or FILE.keras")
    return output


def output_files(output: Path) -> tuple[Path, Path]:
    """(``<stem>_curves.png``, ``<stem>_train.json``) beside ``output``."""
    return output.with_name(f"{output.stem}_curves.png"), output.with_name(
        f"{output.stem}_train.json"
    )


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


def history_floats(history: dict, digits: int | None = None) -> dict[str, list[float]]:
    """Keras' ``fit().history`` as plain floats per key (JSON-ready), rounded to ``digits``
    decimals when given."""
    if digits is None:
        return {k: [float(v) for v in vals] for k, vals in history.items()}
    return {k: [round(float(v), digits) for v in vals] for k, vals in history.items()}


def outputs_record(output, labels, curves, summary, split=None) -> dict[str, str]:
    """The summary's ``outputs``: the paths written (``split`` only when there is one)."""
    record = {"model": str(output), "labels": str(labels), "curves": str(curves),
              "summary": str(summary)}  # fmt: skip
    if split is not None:
        record["split"] = str(split)
    return record


def write_summary(path: Path, summary: dict) -> dict:
    """``<stem>_train.json`` written (indented JSON); returns ``summary``."""
    atomic.write_text(path, json.dumps(summary, indent=2) + "\n")
    return summary


def curves_png(hist: dict, title: str, best_epoch: int) -> bytes:
    """Loss and accuracy per epoch (train and validation) as PNG bytes (matplotlib, Agg)."""
    fig = _figure((9, 3.5))
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
    return _png(fig)


def loss_png(loss: list[float], title: str) -> bytes:
    """The loss per epoch as PNG bytes (matplotlib, Agg): a detector's curves."""
    fig = _figure((5, 3.5))
    ax = fig.subplots()
    ax.plot(range(1, len(loss) + 1), loss)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (GIoU + QFL)")
    ax.grid(alpha=0.3)
    ax.set_title(title)
    return _png(fig)


def _figure(size_in: tuple[float, float]):
    """A matplotlib Figure of ``size_in`` inches at 100 dpi, off-screen (Agg: no display)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=size_in, dpi=100)


def _png(fig) -> bytes:
    """``fig`` laid out tight, as PNG bytes."""
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
