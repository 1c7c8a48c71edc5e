"""``serve --source``: a damaged video file and a stream URL that can never open.

Before: ``serve --check`` said OK for a truncated .mp4/.avi, a cut JPEG or an empty file (it only
looked for the file), and serve then refused it at startup, so install-service.sh installed a
service that could not start; ``rtsp://`` (no host), ``http://[::1`` or a port out of range
passed --check and serve retried them with backoff forever as a camera that is down; and FFmpeg
and OpenCV printed their own lines (``[mov,mp4,... @ 0x...] moov atom not found``,
``[ WARN:0@0.01] global cap.cpp:212 ...``) beside edgekit's one line."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgekit.errors import EdgekitError
from edgekit.stream.sources import OpenCVSource

from .conftest import CORAL, TINY, cli, run_edgekit

cv2 = pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """A real 20-frame .mp4 and .avi (OpenCV's writer), cut at three offsets each, a cut JPEG
    and an empty file."""
    d = tmp_path_factory.mktemp("videos")
    out = {}
    for name, fourcc in (("v.mp4", "mp4v"), ("v.avi", "MJPG")):
        w = cv2.VideoWriter(str(d / name), cv2.VideoWriter_fourcc(*fourcc), 10, (64, 48))
        for i in range(20):
            w.write(np.full((48, 64, 3), i * 10, np.uint8))
        w.release()
        data = (d / name).read_bytes()
        # .mp4: OpenCV's writer puts the index (moov atom) at the end, so half is no video
        for cut, size in ((100, 100), ("half", len(data) // 2)):
            p = d / f"cut{cut}_{name}"
            p.write_bytes(data[:size])
            out[p.name] = p
    (d / "cut.jpg").write_bytes((CORAL / "parrot.jpg").read_bytes()[:1000])
    # one byte of the AVI header's first LIST tag damaged (found by fuzzing): OpenCV's own AVI
    # reader, tried after FFmpeg, printed "Unexpected element. Expected: LIST. Got: LI\xcfT."
    # (raw bytes, not UTF-8) to stderr itself
    avi = (d / "v.avi").read_bytes()
    (d / "badlist.avi").write_bytes(avi.replace(b"LIST", b"LI\xcfT", 1))
    out["badlist.avi"] = d / "badlist.avi"
    (d / "empty.mp4").write_bytes(b"")
    out.update({"cut.jpg": d / "cut.jpg", "empty.mp4": d / "empty.mp4",
                "v.mp4": d / "v.mp4", "v.avi": d / "v.avi"})  # fmt: skip
    return out


@pytest.mark.parametrize("name", ["cut100_v.mp4", "cuthalf_v.mp4", "cut100_v.avi",
                                  "cut.jpg", "empty.mp4"])  # fmt: skip
def test_check_refuses_a_video_that_serve_would_refuse(videos, name):
    r = cli("serve", "--check", "--model", TINY, "--source", videos[name], "-d", "cpu")
    assert r.exit_code == 1, r.output
    last = r.output.strip().splitlines()[-1]
    assert last.startswith(f"Error: {videos[name]}: ") and "OpenCV" in last, r.output


@pytest.mark.parametrize("name", ["v.mp4", "v.avi"])
def test_check_still_passes_a_whole_video(videos, name):
    r = cli("serve", "--check", "--model", TINY, "--source", videos[name], "-d", "cpu")
    assert r.exit_code == 0 and r.output.strip().splitlines()[-1].startswith("OK: "), r.output


@pytest.mark.parametrize("name", ["cuthalf_v.mp4", "cut.jpg", "badlist.avi"])
def test_serve_on_a_damaged_video_prints_only_its_own_lines(videos, name):
    """A real process: FFmpeg and OpenCV write to file descriptor 2 themselves."""
    p = run_edgekit("serve", "--model", TINY, "--source", videos[name], "-d", "cpu",
                    "--worker", "inline", "--max-frames", "2")  # fmt: skip
    assert p.returncode == 1, p.stderr
    # one line: not FFmpeg's, not OpenCV's, not a "Warning: source_failed" repeating the Error
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {videos[name]}: "), p.stderr
    assert '"event":"source_failed"' in p.stdout  # still an event for the journal and sinks


@pytest.mark.parametrize("url, words", [
    ("rtsp://", "no host"), ("http://:8080/video", "no host"), ("rtsps:///stream", "no host"),
    ("http://[::1", "not a valid stream URL"), ("rtsp://cam:99999/x", "not a valid stream URL"),
    ("rtsp://cam:0/x", "port 0"), ("https://cam:port/x", "not a valid stream URL"),
])  # fmt: skip
def test_a_url_that_can_never_open_is_refused_by_check_and_serve(url, words):
    r = cli("serve", "--check", "--model", TINY, "--source", url, "-d", "cpu")
    assert r.exit_code == 1 and words in r.output.strip().splitlines()[-1], r.output
    # serve itself: refused at once (before: source_lost events with backoff, forever)
    p = run_edgekit("serve", "--model", TINY, "--source", url, "-d", "cpu", "--worker", "inline",
                    timeout=60)  # fmt: skip
    assert p.returncode == 1 and words in p.stderr.strip().splitlines()[-1], p.stderr


@pytest.mark.parametrize("url", ["rtsp://cam.local/stream", "http://10.0.0.5:8080/video",
                                 "rtsp://user:pw@[fe80::1]:554/x", "udp://@:1234",
                                 "udp://@239.0.0.1:1234", "tcp://:9000?listen"])  # fmt: skip
def test_urls_that_may_open_are_accepted_unopened(url):
    src = OpenCVSource(url)
    assert src.kind == "url" and src.live


@settings(max_examples=40)
@given(scheme=st.sampled_from(["rtsp", "http", "https", "rtmp", "udp", "tcp", "RTSP"]),
       rest=st.text(st.characters(blacklist_categories=("Cs",)), max_size=30))  # fmt: skip
def test_any_url_is_accepted_or_refused_in_one_edgekit_error(scheme, rest):
    try:
        OpenCVSource(f"{scheme}://{rest}")
    except EdgekitError as e:
        assert "\n" not in e.message.replace(rest, "")


def test_a_debug_log_level_the_user_set_is_kept(videos):
    code = ("import os; from edgekit.stream.sources import OpenCVSource; s = OpenCVSource("
            f"{str(videos['v.mp4'])!r}); s.open(); s.close(); "
            "print(os.environ['OPENCV_FFMPEG_LOGLEVEL'], os.environ['OPENCV_LOG_LEVEL'])")
    env = {"OPENCV_FFMPEG_LOGLEVEL": "32", "OPENCV_LOG_LEVEL": "DEBUG"}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, **env))  # fmt: skip
    assert p.stdout.strip().splitlines()[-1].split() == ["32", "DEBUG"], p.stderr
