"""Near-duplicate groups in an image data set, named by a regex over file names.

Augmented variants of one photo (or frames of one video) are near-duplicates: a split that puts
one variant on each side measures memory, not generalization. ``--group-pattern`` names the
original of each file; training (train/validation) and conversion (calibration/verification) use
the same rule, so a photo held out by one is recognised by the other.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from edgekit.errors import EdgekitError

SPLIT_VERSION = 1


def compile_pattern(pattern: str | None) -> re.Pattern | None:
    """``--group-pattern`` -> compiled regex (None for no pattern); one-line error if invalid."""
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error as e:
        raise EdgekitError(
            f"--group-pattern {pattern!r}: invalid regex ({e})", "e.g. (?:apple|bana)[-_](\\d+)"
        ) from None


def group_key(file_name: str, pattern: re.Pattern | None) -> str | None:
    """The group of a file: the LAST match of ``pattern`` in its file name (augmenters prepend
    their own counters: in ``augmented_apple_<k>_apple_<n>.png`` "apple_<k>" matches first),
    its first capture group if it has one. None when there is no pattern or it does not match
    (the file is then a group of its own)."""
    if pattern is None:
        return None
    matches = list(pattern.finditer(file_name))
    if not matches:
        return None
    m = matches[-1]
    return m.group(1) if pattern.groups and m.group(1) is not None else m.group(0)


def class_group_key(rel_path: str, pattern: re.Pattern | None) -> str | None:
    """:func:`group_key` of a path relative to the data folder, qualified by its folder (the
    class, in a class-per-folder data set): ``apple/augmented_apple_0_apple_7.png`` and
    ``banana/augmented_banana_0_bana_7.png`` are different photos ("apple/7", "banana/7")
    although the pattern captures "7" in both. Training splits per class, which is the same."""
    folder, _, name = rel_path.rpartition("/")
    key = group_key(name, pattern)
    return None if key is None else f"{folder}/{key}"


def split_file_for(model_path: str | os.PathLike) -> Path:
    """Where ``edgekit train`` records its split for a model: ``<stem>_split.json`` beside a
    model file, ``<name>_split.json`` beside a SavedModel folder."""
    p = Path(model_path)
    stem = p.name if p.is_dir() else p.stem
    return p.with_name(f"{stem}_split.json")


def split_record(data_dir, held_out: list[str], trained: list[str], pattern, seed, val_split):
    """The JSON text of a split file: paths relative to ``data_dir`` (posix), sorted."""
    return json.dumps({
        "version": SPLIT_VERSION,
        "data_dir": str(Path(data_dir).resolve()),
        "group_pattern": pattern,
        "seed": seed,
        "val_split": val_split,
        "held_out": sorted(held_out),
        "trained": sorted(trained),
    }, indent=1) + "\n"  # fmt: skip


def read_split(path: str | os.PathLike) -> dict | None:
    """A split file written by train, or None when there is none. A broken one is an error:
    silently re-splitting would put training photos among the held-out ones."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text("utf-8"))
        held, trained = data["held_out"], data["trained"]
        if not all(isinstance(x, str) for x in [*held, *trained]):
            raise TypeError("paths must be strings")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise EdgekitError(
            f"{path}: not a valid split file ({e})",
            "re-run edgekit train, or delete the file to let convert split on its own",
        ) from None
    return {**data, "held_out": set(held), "trained": set(trained), "path": str(path)}
