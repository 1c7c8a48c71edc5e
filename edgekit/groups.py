"""Near-duplicate groups in an image data set, named by a regex over file names.

Augmented variants of one photo (or frames of one video) are near-duplicates: a split that puts
one variant on each side measures memory, not generalization. ``--group-pattern`` names the
original of each file; training (train/validation) and conversion (calibration/verification) use
the same rule, so a photo held out by one is recognised by the other.
"""

from __future__ import annotations

import re

from edgekit.errors import EdgekitError


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
