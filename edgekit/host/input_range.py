"""The input range is decided, never silently assumed.

A model only works on the float range it was trained on: pixel ``p`` in 0..255 becomes
``lo + p * (hi - lo) / 255``. Calibrating and verifying on the wrong range still gives a
"verified" int8 model (float and int8 agree on the same wrong input) whose accuracy is gone. So:

1. The model says so where it can (:func:`model_hint`): the loader's ``PreprocessingHint``
   (a Rescaling/Normalization layer at the input means raw 0..255 pixels; a Teachable Machine
   export means -1..1 with a 224 centre crop; keras.applications structures), else the range
   ``edgekit train`` recorded in ``<stem>_train.json`` beside the model.
2. With labelled images (a class-per-folder ``--calib`` whose folders are the model's classes),
   the FLOAT model's top-1 accuracy is measured under 0..1, -1..1 and 0..255 (and the hint's or
   the user's range if another) on the held-out images, topped up with calibration images so
   every class has its share of :data:`MEASURE_MIN` (:func:`measure`). The accuracy is
   class-balanced (mean per-class recall): a wrong range often makes a model answer one class
   for everything, which plain accuracy rewards when the held-out side is mostly that class
   (seen on apple-banana, whose sha1 split can hold out apples only). Images are decoded once;
   the float model runs in batches; its outputs on the held-out images under the chosen range
   are reused by verification.
3. :func:`decide`: an explicit ``--input-range`` is used, unless its accuracy is near chance
   while another range's is high: then the conversion stops naming the better range
   (``--keep-input-range`` keeps the user's anyway, with a warning). Without one, the measured
   best is used when it is clearly above chance (ties go to the model's hint, then 0..1), else
   the model's hint, else 0..1; the reason is always recorded.

"Near chance" and "high" are relative to chance c = 1 / classes: accuracy <= c + 0.25 (1 - c)
and >= c + 0.75 (1 - c) (two classes: <= 62.5 %, >= 87.5 %). Fewer than :data:`MIN_DECIDE`
labelled images, or images of a single class, never decide anything (only reported).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.images import to_float

CANDIDATES = ((0.0, 1.0), (-1.0, 1.0), (0.0, 255.0))
DEFAULT = (0.0, 1.0)
MEASURE_MIN = 60  # labelled images measured at least (held-out first, then calibration ones)
MIN_DECIDE = 10  # fewer labelled images than this decide nothing
Range = tuple[float, float]


def fmt(r: Range) -> str:
    """(-1.0, 1.0) -> '-1..1' (how ranges are shown)."""
    return f"{r[0]:g}..{r[1]:g}"


def arg(r: Range) -> str:
    """(-1.0, 1.0) -> '-1,1' (how --input-range takes it)."""
    return f"{r[0]:g},{r[1]:g}"


@dataclass(frozen=True)
class Hint:
    """What the model (or its training record) says about its input: ``range`` (lo, hi),
    ``resize`` (stretch|crop|pad or None), ``size`` (height, width or None), ``reason``."""

    range: Optional[Range]
    reason: str
    resize: Optional[str] = None
    size: Optional[tuple[int, int]] = None


def model_hint(loaded, model_path: Path) -> Hint | None:
    """The loader's preprocessing hint, else ``edgekit train``'s record beside the model."""
    h = getattr(loaded, "preprocessing", None)
    if h is not None:
        rng = getattr(h, "input_range", None)
        size = getattr(h, "size", None)
        return Hint(
            range=(float(rng[0]), float(rng[1])) if rng is not None else None,
            reason=str(getattr(h, "reason", "") or "the model's structure"),
            resize=getattr(h, "resize", None),
            size=tuple(int(v) for v in size) if size else None,
        )
    stem = model_path.name if model_path.is_dir() else model_path.stem
    record = model_path.with_name(f"{stem}_train.json")
    try:
        lo, hi = json.loads(record.read_text("utf-8"))["input_range"]
        lo, hi = float(lo), float(hi)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not lo < hi:
        return None
    return Hint(range=(lo, hi), reason=f"edgekit train recorded it in {record.name}")


@dataclass(frozen=True)
class Measurement:
    """Float class-balanced top-1 (mean per-class recall) per range on ``images`` labelled
    images of ``classes`` classes (``held_out`` of them held out). ``verify_outputs[range]``:
    the float model's (N_verify, classes) outputs on the held-out images, for verification."""

    accuracy: dict[Range, float]
    images: int
    held_out: int
    classes: int
    verify_outputs: dict[Range, np.ndarray] = field(repr=False)


