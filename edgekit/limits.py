"""Bounds on the numbers users pass, checked before they reach native code or a long loop.

The library checks with :func:`finite` / :func:`integer` (so Python callers get the same
protection as the CLI); the CLI's click types (``edgekit.cli.params``) use the same bounds so
a bad flag fails before any heavy import.
"""

from __future__ import annotations

import math
from typing import Any

from edgekit.errors import EdgekitError

# A thread pool of 10^9 makes the TFLite interpreter segfault; no Pi or workstation we target has
# more than a few dozen cores.
MAX_THREADS = 256
MAX_COUNT = 1_000_000  # runs, warm-up runs, images: enough for any benchmark, ends in finite time
MAX_TIMEOUT_S = 7 * 24 * 3600.0

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def parse_bool(text: str) -> bool:
    """``true/yes/on/1`` -> True, ``false/no/off/0`` -> False; anything else is a ValueError
    (``bypass=no`` must never read as "a non-empty string, so true")."""
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"{text!r} is not a boolean; use true or false")


def finite(name: str, value: Any, lo: float = -math.inf, hi: float = math.inf) -> float:
    """``value`` as a float in [lo, hi], never NaN or infinite; EdgekitError naming ``name``."""
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        raise EdgekitError(f"{name} {value!r}: not a number") from None
    if isinstance(value, bool) or not math.isfinite(v) or not lo <= v <= hi:
        raise EdgekitError(f"{name} {value!r}: must be a finite number{_bounds(lo, hi)}")
    return v


def integer(name: str, value: Any, lo: int, hi: int) -> int:
    """``value`` as an int in [lo, hi]; EdgekitError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise EdgekitError(f"{name} {value!r}: must be an integer in {lo}..{hi}")
    return int(value)


def threads(value: Any, name: str = "--threads") -> int | None:
    """CPU interpreter threads: None (the runtime's default) or 1..MAX_THREADS."""
    return None if value is None else integer(name, value, 1, MAX_THREADS)


def _bounds(lo: float, hi: float) -> str:
    if math.isfinite(lo) and math.isfinite(hi):
        return f" in {lo:g}..{hi:g}"
    if math.isfinite(lo):
        return f" >= {lo:g}"
    if math.isfinite(hi):
        return f" <= {hi:g}"
    return ""
