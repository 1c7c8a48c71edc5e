"""serve on a detection bundle, end to end: a real int8 detector (tests/detect's tiny anchor-free
model, converted by TensorFlow in a subprocess), real MJPG videos made with OpenCV, the installed
`edgekit serve` script, a real mosquitto and a headless Chromium whose screenshot is checked
where the boxes must be."""

from __future__ import annotations

import io
import json
import re
import subprocess
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image, ImageColor

from edgekit.stream import serve
from edgekit.stream.config import from_dict
from edgekit.stream.draw import label_color
from edgekit.stream.sinks import CallbackSink
from edgekit.stream.sources import OpenCVSource
from tests.detect.conftest import scene, tiny_detector, write_detect_bundle  # noqa: F401

from .conftest import edgekit_cmd, free_port
from .test_http import chromium
from .test_mqtt import Subscriber, broker  # noqa: F401

SIZE = 320  # frames are 320x320: the detector's 32x32 input is a 4x4 grid of 80-px cells


def cell(name, row, col):
    return (name, 80 * col, 80 * row, 80 * col + 80, 80 * row + 80)


# The 40-frame video, 10 frames per scene: red; red + green; nothing; blue.
SCENES = [
    [cell("red", 1, 1)],
    [cell("red", 1, 1), cell("green", 2, 3)],
    [],
    [cell("blue", 0, 2)],
]


def write_video(path, scenes, frames_per_scene=10, fps=10.0):
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (SIZE, SIZE))
    assert writer.isOpened()
    for squares in scenes:
        bgr = cv2.cvtColor(scene(SIZE, SIZE, squares), cv2.COLOR_RGB2BGR)
        for _ in range(frames_per_scene):
            writer.write(bgr)
    writer.release()
    return path


@pytest.fixture(scope="module")
def bundle(tiny_detector, tmp_path_factory):  # noqa: F811
    return write_detect_bundle(tmp_path_factory.mktemp("serve_detect") / "det", tiny_detector)


@pytest.fixture(scope="module")
def scenes_avi(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("video") / "scenes.avi", SCENES)


def config_file(tmp_path, bundle, source, extra=""):
    path = tmp_path / "edgekit.toml"
    path.write_text(
        f'[model]\npath = "{bundle}"\ndevice = "cpu"\n[source]\nuri = "{source}"\n'
        f"[pipeline]\nhold_s = 0.0\n{extra}"
    )
    return path


def near(box, expected, tol=12.0):
    return all(abs(a - b) <= tol for a, b in zip(box, expected))


