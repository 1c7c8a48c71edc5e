"""Sources and the capture thread on real files: colour order, looping, end of stream, decode
errors, the newest-frame-wins slot, reconnection with backoff, picamera2's boundary."""

from __future__ import annotations

import sys
import threading
import time
import types

import numpy as np
import pytest

from edgekit.errors import EdgekitError
from edgekit.stream.capture import CaptureThread, FrameSlot
from edgekit.stream.sources import (
    EndOfStream,
    FolderSource,
    OpenCVSource,
    Picamera2Source,
    open_source,
)

from .conftest import FRAMES_PER_PHOTO, PHOTOS, solid
from .stream_faults import FlakySource


def test_video_file_frames_are_rgb_and_end(tmp_path):
    import cv2

    path = tmp_path / "red.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for _ in range(3):
        w.write(cv2.cvtColor(solid((255, 0, 0)), cv2.COLOR_RGB2BGR))
    w.release()
    src = OpenCVSource(str(path))
    assert not src.live
    src.open()
    frame = src.read()
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
    r, g, b = frame.reshape(-1, 3).mean(axis=0)
    assert r > 200 and g < 50 and b < 50, "OpenCV's BGR must be converted to RGB"
    src.read(), src.read()
    with pytest.raises(EndOfStream):
        src.read()
    src.close()


def test_video_loops(video_avi):
    src = OpenCVSource(str(video_avi), loop=True)
    src.open()
    n = len(PHOTOS) * FRAMES_PER_PHOTO
    frames = [src.read() for _ in range(n + 2)]
    assert np.abs(frames[n].astype(int) - frames[0].astype(int)).mean() < 3
    src.close()


def test_missing_file_and_empty_folder_are_clear_errors(tmp_path):
    with pytest.raises(EdgekitError, match="no such video file or camera"):
        open_source(str(tmp_path / "nope.avi"))
    with pytest.raises(EdgekitError, match="no images"):
        open_source(str(tmp_path))
    (tmp_path / "not-a-video.avi").write_bytes(b"garbage" * 100)
    src = open_source(str(tmp_path / "not-a-video.avi"))
    with pytest.raises(EdgekitError, match="cannot open"):
        src.open()


def test_device_and_url_are_live():
    assert OpenCVSource("/dev/video7").live and OpenCVSource("3").target == 3
    assert OpenCVSource("rtsp://cam.local/stream").live


