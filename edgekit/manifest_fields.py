"""Field-by-field validation of ``edgekit.json`` as read from disk.

A bundle travels (copied to a Pi, edited by hand, damaged on an SD card), so its manifest is
input like any other: every field the runtime uses is checked for type, range and finiteness
before anything reaches the interpreter, and a bad one is named in one line (``input.scale:
must be a finite number >= 0, got NaN``). Model paths must stay inside the bundle.

The checks are a table: :data:`TOP_FIELDS`, :data:`INPUT_FIELDS` and :data:`OUTPUT_FIELDS` map a
key to ``(required, check)`` where ``check(value) -> cleaned value`` raises :class:`Bad`. To add a
field (e.g. detection parameters), add a row. Unknown keys are kept as they are, so a bundle
written by a newer edgekit of the same format still loads.
"""

from __future__ import annotations

import math
from pathlib import PurePosixPath
from typing import Any, Callable

INPUT_DTYPES = ("uint8", "int8", "float32")
MAX_DIM = 65536  # pixels / classes per axis; far above any model the Edge TPU can hold
MAX_LABELS = 1_000_000


class Bad(ValueError):
    """A field's value is unusable; the message says what was expected."""


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def integer(lo: int, hi: int) -> Callable[[Any], int]:
    def check(v: Any) -> int:
        # bool is an int in Python, but `true` is not a number in a manifest.
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise Bad(f"must be an integer in {lo}..{hi}, got {_show(v)}")
        return v

    return check


def number(lo: float = -math.inf, hi: float = math.inf) -> Callable[[Any], float]:
    def check(v: Any) -> float:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        if not ok or not lo <= v <= hi:
            bounds = (
                f" in {lo:g}..{hi:g}"
                if math.isfinite(lo) and math.isfinite(hi)
                else (f" >= {lo:g}" if math.isfinite(lo) else "")
            )
            raise Bad(f"must be a finite number{bounds}, got {_show(v)}")
        return float(v)

    return check


