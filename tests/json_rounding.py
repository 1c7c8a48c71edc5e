"""Whether a JSON document's numbers are rounded to what they mean (docs/DESIGN.md): times in
ms to 3 decimals (1 us), scores to 4, fps to 2."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

DIGITS = {"_ms": 3, "score": 4, "fps": 2}  # "_ms": every key ending in it


def floats(obj: Any, key: str = "") -> Iterator[tuple[str, float]]:
    """(key, value) of every float in a JSON document (a list's items under its key)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from floats(v, k)
    elif isinstance(obj, list):
        for v in obj:
            yield from floats(v, key)
    elif isinstance(obj, float):
        yield key, obj


def unrounded(doc: Any, keys: tuple[str, ...] = ("_ms", "score", "fps")) -> list:
    """The (key, value) pairs with more decimals than their kind has, of ``keys`` (a key ending
    in ``_ms``, ``score``, ``fps``)."""
    def kind(k: str) -> str | None:
        return "_ms" if k.endswith("_ms") else k if k in DIGITS else None

    return [(k, v) for k, v in floats(doc)
            if kind(k) in keys and v != round(v, DIGITS[kind(k)])]  # fmt: skip
