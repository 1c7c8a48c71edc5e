"""Frame sources: where RGB frames come from. They know nothing about models.

A source yields (H, W, 3) uint8 RGB frames through ``read()``. It signals the three things that
can go wrong with a camera through exceptions, so the capture thread can react to each:

* :class:`EndOfStream`: a finite source (file, folder) is exhausted and does not loop.
* :class:`SourceLost`: the camera or stream is gone (unplugged, network down, cannot open):
  the capture thread closes the source and reopens it with exponential backoff.
* :class:`FrameDecodeError`: this one frame is unreadable; skip it and go on.

Problems the user must fix (a file path that does not exist, picamera2 missing) raise
:class:`~edgekit.errors.EdgekitError` from the constructor or ``open()`` and are not retried.
Hardware libraries (OpenCV, picamera2) are imported lazily in ``open()``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.stream.sources_base import EndOfStream, FrameDecodeError, Source, SourceLost
from edgekit.stream.sources_opencv import OpenCVSource
from edgekit.stream.sources_picamera import Picamera2Source

__all__ = ["EndOfStream", "FolderSource", "FrameDecodeError", "OpenCVSource", "Picamera2Source",
           "Source", "SourceLost", "open_source"]  # fmt: skip


class FolderSource(Source):
    """Replays the images of a folder (sorted by path), e.g. for testing a deployment.

    An unreadable image (corrupt, truncated, a decompression bomb, a FIFO named ``x.png``)
    raises FrameDecodeError for that frame only: the capture thread skips and counts it. A whole
    pass over the folder without one readable image is an EdgekitError (looping over nothing
    but bad files would spin forever)."""

    def __init__(self, folder: str | os.PathLike, loop: bool = False, fps: float = 0.0):
        from edgekit.images import find_images

        self.folder = Path(folder)
        self.files = find_images(self.folder)
        if not self.files:
            raise EdgekitError(f"{self.folder}: no images in folder", "jpg, png, bmp or webp")
        self.loop, self.fps, self.name = loop, float(fps), str(self.folder)
        self._pos = 0
        self._bad_run = 0  # consecutive unreadable files

    def open(self) -> None:
        self._pos = 0

    def read(self) -> np.ndarray:
        from edgekit.images import load_rgb

        if self._bad_run >= len(self.files):
            raise EdgekitError(
                f"{self.folder}: none of its {len(self.files)} images can be read",
                "check the files (see the decode errors above)",
            )
        if self._pos >= len(self.files):
            if not self.loop:
                raise EndOfStream(self.name)
            self._pos = 0
        path = self.files[self._pos]
        self._pos += 1
        try:
            if not path.is_file():  # a FIFO would block open() forever; a folder named x.png
                raise EdgekitError(f"{path}: not a regular file")
            rgb = load_rgb(path)
        except MemoryError:
            self._bad_run += 1
            raise FrameDecodeError(f"{path}: too large to decode") from None
        except Exception as e:  # Pillow raises many types (bombs, truncation, bad headers)
            self._bad_run += 1
            message = str(e) if isinstance(e, EdgekitError) else f"{path}: {e}"
            raise FrameDecodeError(message) from None
        self._bad_run = 0
        return rgb


def open_source(
    uri: str | int,
    loop: bool = False,
    width: int = 0,
    height: int = 0,
    fps: float = 0.0,
) -> Source:
    """Source for a config/CLI string: ``picamera2`` or ``picamera2:lores``, an image folder,
    or anything :class:`OpenCVSource` accepts."""
    text = str(uri).strip()
    if text.lower().startswith("picamera2"):
        stream = text.split(":", 1)[1] if ":" in text else "main"
        return Picamera2Source(width or 640, height or 480, fps, stream=stream)
    if text and Path(text).is_dir():
        return FolderSource(text, loop=loop, fps=fps)
    if not text:
        raise EdgekitError("no source given", "pass --source /dev/video0, a file or a URL")
    return OpenCVSource(text, loop=loop, width=width, height=height, fps=fps)
