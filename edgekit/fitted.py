"""A frame fitted to a detector's input outside the detector, with its exact way back.

serve resizes a classifier's frames in the capture thread, so the inference worker gets frames
at the model's input size. A detector's boxes must come back in the pixels of the frame, so
its letterbox (or stretch) is not a plain resize: :class:`Fit` is the detector's own fitting
step (size, mode, grey) as data, and calling it on a frame gives a :class:`FittedFrame`: the
pixels at input size plus the :class:`~edgekit.images.Letterbox` record that maps input pixels
back to the frame's (the same function, so the same pixels and the same record as the detector
makes itself: the record's boxes are identical). A :class:`~edgekit.detect.detector.Detector`
takes a FittedFrame wherever it takes a frame; one fitted for another fit (a hot reload changed
the model between the capture and the worker) runs from the original frame it carries.

Across serve's process boundary only the fitted pixels travel (shared memory: the input size,
not the frame's) with the small record (pickled), and ``frame`` is None on the other side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from edgekit.images import Letterbox, letterbox, stretch_box

MODES = ("letterbox", "stretch")


@dataclass(frozen=True)
class Fit:
    """How a detector fits a frame to its input: ``size`` = (height, width) input pixels,
    ``mode`` letterbox (aspect kept, ``fill`` grey 0..255 around) or stretch."""

    size: tuple[int, int]
    mode: str
    fill: int = 114

    def __call__(self, rgb: np.ndarray) -> FittedFrame:
        """(H, W, 3) uint8 RGB frame -> its :class:`FittedFrame` (``frame`` is ``rgb``)."""
        if self.mode == "letterbox":
            pixels, box = letterbox(rgb, self.size, self.fill)
        else:
            pixels, box = stretch_box(rgb, self.size)
        return FittedFrame(pixels, box, self, rgb)

    def to_info(self) -> list:
        """Plain values for the worker's info dict (``[h, w, mode, fill]``)."""
        return [int(self.size[0]), int(self.size[1]), self.mode, int(self.fill)]

    @classmethod
    def from_info(cls, info) -> Fit | None:
        if not info:
            return None
        h, w, mode, fill = info
        return cls((int(h), int(w)), str(mode), int(fill))


class FittedFrame(NamedTuple):
    """``pixels``: (h, w, 3) uint8 at the input size; ``box``: input pixels -> the frame's
    (:meth:`~edgekit.images.Letterbox.to_original`; ``box.src_size`` is the frame's (w, h));
    ``fit``: what made it; ``frame``: the original frame (None once across the process
    boundary)."""

    pixels: np.ndarray
    box: Letterbox
    fit: Fit
    frame: np.ndarray | None = None


def full_frame(rgb):
    """The original frame of ``rgb`` (a FittedFrame's, or ``rgb`` itself): what a model that
    fits no frames (a cascade, which cuts its crops from the frame) is given."""
    if isinstance(rgb, FittedFrame):
        if rgb.frame is None:
            from edgekit.errors import EdgekitError

            raise EdgekitError("this frame was fitted to a detector's input and its original "
                               "is not here", "give the model the whole frame")  # fmt: skip
        return rgb.frame
    return rgb
