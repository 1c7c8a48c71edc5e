"""Label files in the formats Coral's tools read.

Accepted line formats: ``N label`` or ``N: label`` (explicit class id, as in Coral's label files)
or ``label`` alone (the id is the line number, counting from 0).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from edgekit.errors import EdgekitError

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


def read_labels(path: str | os.PathLike) -> dict[int, str]:
    """Read a label file into {class id: label}. Raises EdgekitError when unusable."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EdgekitError(f"{path}: no such label file", "check the path") from None
    except (OSError, UnicodeDecodeError) as e:
        raise EdgekitError(f"{path}: cannot read label file ({e})", "use UTF-8 text") from None
    labels = parse_labels(text, where=str(path))
    if not labels:
        raise EdgekitError(f"{path}: label file is empty", "one label per line")
    return labels


def labels_as_list(labels: dict[int, str], num_classes: int) -> list[str]:
    """Dense list of ``num_classes`` labels; ids without a label get their number as text."""
    return [labels.get(i, str(i)) for i in range(num_classes)]