def choice(*options: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if v not in options:
            raise Bad(f"must be one of {', '.join(options)}, got {_show(v)}")
        return v

    return check


def text(max_len: int = 1000) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if not isinstance(v, str) or not v or len(v) > max_len or "\0" in v:
            raise Bad(f"must be a non-empty string of at most {max_len} characters")
        return v

    return check


def optional(inner: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda v: None if v is None else inner(v)


def mapping(v: Any) -> dict:
    """Free-form record (source, tools, calibration...): an object, or null for empty."""
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise Bad(f"must be an object, got {_show(v)}")
    return dict(v)


def shape(min_rank: int, max_rank: int) -> Callable[[Any], tuple[int, ...]]:
    def check(v: Any) -> tuple[int, ...]:
        if not isinstance(v, list) or not min_rank <= len(v) <= max_rank:
            raise Bad(f"must be a list of {min_rank}..{max_rank} sizes, got {_show(v)}")
        dim = integer(1, MAX_DIM)
        try:
            return tuple(dim(x) for x in v)
        except Bad as e:
            raise Bad(f"sizes {e}") from None

    return check


def image_shape(v: Any) -> tuple[int, ...]:
    s = shape(4, 4)(v)
    if s[0] != 1 or s[3] not in (1, 3):
        raise Bad(f"must be [1, height, width, 1 or 3], got {list(s)}")
    return s


def value_range(v: Any) -> tuple[float, float]:
    if not isinstance(v, list) or len(v) != 2:
        raise Bad(f"must be [lo, hi], got {_show(v)}")
    lo, hi = (number(-1e6, 1e6)(x) for x in v)
    if not lo < hi:
        raise Bad(f"lo must be below hi, got {[lo, hi]}")
    return lo, hi


def bundle_path(v: Any) -> str:
    """A file name relative to the bundle directory that stays inside it."""
    if not isinstance(v, str) or not v or "\0" in v or "\\" in v:
        raise Bad(f"must be a file name inside the bundle, got {_show(v)}")
    p = PurePosixPath(v)
    if p.is_absolute() or ".." in p.parts or v.startswith("~"):
        raise Bad(f"must be a file name inside the bundle, not {_show(v)}")
    return v


def models(v: Any) -> dict[str, str | None]:
    if not isinstance(v, dict):
        raise Bad(f"models: must be an object with a 'cpu' file name, got {_show(v)}")
    out: dict[str, str | None] = {}
    for key, name in v.items():
        if name is None and key != "cpu":
            out[key] = None
            continue
        try:
            out[key] = bundle_path(name)
        except Bad as e:
            raise Bad(f"models.{key}: {e}") from None
    if "cpu" not in out:
        raise Bad("models.cpu: missing")
    return out


models.names_itself = True  # type: ignore[attr-defined]


def labels(v: Any) -> tuple[str, ...] | None:
    if v is None:
        return None
    if not isinstance(v, list) or len(v) > MAX_LABELS or not all(isinstance(x, str) for x in v):
        raise Bad("must be a list of strings (one label per class) or null")
    return tuple(v)


INPUT_FIELDS: dict[str, tuple[bool, Callable[[Any], Any]]] = {
    "shape": (True, image_shape),
    "dtype": (True, choice(*INPUT_DTYPES)),
    "scale": (True, number(0.0, 1e9)),
    "zero_point": (True, integer(-(2**31), 2**31 - 1)),
    "color": (False, choice("rgb", "bgr")),
    "range": (False, value_range),
    "resize": (False, choice("stretch", "crop", "pad")),
}
OUTPUT_FIELDS: dict[str, tuple[bool, Callable[[Any], Any]]] = {
    "shape": (True, shape(1, 4)),
    "dtype": (True, choice(*INPUT_DTYPES)),
    "scale": (True, number(0.0, 1e9)),
    "zero_point": (True, integer(-(2**31), 2**31 - 1)),
}


def _record(fields, prefix: str):
    def check(v: Any) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise Bad(f"{prefix[:-1]}: must be an object, got {_show(v)}")
        return _check_fields(v, fields, prefix)

    check.names_itself = True  # its errors already carry the field's full name
    return check


def crop_labels(v: Any) -> tuple[str, ...] | None:
    if v is None:
        return None
    if (not isinstance(v, list) or not v or len(v) > MAX_LABELS
            or not all(isinstance(x, str) and x for x in v)):  # fmt: skip
        raise Bad("must be a non-empty list of detector labels, or null (all)")
    return tuple(v)


CASCADE_FIELDS: dict[str, tuple[bool, Callable[[Any], Any]]] = {
    "classifier": (True, bundle_path),  # the classifier's bundle folder inside this bundle
    "crop_labels": (False, crop_labels),
    "top_k": (False, optional(integer(1, 1000))),
}


def cascade(v: Any) -> dict[str, Any] | None:
    """A detector bundle that carries its crop classifier (``edgekit convert --classify``)."""
    if v is None:
        return None
    if not isinstance(v, dict):
        raise Bad(f"cascade: must be an object, got {_show(v)}")
    unknown = sorted(set(v) - set(CASCADE_FIELDS))
    if unknown:
        raise Bad(f"cascade: unknown key(s) {', '.join(unknown)}")
    out = _check_fields(v, CASCADE_FIELDS, "cascade.")
    if out["classifier"] in (".", "./"):
        raise Bad("cascade.classifier: must be a folder inside the bundle, not the bundle itself")
    return out


cascade.names_itself = True  # type: ignore[attr-defined]


TOP_FIELDS: dict[str, tuple[bool, Callable[[Any], Any]]] = {
    "format_version": (False, integer(0, 1_000_000)),
    "name": (True, text(1000)),
    "input": (True, _record(INPUT_FIELDS, "input.")),
    "output": (True, _record(OUTPUT_FIELDS, "output.")),
    "models": (True, models),
    "labels": (False, labels),
    "source": (False, mapping),
    "tools": (False, mapping),
    "calibration": (False, mapping),
    "verification": (False, mapping),
    "compile": (False, optional(mapping)),
    "created": (False, optional(text(100))),
    "cascade": (False, cascade),
}

_INT_RANGES = {"uint8": (0, 255), "int8": (-128, 127)}


def _check_fields(d: dict, fields, prefix: str) -> dict[str, Any]:
    out = dict(d)
    for key, (required, check) in fields.items():
        name = f"{prefix}{key}"
        if key not in d:
            if required:
                raise Bad(f"{name}: missing")
            continue
        try:
            out[key] = check(d[key])
        except Bad as e:
            raise Bad(str(e) if getattr(check, "names_itself", False) else f"{name}: {e}") from None
    return out


def check_manifest(d: Any) -> dict[str, Any]:
    """Validated copy of a decoded manifest; raises :class:`Bad` naming the first bad field."""
    if not isinstance(d, dict):
        raise Bad("the manifest must be a JSON object")
    out = _check_fields(d, TOP_FIELDS, "")
    for part in ("input", "output"):
        spec = out[part]
        lo_hi = _INT_RANGES.get(spec["dtype"])
        if lo_hi and not lo_hi[0] <= spec["zero_point"] <= lo_hi[1]:
            raise Bad(f"{part}.zero_point: {spec['zero_point']} is outside {spec['dtype']}")
        if spec["dtype"] != "float32" and spec["scale"] == 0.0:
            raise Bad(f"{part}.scale: an integer tensor needs a scale above 0")
    return out
