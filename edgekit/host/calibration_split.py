"""The calibration / verification split of an image folder (:func:`split`), deterministic by
sha1 of each group key.

The image folder is split deterministically into a *verification* side (held out, never shown to
the quantizer) and a *calibration* side. With a group pattern (a regex whose first capture group,
or whole match, names the original photo, as in training), every near-duplicate variant of a
photo lands on the same side, so verification never sees a sibling of a calibration image.
Sides are chosen by hashing the group key (sha1), not by file order or a random seed: the same
folder always splits the same way, on any machine.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from edgekit.errors import EdgekitError
from edgekit.groups import class_group_key, compile_pattern


def _hash(key: str) -> str:
    return hashlib.sha1(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Split:
    """Indices into the file list: ``calib`` and ``verify`` (each in hash order), disjoint."""

    calib: list[int]
    verify: list[int]
    num_verify: int
    groups: int
    verify_groups: int
    ungrouped: int


def split(
    rels: list[str],
    group_pattern: str | None = None,
    num_verify: int | None = None,
    held_out: set[str] | None = None,
) -> Split:
    """Split relative image paths into calibration and held-out verification sides.

    With ``held_out`` (the photos ``edgekit train`` held out, from its split file), exactly
    those are the verification candidates and none of them calibrates: train and convert then
    share one split. Otherwise groups (:func:`edgekit.groups.class_group_key`: the pattern's
    key within each folder) are ordered by sha1 of their key; the first go to verification
    until it holds ``num_verify`` files (default ``min(100, 20%)``), always leaving one group
    for calibration. The verification side is capped at ``num_verify`` files.
    """
    pattern = compile_pattern(group_pattern)
    groups: dict[str, list[int]] = {}
    unmatched = 0
    for i, rel in enumerate(rels):
        key = class_group_key(rel, pattern)
        unmatched += pattern is not None and key is None
        groups.setdefault("file:" + rel if key is None else "group:" + key, []).append(i)
    if pattern is not None and unmatched == len(rels):
        raise EdgekitError(
            f"--group-pattern {group_pattern!r} matches none of the {len(rels)} file names",
            "it is searched in each file name; e.g. (?:apple|bana)[-_](\\d+)",
        )
    if held_out is not None:
        held = [i for i, rel in enumerate(rels) if rel in held_out]
        num_verify = min(100, len(held)) if num_verify is None else num_verify
        taken = set(held)
        calib = sorted(set(range(len(rels))) - taken, key=lambda i: _hash(rels[i]))
        verify = sorted(held, key=lambda i: _hash(rels[i]))[:num_verify]
        held_groups = sum(any(i in taken for i in members) for members in groups.values())
        return Split(calib, verify, num_verify, len(groups), held_groups, unmatched)
    if num_verify is None:
        num_verify = min(100, int(round(0.2 * len(rels))))
    order = sorted(groups, key=_hash)
    verify: list[int] = []
    verify_groups = 0
    for key in order[:-1]:
        if len(verify) >= num_verify:
            break
        verify.extend(groups[key])
        verify_groups += 1
    held = set(verify)
    calib = sorted((i for i in range(len(rels)) if i not in held), key=lambda i: _hash(rels[i]))
    verify = sorted(verify, key=lambda i: _hash(rels[i]))[:num_verify]
    return Split(calib, verify, num_verify, len(groups), verify_groups, unmatched)
