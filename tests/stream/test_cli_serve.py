"""`edgekit serve` as a user (or systemd) runs it: a subprocess of the installed script."""

from __future__ import annotations

import json
import signal
import subprocess
import time

from .conftest import edgekit_cmd


def serve(*args, timeout=120):
    return subprocess.run([*edgekit_cmd(), "serve", *args], capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def test_serve_video_prints_n_json_results(video_avi, small_model, labels_path):
    out = serve("--model", str(small_model), "--labels", str(labels_path),
                "--source", str(video_avi), "--max-frames", "12")  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    results = [r for r in lines if "frame" in r]
    assert len(results) == 12 and [r["frame"] for r in results] == list(range(1, 13))
    assert results[11]["classes"][0]["label"] == "macaw"
    assert "Traceback" not in out.stderr


def test_finite_file_stops_at_its_end(video_avi, small_model, labels_path):
    out = serve("--model", str(small_model), "--labels", str(labels_path),
                "--source", str(video_avi), "--max-frames", "1000", "--top-k", "1")  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert sum("frame" in r for r in lines) == 40
    assert lines[-1]["event"] == "source_ended"
    assert all(len(r["classes"]) == 1 for r in lines if "frame" in r)


def test_user_errors_are_one_line(tmp_path, video_avi, small_model):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nthresold = 0.5\n")
    cases = [
        (["--config", str(bad)], "unknown key model.thresold"),
        (["--model", str(small_model), "--source", str(tmp_path / "nope.avi")], "no such video"),
        (["--source", str(video_avi)], "no model given"),
        (["--model", str(tmp_path / "m.tflite"), "--source", str(video_avi)], "m.tflite"),
        (["--model", str(small_model), "--source", str(video_avi), "--http", "x:y"], "HOST:PORT"),
    ]
    for args, message in cases:
        out = serve(*args)
        assert out.returncode == 1, (args, out.stderr)
        err = [line for line in out.stderr.splitlines() if line.startswith("Error:")]
        assert len(err) == 1 and message in err[0], out.stderr
        assert "Traceback" not in out.stderr


def test_sigterm_stops_cleanly(video_avi, small_model, labels_path):
    proc = subprocess.Popen(
        [*edgekit_cmd(), "serve", "--model", str(small_model), "--labels", str(labels_path),
         "--source", str(video_avi), "--loop", "--realtime"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        first = proc.stdout.readline()
        assert json.loads(first)["frame"] >= 1
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        stop_s = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    print(f"stopped {stop_s:.2f} s after SIGTERM")  # shown with -s; bench scripts time it


def test_stream_modules_stay_light():
    import sys

    code = (
        "import sys, edgekit.cli.serve, edgekit.stream.serve, edgekit.stream.http, "
        "edgekit.stream.mqtt, edgekit.stream.sources, edgekit.stream.notify\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'cv2', 'paho', 'picamera2') "
        "if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr
