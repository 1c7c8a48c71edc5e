"""What an Ultralytics export embeds in its TFLite metadata: the metadata dict (description,
names, imgsz, end2end...) and the class names in it. Literal parsing only, never code."""

from __future__ import annotations

import ast


def embedded_metadata(info) -> dict:
    """The metadata dict an Ultralytics export embeds (a Python dict literal with ``'names'`` in
    an associated file of the TFLite metadata: description, names, imgsz, end2end...), else {}.
    Never evaluates code: literal_eval only, and a malformed or oversized file is ignored."""
    try:
        files = info.associated_files()
    except Exception:  # malformed metadata is no reason to refuse the model
        return {}
    for data in files.values():
        if b"'names'" not in data[:1_000_000]:
            continue
        try:
            meta = ast.literal_eval(data.decode("utf-8"))
        except (ValueError, SyntaxError, TypeError, UnicodeDecodeError, MemoryError,
                RecursionError):  # fmt: skip
            continue
        if isinstance(meta, dict):
            return meta
    return {}


def embedded_labels(info) -> dict[int, str]:
    """Class names an Ultralytics export embeds (:func:`embedded_metadata`), else {}."""
    try:
        return {int(k): str(v) for k, v in embedded_metadata(info)["names"].items()}
    except (KeyError, TypeError, ValueError, AttributeError):
        return {}