def test_folder_source_skips_undecodable_image(coral_dir, tmp_path):
    import shutil

    shutil.copy(coral_dir / "cat.bmp", tmp_path / "a.bmp")
    (tmp_path / "b.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    shutil.copy(coral_dir / "parrot.jpg", tmp_path / "c.jpg")
    events = []
    cap = CaptureThread(FolderSource(tmp_path), on_event=lambda k, m, d: events.append(k))
    cap.start()
    got = []
    while not cap.finished:
        f = cap.take(0.2)
        if f is not None:
            got.append(f)
    assert [f.index for f in got] == [1, 2]
    assert cap.decode_errors == 1 and events == ["decode_error"] and cap.ended
    assert cap.error is None


def test_slot_keeps_newest_and_counts_drops():
    slot = FrameSlot()
    from edgekit.stream.capture import Frame

    for i in range(1, 6):
        slot.put(Frame(solid(), time.time(), time.monotonic(), i))
    assert slot.take(0.1).index == 5 and slot.dropped == 4
    assert slot.take(0.01) is None


def test_a_file_frame_waiting_when_the_slot_closes_is_unprocessed_not_dropped():
    """A file's frames wait for the model (put(wait=True)). serve stopping (max_frames) closes
    the slot under a waiting put: the frame already in the slot was replaced and counted
    'dropped', though a file never drops one; both are unprocessed now (serve's accounting:
    the slot's frame plus ``discarded``)."""
    from edgekit.stream.capture import Frame

    slot = FrameSlot()
    slot.put(Frame(solid(), time.time(), time.monotonic(), 1), wait=True)
    t = threading.Thread(target=slot.put, args=(Frame(solid(), time.time(), time.monotonic(), 2),),
                         kwargs={"wait": True})  # fmt: skip
    t.start()
    time.sleep(0.2)  # the second put waits for the first frame to be taken
    slot.close()
    t.join(2)
    assert not t.is_alive()
    assert (slot.dropped, slot.discarded) == (0, 1)
    assert slot.take(0.0).index == 1


class CounterCamera(FolderSource):
    """A live camera (never ends) producing a frame every 2 ms."""

    live = True

    def __init__(self):
        self.name, self.fps, self.n = "counter", 500.0, 0

    def open(self):
        pass

    def read(self):
        time.sleep(0.002)
        self.n += 1
        return solid((self.n % 256, 0, 0))


def test_live_source_drops_stale_frames_instead_of_queueing():
    cap = CaptureThread(CounterCamera()).start()
    seen = []
    try:
        for _ in range(5):
            f = cap.take(1.0)
            seen.append(f.index)
            time.sleep(0.05)  # a slow consumer: ~25 frames arrive meanwhile
    finally:
        cap.stop()
    assert seen == sorted(seen) and cap.slot.dropped > 0
    assert seen[-1] - seen[0] > 4 * 5, "the consumer must get the newest frame, not a queue"


def test_lost_camera_is_reopened_with_backoff(video_avi):
    flaky = FlakySource(OpenCVSource(str(video_avi), loop=True), lose_at={3}, reopen_failures=2)
    events = []
    cap = CaptureThread(flaky, on_event=lambda k, m, d: events.append((k, d)), backoff_s=0.01)
    cap.start()
    try:
        got = [cap.take(2.0) for _ in range(6)]
    finally:
        cap.stop()
    assert all(f is not None for f in got)
    kinds = [k for k, _ in events]
    assert kinds == ["source_lost", "source_lost", "source_lost", "source_reconnected"]
    waits = [d["retry_in_s"] for k, d in events if k == "source_lost"]
    assert waits == [0.01, 0.02, 0.04], "exponential backoff"
    assert cap.reconnects == 1 and cap.error is None


def test_stop_returns_quickly_even_with_a_blocked_camera():
    class Hung(CounterCamera):
        def read(self):
            threading.Event().wait(60)

    cap = CaptureThread(Hung()).start()
    cap.stop(timeout=0.3)  # does not wait 60 s: the thread is a daemon and is abandoned


def test_picamera2_missing_gives_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # "does not import", as on x86
    src = open_source("picamera2")
    assert isinstance(src, Picamera2Source)
    with pytest.raises(EdgekitError, match="picamera2"):
        src.open()


def test_picamera2_contract_bgr_layout_and_lores(monkeypatch):
    """Fake picamera2 module reproducing its documented API: RGB888 arrays are B,G,R."""
    calls = {}

    class Picamera2:
        def create_video_configuration(self, main=None, lores=None, controls=None):
            calls["config"] = {"main": main, "lores": lores}
            return calls["config"]

        def configure(self, config):
            pass

        def start(self):
            calls["started"] = True

        def capture_array(self, name="main"):
            calls["stream"] = name
            if name == "lores":  # YUV420 planar: H*3/2 rows of W
                return np.full((48 * 3 // 2, 64), 128, dtype=np.uint8)
            arr = np.zeros((48, 64, 4), dtype=np.uint8)  # XBGR8888-style padding channel
            arr[..., 0] = 255  # blue in the first byte
            return arr

        def stop(self):
            pass

        def close(self):
            pass

    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=Picamera2))
    src = open_source("picamera2", width=64, height=48)
    src.open()
    rgb = src.read()
    assert rgb.shape == (48, 64, 3) and tuple(rgb[0, 0]) == (0, 0, 255)
    assert calls["config"]["main"] == {"size": (64, 48), "format": "RGB888"}
    src.close()
    lores = open_source("picamera2:lores", width=64, height=48)
    lores.open()
    assert lores.read().shape == (48, 64, 3) and calls["stream"] == "lores"