def _top_up(verify_cls: np.ndarray, calib_cls: np.ndarray | None) -> np.ndarray:
    """Indices of calibration images that bring every class seen to an equal share of
    :data:`MEASURE_MIN` (a held-out side of one class alone says nothing about the range)."""
    if calib_cls is None or not len(calib_cls):
        return np.zeros(0, np.int64)
    present = np.union1d(np.unique(verify_cls), np.unique(calib_cls))
    per_class = max(3, -(-MEASURE_MIN // len(present)))
    picks = []
    for c in present:
        need = per_class - int(np.sum(verify_cls == c))
        if need > 0:
            picks.extend(np.flatnonzero(calib_cls == c)[:need].tolist())
    return np.asarray(sorted(picks), np.int64)


def balanced_accuracy(top: np.ndarray, truth: np.ndarray) -> float:
    """Mean over the classes present of the fraction of their images predicted right."""
    classes = np.unique(truth)
    return float(np.mean([np.mean(top[truth == c] == c) for c in classes])) if len(truth) else 0.0


def measure(
    float_fn: Callable[[np.ndarray], np.ndarray],
    ranges: list[Range],
    verify_px: np.ndarray,
    verify_cls: np.ndarray,
    calib_px: np.ndarray | None,
    calib_cls: np.ndarray | None,
) -> Measurement:
    """Float top-1 of ``float_fn`` under each range on every held-out image plus calibration
    images topping each class up (:func:`_top_up`); pixels are uint8 (N, H, W, C)."""
    from edgekit.host.verify import float_outputs

    extra = _top_up(verify_cls, calib_cls if calib_px is not None else None)
    truth = np.concatenate([verify_cls, calib_cls[extra]]) if len(extra) else verify_cls
    accuracy, outputs = {}, {}
    for r in ranges:
        out_v = float_outputs(float_fn, to_float(verify_px, r)).reshape(len(verify_px), -1)
        top = out_v.argmax(axis=1)
        if len(extra):
            out_c = float_outputs(float_fn, to_float(calib_px[extra], r)).reshape(len(extra), -1)
            top = np.concatenate([top, out_c.argmax(axis=1)])
        accuracy[r] = balanced_accuracy(top, truth)
        outputs[r] = out_v
    n_classes = len(np.unique(truth))
    return Measurement(accuracy, int(len(truth)), int(len(verify_px)), n_classes, outputs)


@dataclass(frozen=True)
class RangeDecision:
    """The range used, ``source`` (option|model|measured|default), ``reason`` (one phrase),
    the measurement (None when there were no labelled images) and the model's hint."""

    range: Range
    source: str
    reason: str
    measurement: Optional[Measurement] = None
    hint: Optional[Hint] = None

    def accuracy(self) -> dict[str, float] | None:
        m = self.measurement
        return None if m is None else {fmt(r): round(a, 4) for r, a in m.accuracy.items()}

    def to_dict(self) -> dict[str, Any]:
        m = self.measurement
        return {
            "range": list(self.range),
            "source": self.source,
            "reason": self.reason,
            "float_accuracy": self.accuracy(),
            "measured_images": m.images if m else 0,
            "measured_held_out": m.held_out if m else 0,
            "measured_classes": m.classes if m else 0,
            "metric": "float top-1, class-balanced (mean per-class recall)",
            "hint": None
            if self.hint is None
            else {
                "range": list(self.hint.range) if self.hint.range else None,
                "resize": self.hint.resize,
                "size": list(self.hint.size) if self.hint.size else None,
                "reason": self.hint.reason,
            },
        }


def _levels(num_classes: int) -> tuple[float, float]:
    chance = 1.0 / max(num_classes, 1)
    return chance + 0.25 * (1 - chance), chance + 0.75 * (1 - chance)


def ranges_to_measure(user: Range | None, hint: Hint | None) -> list[Range]:
    out = list(CANDIDATES)
    for r in (hint.range if hint else None, user):
        if r is not None and r not in out:
            out.append(r)
    return out


def decide(
    user: Range | None,
    keep: bool,
    hint: Hint | None,
    m: Measurement | None,
    num_classes: int,
    where: str = "--calib",
    warn: Callable[[str], None] | None = None,
) -> RangeDecision:
    """The range to use (see the module docstring). Raises EdgekitError when ``user``'s range
    is refuted by the measurement and ``keep`` is false."""
    near_chance, high = _levels(num_classes)
    conclusive = (
        m is not None
        and m.images >= MIN_DECIDE
        and m.classes >= 2
        and max(m.accuracy.values()) >= high
    )
    if user is not None:
        if conclusive and user in m.accuracy and m.accuracy[user] <= near_chance:
            best = max(m.accuracy, key=lambda r: m.accuracy[r])
            msg = (
                f"--input-range {arg(user)}: the float model gets {m.accuracy[user]:.0%} top-1 "
                f"on {m.images} labelled images of {where} with it (chance "
                f"{1 / num_classes:.0%}) but {m.accuracy[best]:.0%} with {arg(best)}"
            )
            if not keep:
                raise EdgekitError(
                    msg + "; no bundle written",
                    f"pass --input-range {arg(best)} (or --keep-input-range to keep {arg(user)})",
                )
            if warn:
                warn(msg + "; kept because of --keep-input-range")
        elif hint is not None and hint.range is not None and hint.range != user and warn:
            warn(f"--input-range {arg(user)} overrides the model's {fmt(hint.range)} "
                 f"({hint.reason})")  # fmt: skip
        return RangeDecision(user, "option", "--input-range", m, hint)
    if conclusive:
        best = max(m.accuracy.values())
        tie = max(0.02, 1.0 / m.images)  # a difference of one image is no evidence
        order = [hint.range] if hint and hint.range else []
        order += [r for r in (DEFAULT, *m.accuracy) if r not in order]
        chosen = next(r for r in order if r in m.accuracy and m.accuracy[r] >= best - tie)
        reason = f"best float top-1 on {m.images} labelled images"
        if hint is not None and hint.range is not None and hint.range != chosen:
            reason += f"; the model suggested {fmt(hint.range)} ({hint.reason})"
        return RangeDecision(chosen, "measured", reason, m, hint)
    note = "" if m is None else "; the measurement was inconclusive"
    if hint is not None and hint.range is not None:
        return RangeDecision(hint.range, "model", hint.reason + note, m, hint)
    reason = "no --input-range, the model does not say"
    reason += note if m is not None else " and no labelled images to measure"
    return RangeDecision(DEFAULT, "default", reason, m, hint)
