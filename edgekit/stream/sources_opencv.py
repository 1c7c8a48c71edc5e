"""Frames through OpenCV: a V4L2 camera, a video file (decoded once at open to refuse a file
that is no video) or a network stream with a short timeout. OpenCV is imported in ``open()``."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.stream.sources_base import EndOfStream, Source, SourceLost

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
            _check_url(self.uri)
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
        _quiet_native_logs()
        import cv2  # lazy: OpenCV is a device extra

        _quiet_opencv_log(cv2)
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
            cap = cv2.VideoCapture(self.target, _file_backend(cv2, self.target))
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


def _check_url(uri: str) -> None:
    """A stream URL that can never open (no host, a bad port, an unclosed ``[``) is the user's to
    fix: refused once, not retried with backoff forever as a stream that is down."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(uri)
        port = parts.port  # ValueError when not 0..65535
        host = parts.hostname
    except ValueError as e:
        raise EdgekitError(f"{uri}: not a valid stream URL ({e})",
                           "e.g. rtsp://camera.local:554/stream") from None  # fmt: skip
    if not host and parts.scheme.lower() not in ("udp", "tcp"):  # udp://@:1234 listens
        raise EdgekitError(f"{uri}: no host in the stream URL",
                           "e.g. rtsp://camera.local:554/stream") from None  # fmt: skip
    if port == 0:
        raise EdgekitError(f"{uri}: port 0 in the stream URL", "use a port 1-65535, or none")


def _quiet_native_logs() -> None:
    """FFmpeg (``[mov,mp4 @ 0x...] moov atom not found``) prints its own lines on stderr beside
    edgekit's one error or event line for the same problem. OpenCV reads the variable when it
    first opens an FFmpeg capture; a value the user set (to debug a camera) is kept."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET


def _quiet_opencv_log(cv2) -> None:
    """OpenCV's own log (``[ERROR:0@0.01] global cap_ffmpeg_impl.hpp:1412 open Could not find
    decoder``, ``[ WARN:0@0.01] global cap.cpp:212 ...``) off, through its API (the
    OPENCV_LOG_LEVEL variable counts only when set before cv2 is imported); unless the user set
    OPENCV_LOG_LEVEL."""
    if "OPENCV_LOG_LEVEL" not in os.environ:
        logging = getattr(getattr(cv2, "utils", None), "logging", None)
        if logging is not None:
            logging.setLogLevel(logging.LOG_LEVEL_SILENT)


def _file_backend(cv2, path: str) -> int:
    """FFmpeg for a video file when OpenCV has it: what OpenCV picks first anyway for every file
    it can read, and it spares a damaged file the fallback readers, whose AVI parser prints
    ``Unexpected element. Expected: LIST. Got: <raw bytes>`` to stderr itself. A printf-style
    image sequence (``img_%03d.png``) keeps OpenCV's choice."""
    has = getattr(getattr(cv2, "videoio_registry", None), "hasBackend", None)
    if "%" not in path and has is not None and has(cv2.CAP_FFMPEG):
        return cv2.CAP_FFMPEG
    return cv2.CAP_ANY