@pytest.mark.parametrize("worker", ["inline", "process"])
def test_serve_detection_json_lines(tmp_path, bundle, scenes_avi, worker):
    # "process": the detector runs in serve's Edge TPU worker process (here on the CPU), its
    # Detections records come back pickled: same lines.
    config = config_file(tmp_path, bundle, scenes_avi, f'[worker]\nmode = "{worker}"\n')
    out = subprocess.run([*edgekit_cmd(), "serve", "--config", str(config)],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and "Warning" not in out.stderr, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    results = [r for r in lines if "frame" in r]
    assert [r["frame"] for r in results] == list(range(1, 41))
    r = results[14]  # red + green
    assert set(r) == {"frame", "timestamp", "detections", "counts", "decode_ms", "image_size",
                      "inference_ms", "latency_ms"}  # fmt: skip
    assert r["counts"] == {"green": 1, "red": 1} and r["image_size"] == [SIZE, SIZE]
    by_label = {d["label"]: d for d in r["detections"]}
    assert set(by_label["red"]) == {"id", "label", "score", "box"}
    assert by_label["red"]["id"] == 0 and by_label["green"]["id"] == 1
    assert by_label["red"]["score"] > 0.9
    assert near(by_label["red"]["box"], (80, 80, 160, 160)), by_label["red"]["box"]
    assert near(by_label["green"]["box"], (240, 160, 320, 240)), by_label["green"]["box"]
    assert all(x["detections"] == [] and x["counts"] == {} for x in results[20:30])
    blue = results[35]["detections"]
    assert [d["label"] for d in blue] == ["blue"] and near(blue[0]["box"], (160, 0, 240, 80))
    assert results[5]["latency_ms"] >= results[5]["inference_ms"] > 0
    # Events in order, each at the frame where it happens (hold_s = 0).
    events = [(e["event"], e.get("label")) for e in lines if "event" in e]
    assert events == [("label_appeared", "red"), ("label_appeared", "green"),
                      ("label_left", "red"), ("label_left", "green"),
                      ("label_appeared", "blue"), ("source_ended", None)]  # fmt: skip
    appeared_green = lines.index(next(e for e in lines if e.get("event") == "label_appeared"
                                      and e["label"] == "green"))  # fmt: skip
    assert lines[appeared_green - 1]["frame"] == 11, "the event follows its frame's line"


def test_serve_detection_mqtt_counts_events_and_discovery(tmp_path, bundle, scenes_avi,
                                                          broker):  # noqa: F811  # fmt: skip
    extra = (f'[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {broker}\n'
             'topic = "cam/door"\nmin_interval_s = 0.0\ndiscovery = true\n'
             'discovery_prefix = "ha"\n')  # fmt: skip
    config = config_file(tmp_path, bundle, scenes_avi, extra)
    sub, ha = Subscriber(broker, "cam/door"), Subscriber(broker, "ha")
    out = subprocess.run([*edgekit_cmd(), "serve", "--config", str(config), "--no-json-lines"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    sub.wait_for(lambda m: m == ("cam/door/status", "offline", False))
    events = [json.loads(p) for t, p, _ in sub.messages if t == "cam/door/event"]
    assert [(e["event"], e.get("label")) for e in events][:5] == [
        ("label_appeared", "red"), ("label_appeared", "green"), ("label_left", "red"),
        ("label_left", "green"), ("label_appeared", "blue")]  # fmt: skip
    # publish = "change": a detector's result goes out when its counts change.
    frames = [json.loads(p)["frame"] for t, p, _ in sub.messages if t == "cam/door/result"]
    assert frames == [1, 11, 21, 31]
    counts = [json.loads(p) for t, p, _ in sub.messages if t == "cam/door/counts"]
    # The video ends with blue in view: the clean stop turns it off (tests/stream/test_mqtt_stop).
    assert counts == [{"red": 1}, {"green": 1, "red": 1}, {}, {"blue": 1}, {}]
    presence = [(t.rsplit("/", 1)[1], p) for t, p, _ in sub.messages if "/presence/" in t]
    assert presence == [("red", "ON"), ("green", "ON"), ("red", "OFF"), ("green", "OFF"),
                        ("blue", "ON"), ("blue", "OFF")]  # fmt: skip
    per_label = [(t.rsplit("/", 1)[1], p) for t, p, _ in sub.messages if "/count/" in t]
    assert per_label[-2:] == [("blue", "1"), ("blue", "0")] and ("red", "0") in per_label
    for label in ("red", "green", "blue"):
        ha.wait_for(lambda m, lb=label: m[0] == f"ha/sensor/cam_door/{lb}_count/config")
        topic = f"ha/binary_sensor/cam_door/{label}_presence/config"
        ha.wait_for(lambda m, t=topic: m[0] == t)
        cfg = json.loads(next(p for t, p, _ in ha.messages if t == topic))
        assert cfg["state_topic"] == f"cam/door/presence/{label}"
        assert cfg["availability_topic"] == "cam/door/status"
        assert cfg["device"]["model"] == "det" and cfg["device"]["identifiers"] == ["cam_door"]
    sub.close()
    ha.close()


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


@pytest.fixture(scope="module")
def page_server(bundle, tmp_path_factory):
    """serve.run on a looping 10-fps video of a red and a blue square, with HTTP."""
    avi = write_video(tmp_path_factory.mktemp("video") / "static.avi",
                      [[cell("red", 1, 1), cell("blue", 2, 2)]], frames_per_scene=20)  # fmt: skip
    port = free_port()
    stop, first = threading.Event(), threading.Event()
    results = []

    def on_result(r):
        results.append(r)
        if len(results) >= 30:  # 3 s: a few points in the charts
            first.set()

    cfg = from_dict({"model": {"path": str(bundle), "device": "cpu"},
                     "output": {"json_lines": False},
                     "source": {"realtime": True},
                     "http": {"enabled": True, "listen": f"127.0.0.1:{port}"}})  # fmt: skip
    source = OpenCVSource(str(avi), loop=True, fps=0)
    t = threading.Thread(target=serve.run, args=(cfg,), daemon=True,
                         kwargs={"stop": stop, "source": source,
                                 "extra_sinks": [CallbackSink(on_result)]})  # fmt: skip
    t.start()
    assert first.wait(60)
    yield f"http://127.0.0.1:{port}", results
    stop.set()
    t.join(10)
    assert not t.is_alive()


def browser(tmp_path, url, *args):
    return subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1600,900",
         "--virtual-time-budget=4000", *args, url],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip


def rgb_of(color):
    return np.array(ImageColor.getrgb(color), dtype=int)


def test_status_page_draws_the_boxes_and_charts(page_server, tmp_path):
    base, results = page_server
    latest = json.loads(get(base + "/latest"))
    boxes = {d["label"]: d["box"] for d in latest["result"]["detections"]}
    assert set(boxes) == {"red", "blue"} and latest["in_view"] == {"blue": 1, "red": 1}
    shot = tmp_path / "page.png"
    out = browser(tmp_path, base + "/", f"--screenshot={shot}")
    assert out.returncode == 0 and shot.exists(), out.stderr[-2000:]
    px = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert px.shape[:2] == (900, 1600)
    # Where the frame is on screen: its black background, inside the left column (the
    # left 3/5 of the width; the event thumbnails on the right are black too).
    left = px[:, :880]
    ys, xs = np.nonzero(left.max(axis=2) < 8)
    top, bottom, x_left, x_right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    scale = (x_right - x_left) / SIZE
    assert scale > 1.5 and abs((bottom - top) / SIZE - scale) < 0.05, (top, bottom, x_left)

    def at(x, y):
        return px[int(round(top + y * scale)), int(round(x_left + x * scale))]

    for label, (x0, y0, x1, y1) in boxes.items():
        colour = rgb_of(label_color(label))
        # Along the left and bottom edges (outside the square there is only black frame):
        # the overlay's stroke in the label's colour.
        for f in (0.3, 0.5, 0.7):
            left_edge = at(x0, y0 + f * (y1 - y0))
            bottom_edge = at(x0 + f * (x1 - x0), y1)
            assert np.abs(left_edge - colour).sum() < 90, (label, "left", left_edge, colour)
            assert np.abs(bottom_edge - colour).sum() < 90, (label, "bottom", bottom_edge)
        # Inside: the square itself (pure red / blue from the frame), not the stroke.
        inside = at((x0 + x1) / 2, (y0 + y1) / 2)
        assert np.abs(inside - rgb_of(label)).sum() < 120, (label, inside)
        # Well outside the box on the left: the frame's black.
        assert at(x0 - 15 / scale - 6, (y0 + y1) / 2).max() < 40
    # Charts in the right column: the fps line and the per-label lines in the label colours.
    right = px[:, 960:].reshape(-1, 3)

    def pixels_of(color):
        return int((np.abs(right - rgb_of(color)).sum(axis=1) < 40).sum())

    # A service up for a few seconds covers a sliver of the 5-minute axis: a few pixels (3 in
    # one CI run, 4+ in others, by how long the page had been up); the DOM check below asserts
    # the line itself.
    assert pixels_of("#3fb950") >= 1, "fps chart line"
    assert pixels_of(label_color("red")) > 30 and pixels_of(label_color("blue")) > 30

    dom = browser(tmp_path, base + "/", "--dump-dom").stdout
    assert re.search(r'<h1 id="label">1 blue · 1 red</h1>', dom), dom[:3000]
    assert dom.count("<rect") >= 4, "two boxes and two label tags in the overlay"
    charts = dict(re.findall(r'<svg class="chart" id="(c-[a-z]+)"[^>]*>(.*?)</svg>', dom, re.S))
    assert re.search(r'<(polyline|circle)[^>]*(stroke|fill)="#3fb950"', charts["c-fps"])
    assert len(re.findall(r"<(polyline|circle)", charts["c-lat"])) >= 2, "mean and max"
    for label in ("red", "blue"):
        assert re.search(f'<(polyline|circle)[^>]*"{label_color(label)}"', charts["c-labels"])
    thumbs = re.findall(r'<img src="(/thumb/\d+\.jpg)"', dom)
    assert thumbs and "label appeared" in dom
    thumb = np.asarray(Image.open(io.BytesIO(get(base + thumbs[-1]))).convert("RGB")).astype(int)
    assert thumb.shape[1] == 240
    orange = (np.abs(thumb - rgb_of(label_color("red"))).sum(axis=2) < 90).sum()
    assert orange > 50, "the thumbnail has the boxes drawn in"


def test_detection_endpoints(page_server):
    base, results = page_server
    metrics = get(base + "/metrics").decode()
    samples = dict(line.rsplit(" ", 1) for line in metrics.splitlines()
                   if line and not line.startswith("#"))  # fmt: skip
    assert samples['edgekit_objects{label="red"}'] == "1"
    assert samples['edgekit_label_present{label="blue"}'] == "1"
    assert int(samples['edgekit_label_appearances_total{label="red"}']) == 1
    assert "# TYPE edgekit_label_appearances_total counter" in metrics
    history = json.loads(get(base + "/history.json?res=1"))
    assert history["bucket_s"] == 1.0 and len(history["t"]) == 300
    assert set(history["labels"]) == {"red", "blue"}
    known = [v for v in history["labels"]["red"] if v is not None]
    assert known and all(v == 1.0 for v in known)
    assert any(v for v in history["fps"] if v)
    assert len(json.loads(get(base + "/history.json"))["t"]) == 360
    events = json.loads(get(base + "/events.json?limit=5"))
    assert {e["label"] for e in events if e["event"] == "label_appeared"} == {"red", "blue"}
    boxed = Image.open(io.BytesIO(get(base + "/snapshot.jpg?boxes=1")))
    plain = Image.open(io.BytesIO(get(base + f"/snapshot.jpg?f={results[-1].frame}")))
    assert boxed.size == plain.size == (SIZE, SIZE)
    diff = np.abs(np.asarray(boxed).astype(int) - np.asarray(plain).astype(int)).sum(axis=2)
    assert (diff > 100).sum() > 200, "boxes drawn into ?boxes=1"
    # Bad queries are answered 400 naming the parameter (tests/stream/test_http_params.py).
    for bad, name in (("/snapshot.jpg?f=abc&f=-1", "f"), ("/events.json?limit=-5", "limit"),
                      ("/history.json?res=0.001", "res")):  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as e:
            get(base + bad)
        assert e.value.code == 400 and json.loads(e.value.read())["parameter"] == name
    assert len(json.loads(get(base + "/events.json?limit=1"))) == 1
    for bad in ("/thumb/abc.jpg", "/thumb/99999999999.jpg", "/thumb/1.jpg/../x"):
        with pytest.raises(urllib.error.HTTPError) as e:
            get(base + bad)
        assert e.value.code == 404


def test_detection_options_are_checked_before_serving(bundle, scenes_avi):
    cases = [
        (["--hold", "nan"], "--hold = nan must be a finite number"),
        (["--hold", "-1"], "--hold = -1.0 must be between 0 and 86400"),
        (["--iou", "1.5"], "--iou = 1.5 must be between 0 and 1"),
        (["--max-detections", "1000000"], "--max-detections = 1000000 must be between"),
        (["--decoder", "yolov9"], "--decoder = 'yolov9' unknown"),
    ]
    for args, message in cases:
        out = subprocess.run([*edgekit_cmd(), "serve", "--model", str(bundle), "--source",
                              str(scenes_avi), *args], capture_output=True, text=True,
                             timeout=60)  # fmt: skip
        assert out.returncode in (1, 2), (args, out.stderr)
        err = [line for line in out.stderr.splitlines() if line.startswith("Error:")]
        assert len(err) == 1 and message in err[0], (args, out.stderr)
        assert "Traceback" not in out.stderr and out.stdout == ""


def test_faults_are_listed_with_thumbnails(bundle, scenes_avi):
    from .stream_faults import FlakySource

    port = free_port()
    source = FlakySource(OpenCVSource(str(scenes_avi), loop=True), lose_at={15},
                         reopen_failures=1)  # fmt: skip
    cfg = from_dict({"model": {"path": str(bundle), "device": "cpu"},
                     "output": {"json_lines": False}, "pipeline": {"hold_s": 0.0},
                     "source": {"backoff_s": 0.01},
                     "http": {"enabled": True, "listen": f"127.0.0.1:{port}"}})  # fmt: skip
    seen, done = [], threading.Event()

    def on_event(e):
        seen.append(e.kind)
        if e.kind == "source_reconnected":
            done.set()

    stop = threading.Event()
    t = threading.Thread(target=serve.run, args=(cfg,), daemon=True,
                         kwargs={"stop": stop, "source": source,
                                 "extra_sinks": [CallbackSink(on_event=on_event)]})  # fmt: skip
    t.start()
    try:
        assert done.wait(60), seen
        events = json.loads(get(f"http://127.0.0.1:{port}/events.json"))
        lost = next(e for e in events if e["event"] == "source_lost")
        thumb = Image.open(io.BytesIO(get(f"http://127.0.0.1:{port}" + lost["thumb"])))
    finally:
        stop.set()
        t.join(10)
    kinds = [e["event"] for e in events]  # newest first; capture and worker threads interleave
    assert kinds.count("source_lost") == 2 and "source_reconnected" in kinds
    assert {"red", "green"} <= {e.get("label") for e in events if e["event"] == "label_appeared"}
    assert "injected" in lost["message"] and lost["thumb"].startswith("/thumb/")
    # A fault's thumbnail is the latest frame at the time, with its boxes.
    assert thumb.format == "JPEG" and thumb.size == (240, 240)
