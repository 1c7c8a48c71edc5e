"""Which detections a cascade classifies and the crop it cuts for each: pure numpy, shared by the
CLI, serve and bench (rules in :mod:`edgekit.detect.cascade`'s docstring)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from edgekit import limits
from edgekit.detect.records import Detection
from edgekit.errors import EdgekitError

MARGIN = 0.1  # of the box's width/height, each side
MIN_SIZE = 16  # px: smaller boxes are not classified
MAX_CROPS = 8  # per frame: bounds the classifier's time per frame

@dataclass(frozen=True)
class CropRule:
    """Which detections get classified and how their crop is cut (module docstring)."""

    labels: frozenset[str] | None = None
    margin: float = MARGIN
    min_size: float = MIN_SIZE
    max_crops: int = MAX_CROPS

    def __post_init__(self) -> None:
        limits.finite("margin", self.margin, 0.0, 2.0)
        limits.finite("min_size", self.min_size, 0.0, 1e5)
        if isinstance(self.max_crops, bool) or not isinstance(self.max_crops, int) or not (
            0 <= self.max_crops <= 1000
        ):
            raise EdgekitError(f"max_crops must be an integer in 0..1000, got {self.max_crops!r}")


def crop_box(box: Iterable[float], image_size: tuple[int, int], margin: float = MARGIN
             ) -> tuple[int, int, int, int]:  # fmt: skip
    """Integer pixel crop ``(x0, y0, x1, y1)`` (x1, y1 exclusive) of ``box`` grown by ``margin``
    of its size on each side and clamped to ``image_size`` = (width, height). Never empty for a
    box inside the image: at least one pixel each way."""
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = image_size
    mx, my = (x1 - x0) * margin, (y1 - y0) * margin
    cx0 = int(np.clip(np.floor(x0 - mx), 0, max(w - 1, 0)))
    cy0 = int(np.clip(np.floor(y0 - my), 0, max(h - 1, 0)))
    cx1 = int(np.clip(np.ceil(x1 + mx), cx0 + 1, w))
    cy1 = int(np.clip(np.ceil(y1 + my), cy0 + 1, h))
    return cx0, cy0, cx1, cy1


def select(detections: Iterable[Detection], rule: CropRule) -> list[int]:
    """Indices of the detections to classify, best score first (see module docstring)."""
    ok = [
        i for i, d in enumerate(detections)
        if (rule.labels is None or d.label in rule.labels)
        and d.box[2] - d.box[0] >= rule.min_size and d.box[3] - d.box[1] >= rule.min_size
    ]  # fmt: skip
    dets = list(detections) if not isinstance(detections, (list, tuple)) else detections
    ok.sort(key=lambda i: -dets[i].score)  # stable: the detector's order among equal scores
    return ok[: rule.max_crops]


def crop(rgb: np.ndarray, box: Iterable[float], margin: float = MARGIN) -> np.ndarray:
    """The crop of ``box`` from an (H, W, 3) image (a view, see :func:`crop_box`)."""
    x0, y0, x1, y1 = crop_box(box, (rgb.shape[1], rgb.shape[0]), margin)
    return rgb[y0:y1, x0:x1]
