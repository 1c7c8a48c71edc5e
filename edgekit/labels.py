"""Label files in the formats Coral's tools read.

Accepted line formats: ``N label`` or ``N: label`` (explicit class id, as in Coral's label files)
or ``label`` alone (the id is the line number, counting from 0).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from edgekit.errors import EdgekitError
from edgekit.safeio import read_text

_SPLIT = re.compile(r"[:\s]+")


def parse_labels(text: str, where: str = "labels") -> dict[int, str]:
    """Parse label text into {class id: label}, with the rule of Coral's ``read_label_file``:
    a line ``<digits><':' or space><label>`` names its id, any other line's id is its line number
    (blank lines are skipped but still counted)."""
    out: dict[int, str] = {}
    for row, line in enumerate(text.splitlines()):
        line = line.strip()
        if not line:
            continue
        parts = _SPLIT.split(line, maxsplit=1)
        if len(parts) == 2 and parts[0].isdigit():
            cid, label = int(parts[0]), parts[1].strip()
        else:
            cid, label = row, line
        if cid in out:
            raise EdgekitError(f"{where}: class id {cid} appears twice", "fix the label file")
        out[cid] = label
    return out


LABELS_LIMIT = 4 * 1024 * 1024  # bytes; ImageNet-21k's 21,841 labels take about 0.5 MB


def read_labels(path: str | os.PathLike) -> dict[int, str]:
    """Read a label file into {class id: label}. Raises EdgekitError when unusable (not a
    regular file, larger than 4 MiB, not UTF-8, no labels). A UTF-8 byte-order mark is dropped."""
    path = Path(path)
    text = read_text(path, "label", LABELS_LIMIT)
    labels = parse_labels(text, where=str(path))
    if not labels:
        raise EdgekitError(f"{path}: label file is empty", "one label per line")
    return labels


def mismatch(labels: dict[int, str], num_classes: int) -> str | None:
    """Why ``labels`` cannot name the ``num_classes`` outputs of a model, or None if they can.

    Blank lines count as class ids (Coral's rule), so a file with as many labels as classes can
    still reach past the last class: the message then says so instead of "N labels for N
    classes"."""
    if len(labels) == num_classes and max(labels) < num_classes:
        return None
    if len(labels) == num_classes:
        return (
            f"{len(labels)} labels, but their ids go up to {max(labels)} for {num_classes} "
            "model outputs (ids 0.."
            f"{num_classes - 1}; a blank line or a skipped number counts as a class)"
        )
    return f"{len(labels)} labels for {num_classes} model outputs"


def labels_as_list(labels: dict[int, str], num_classes: int) -> list[str]:
    """Dense list of ``num_classes`` labels; ids without a label get their number as text."""
    return [labels.get(i, str(i)) for i in range(num_classes)]
