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
import re
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import EdgekitError


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


_DEVICE = re.compile(r"^(?:/dev/video)?(\d+)$")
_URL = re.compile(r"^(rtsp|rtsps|rtmp|http|https|udp|tcp)://", re.IGNORECASE)


class OpenCVSource(Source):
    """A V4L2 camera (``/dev/videoN`` or index ``N``), a video file or a network stream
    (``rtsp://``, ``http://``...) through OpenCV. Frames come out of OpenCV as BGR and are
    converted to RGB here.

    Args:
        uri: device, file path or URL.
        loop: restart a video file at its end instead of ending.
        width, height, fps: requested camera mode (cameras only; 0 = driver default).
        timeout_s: open/read timeout for network streams (OpenCV's FFmpeg default is 30 s,
            far too long for noticing a dead stream).
    """

    def __init__(
        self,
        uri: str | int,
        loop: bool = False,
        width: int = 0,
        height: int = 0,
        fps: float = 0.0,
        timeout_s: float = 5.0,
    ):
        self.uri = str(uri)
        self.loop = loop
        self.width, self.height, self.req_fps = int(width), int(height), float(fps)
        self.timeout_s = timeout_s
        self._cap: Any = None
        self._first: Any = None
        m = _DEVICE.match(self.uri)
        if m:
            self.kind, self.target = "device", int(m.group(1))
        elif _URL.match(self.uri):
            self.kind, self.target = "url", self.uri
        else:
            path = Path(self.uri)
            if path.exists() and not path.is_file() and not path.is_dir():
                # A FIFO would block OpenCV's open forever; a device node is not a video file.
                raise EdgekitError(
                    f"{self.uri}: not a regular file (a FIFO or device?)",
                    "give a video file, a folder of images, /dev/videoN or a URL",
                )
            if not path.is_file():
                raise EdgekitError(
                    f"{self.uri}: no such video file or camera",
                    "give /dev/videoN, a camera index, a video file or an rtsp:// or http:// URL",
                )
            self.kind, self.target = "file", self.uri
        self.live = self.kind != "file"
        self.name = self.uri

    def open(self) -> None:
        import cv2  # lazy: OpenCV is a device extra

        self.close()
        if self.kind == "device":
            if not os.path.exists(f"/dev/video{self.target}"):
                raise SourceLost(f"/dev/video{self.target} does not exist (camera unplugged?)")
            cap = cv2.VideoCapture(self.target, cv2.CAP_V4L2)
            if self.width and self.height:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            if self.req_fps:
                cap.set(cv2.CAP_PROP_FPS, self.req_fps)
            # V4L2 queues several buffers; a one-buffer queue keeps the newest frame fresh.
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        elif self.kind == "url":
            ms = int(self.timeout_s * 1000)
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
            cap = cv2.VideoCapture(self.target, cv2.CAP_FFMPEG, params)
        else:
            cap = cv2.VideoCapture(self.target)
        if not cap.isOpened():
            cap.release()
            if self.kind == "file":
                raise EdgekitError(f"{self.uri}: OpenCV cannot open this video", "is it a video?")
            raise SourceLost(f"cannot open {self.uri}")
        self._first = None
        if self.kind == "file":
            # OpenCV "opens" any file (a broken PNG, a text file named .mp4) and then yields no
            # frame: that is a bad input, not a video that ended. Decode one frame to know.
            ok, self._first = cap.read()
            if not ok or self._first is None:
                cap.release()
                raise EdgekitError(
                    f"{self.uri}: no video frame could be decoded", "is it a video OpenCV can read?"
                )
        self._cap = cap
        self.fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)

    def read(self) -> np.ndarray:
        import cv2

        if self._cap is None:
            raise SourceLost(f"{self.uri} is not open")
        if self._first is not None:  # the frame open() decoded to check the file
            ok, bgr, self._first = True, self._first, None
        else:
            ok, bgr = self._cap.read()
        if not ok and self.kind == "file" and self.loop:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self._cap.read()
        if not ok or bgr is None:
            if self.kind == "file":
                raise EndOfStream(self.uri)
            raise SourceLost(f"{self.uri}: no frame (camera unplugged or stream ended)")
        if bgr.ndim == 2:  # grey camera
            return cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class Picamera2Source(Source):
    """A Raspberry Pi camera module through picamera2 (libcamera; Raspberry Pi OS only).

    Inference wants small frames: by default the ``main`` stream is configured at
    ``width`` x ``height`` (640x480) in ``RGB888``. Quirk: libcamera names formats by their
    DRM fourcc, so ``RGB888`` is laid out B, G, R in memory, and the array is BGR; it is
    reversed here. With ``stream="lores"`` a full-resolution main stream runs (for recording
    elsewhere) and the low-resolution stream is used; on Pi 4 and earlier ``lores`` must be
    YUV420, converted here with OpenCV.
    """

    live = True

    def __init__(self, width: int = 640, height: int = 480, fps: float = 0.0, stream="main"):
        if stream not in ("main", "lores"):
            raise EdgekitError(f"picamera2 stream {stream!r} unknown", "use main or lores")
        self.size = (int(width) or 640, int(height) or 480)
        self.req_fps, self.stream = float(fps), stream
        self.name = f"picamera2:{stream}"
        self._cam: Any = None

    def open(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError as e:
            raise EdgekitError(
                f"the Pi camera source needs picamera2, which does not import here ({e})",
                "on Raspberry Pi OS: sudo apt install python3-picamera2 and create the venv with "
                "--system-site-packages; elsewhere use an OpenCV source (/dev/videoN, file, URL)",
            ) from None
        self.close()
        try:
            cam = Picamera2()
        except (RuntimeError, IndexError) as e:  # no camera connected / camera busy
            raise SourceLost(f"no Pi camera available ({e})") from None
        controls = {"FrameRate": self.req_fps} if self.req_fps else {}
        if self.stream == "lores":
            config = cam.create_video_configuration(
                lores={"size": self.size, "format": "YUV420"}, controls=controls
            )
        else:
            config = cam.create_video_configuration(
                main={"size": self.size, "format": "RGB888"}, controls=controls
            )
        cam.configure(config)
        cam.start()
        self._cam = cam
        self.fps = self.req_fps

    def read(self) -> np.ndarray:
        if self._cam is None:
            raise SourceLost("Pi camera is not open")
        try:
            arr = self._cam.capture_array(self.stream)
        except RuntimeError as e:
            raise SourceLost(f"Pi camera failed ({e})") from None
        if self.stream == "lores":
            import cv2

            return cv2.cvtColor(arr, cv2.COLOR_YUV420p2RGB)
        return np.ascontiguousarray(arr[..., 2::-1])  # BGR(X) -> RGB, drops a padding channel

    def close(self) -> None:
        if self._cam is not None:
            try:
                self._cam.stop()
                self._cam.close()
            finally:
                self._cam = None


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
