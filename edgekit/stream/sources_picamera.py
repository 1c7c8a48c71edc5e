"""Frames from a Raspberry Pi camera module through picamera2 (imported in ``open()``: it does
not import off the Pi), with libcamera's BGR ``RGB888`` and YUV420 ``lores`` quirks handled."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.stream.sources_base import Source, SourceLost


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
