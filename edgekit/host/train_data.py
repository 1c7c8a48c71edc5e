"""The class-per-folder dataset of ``edgekit train``: ``DATA_DIR/<class>/*`` listed into
:class:`Sample` records (:func:`scan`), split with near-duplicates kept together (:func:`split`)
and read through the device's pixel path into uint8 (N, H, W, 3) (:func:`load_pixels`).

Split: augmented data sets hold many variants of one photo. A file-level split puts variants of
one photo on both sides and measures memory, not generalization. With ``group_pattern`` (a
regex searched in each file name; in its last match, the first group, or the whole match,
names the original),
whole groups go to validation, per class, until ``val_split`` of the class's files is reached,
always leaving at least one group for training. Without a pattern the split is by file, seeded.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from edgekit import images
from edgekit.errors import EdgekitError
from edgekit.groups import compile_pattern, group_key

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
    for name, _ in found:  # labels.txt holds one name per line: a line break shifts them all
        if name.splitlines() != [name] or not name.strip():
            raise EdgekitError(
                f"{str(root / name)!r}: a class folder named with a line break (or only spaces) "
                "cannot be a label: labels.txt holds one name per line",
                "rename the folder",
            )
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
