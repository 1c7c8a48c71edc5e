"""The frame source interface (:class:`Source`) and the three exceptions by which a source tells
the capture thread what went wrong (:mod:`edgekit.stream.sources` says how each is handled)."""

from __future__ import annotations

import numpy as np


class EndOfStream(Exception):
    """A finite source has no more frames."""


class SourceLost(Exception):
    """The camera or stream is unavailable; retry later."""


class FrameDecodeError(Exception):
    """One frame could not be decoded; the source itself is fine."""


class Source:
    """Base class. ``live`` sources (cameras, network streams) produce frames at their own pace
    and are reconnected when lost; finite sources (files, folders) are read as fast as the
    consumer takes frames and end (or loop). ``fps`` is the native rate (0 when unknown)."""

    live: bool = False
    fps: float = 0.0
    name: str = "source"

    def open(self) -> None:
        """Acquire the device/file. Raises SourceLost (retry) or EdgekitError (give up)."""

    def read(self) -> np.ndarray:
        """Next frame, (H, W, 3) uint8 RGB. Blocks until one is available."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the device/file. Safe to call twice or when never opened."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
