"""``edgekit train``: train a zoo model on a class-per-folder image dataset."""

from __future__ import annotations

import math

import click

from edgekit.cli.common import echo_json
from edgekit.cli.params import Finite, count
from edgekit.errors import EdgekitError


def _parse_range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise EdgekitError(f"--input-range {text!r}", "use LO,HI, e.g. 0,1 or -1,1") from None
    if not all(math.isfinite(v) and abs(v) <= 1e6 for v in (lo, hi)):
        raise EdgekitError(f"--input-range {text!r}: both numbers must be finite (|x| <= 1e6)")
    return lo, hi


@click.command("train")
@click.argument("data_dir", type=click.Path(file_okay=False))
@click.option(
    "--task",
    type=click.Choice(["classify", "detect"]),
    default="classify",
    show_default=True,
    help="detect: DATA_DIR is a YOLO txt (images/, labels/) or COCO json (annotations/) "
    "dataset with train and val splits; --model detector or yolov3_tiny.",
)
@click.option("--model", "model_name", required=True, help="Zoo model (see `edgekit zoo list`).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="FILE.h5")
@click.option(
    "--input-size",
    type=click.IntRange(8, 16384),
    help="Input height = width (default: the model's).",
)
@click.option(
    "--epochs", type=count(1, 100_000), default=20, show_default=True, help="Maximum epochs."
)
@click.option("--batch-size", type=count(1, 65_536), default=16, show_default=True)
@click.option(
    "--val-split",
    type=Finite(0, 1, max_open=True),
    default=0.25,
    show_default=True,
    help="Held-out fraction per class.",
)
@click.option(
    "--group-pattern",
    metavar="REGEX",
    help="Regex on file names; its first group names the original photo, and all files of one "
    "original go to the same side of the split. E.g. '(?:apple|bana)[-_](\\d+)'.",
)
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
@click.option("--alpha", type=Finite(0, 4, min_open=True), help="Width multiplier (mobilenet_v1).")
@click.option(
    "--input-range", default="0,1", show_default=True, help="Float range pixels 0..255 map to."
)
@click.option(
    "--patience",
    type=count(0, 100_000),
    default=5,
    show_default=True,
    help="Early stopping: epochs without validation-loss gain (0: off).",
)
@click.option("--dropout", type=Finite(0, 1, max_open=True), default=0.3, show_default=True)
@click.option(
    "--learning-rate",
    type=Finite(0, 10, min_open=True),
    default=1e-3,
    show_default=True,
    help="Adam.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def train(
    data_dir,
    task,
    model_name,
    output,
    input_size,
    epochs,
    batch_size,
    val_split,
    group_pattern,
    seed,
    alpha,
    input_range,
    patience,
    dropout,
    learning_rate,
    force,
    as_json,
) -> None:
    """Train --model on DATA_DIR (one sub-folder of images per class; with --task detect a YOLO
    or COCO detection dataset) and save FILE.h5, labels.txt, FILE_curves.png and
    FILE_train.json."""
    if task == "detect":
        summary = _train_detector(
            data_dir, model_name, output, input_size, epochs, batch_size, val_split, seed, alpha,
            input_range, learning_rate, force,
        )  # fmt: skip
        lines = _detector_lines(summary)
    else:
        from edgekit.host.train import train as run_training

        summary = run_training(
            data_dir,
            model_name,
            output,
            input_size=input_size,
            epochs=epochs,
            batch_size=batch_size,
            val_split=val_split,
            group_pattern=group_pattern,
            seed=seed,
            alpha=alpha,
            input_range=_parse_range(input_range),
            patience=patience,
            dropout=dropout,
            learning_rate=learning_rate,
            force=force,
            progress=_progress,
        )
        lines = _classifier_lines(summary)
    if as_json:
        echo_json(summary)
        return
    for line in lines:
        click.echo(line)
    for kind, path in summary["outputs"].items():
        click.echo(f"  {kind:<8} {path}")


def _progress(msg: str) -> None:
    click.echo(msg, err=True)


def _trained(summary: dict) -> str:
    return f"Trained {summary['model']} {summary['input_size']}x{summary['input_size']} on "


def _classifier_lines(summary: dict) -> list[str]:
    counts = summary["counts"]
    n_train = sum(c["train"] for c in counts.values())
    n_val = sum(c["val"] for c in counts.values())
    lines = [
        f"{_trained(summary)}{n_train} images, held out {n_val}; kept epoch "
        f"{summary['best_epoch']} of {summary['epochs_run']} ({summary['seconds']} s)"
    ]
    if summary["val_accuracy"] is not None:
        per = ", ".join(
            f"{k} {v:.3f}" for k, v in summary["val_accuracy_per_class"].items() if v is not None
        )
        lines.append(f"Held-out accuracy: {summary['val_accuracy']:.3f} ({per})")
    if summary["unreadable"]:
        lines.append(f"Skipped {len(summary['unreadable'])} unreadable image(s)")
    return lines


def _train_detector(
    data_dir, model_name, output, input_size, epochs, batch_size, val_split, seed, alpha,
    input_range, learning_rate, force,
) -> dict:  # fmt: skip
    from edgekit.host.train_detect import train_detector

    ctx = click.get_current_context()

    def given(name: str) -> bool:
        return ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT

    for name in ("group_pattern", "patience", "dropout"):
        if given(name):
            flag = "--" + name.replace("_", "-")
            raise EdgekitError(
                f"{flag} is for classification",
                "a detection dataset carries its own train/val split (compose_detection_dataset.py "
                "splits by original photo); drop the option",
            )
    # The detector's own defaults (train_detector) unless the user chose a value.
    chosen = {
        k: v for k, v in (("epochs", epochs), ("learning_rate", learning_rate),
                          ("val_split", val_split))
        if given(k)
    }  # fmt: skip
    return train_detector(
        data_dir,
        model_name,
        output,
        input_size=input_size,
        batch_size=batch_size,
        seed=seed,
        alpha=alpha,
        input_range=_parse_range(input_range),
        force=force,
        progress=_progress,
        **chosen,
    )


def _detector_lines(summary: dict) -> list[str]:
    counts = summary["counts"]
    lines = [
        f"{_trained(summary)}{counts['train']['images']} images, held out "
        f"{counts['val']['images']} ({summary['dataset']['held_out']}); "
        f"{summary['epochs_run']} epochs ({summary['seconds']} s)"
    ]
    if summary["val_map50"] is not None:
        per = ", ".join(f"{k} {v:.3f}" for k, v in summary["val_ap50_per_class"].items())
        lines.append(f"Held-out mAP@0.5: {summary['val_map50']:.3f} ({per})")
    return lines
