"""The HTTP sink with real clients: urllib for the API and a headless Chromium for the page."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
from PIL import Image

from edgekit.stream import serve
from edgekit.stream.config import from_dict
from edgekit.stream.http import HttpSink, parse_listen
from edgekit.stream.sinks import CallbackSink
from edgekit.stream.sources import OpenCVSource
from edgekit.stream.stats import Stats

from .conftest import free_port


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()


@pytest.fixture
def running(video_avi, classifier):
    """serve.run in a thread on a looping video with HTTP on a free port; yields (base, stop,
    results) once the first results are in."""
    port = free_port()
    stop, results, first = threading.Event(), [], threading.Event()

    def on_result(r):
        results.append(r)
        if len(results) >= 3:
            first.set()

    cfg = from_dict({"output": {"json_lines": False},
                     "http": {"enabled": True, "listen": f"127.0.0.1:{port}"},
                     "pipeline": {"stale_after_s": 1.0}})  # fmt: skip
    source = OpenCVSource(str(video_avi), loop=True, fps=0)
    t = threading.Thread(target=serve.run, args=(cfg,), daemon=True,
                         kwargs={"stop": stop, "classifier": classifier, "source": source,
                                 "extra_sinks": [CallbackSink(on_result)]})  # fmt: skip
    t.start()
    assert first.wait(30)
    yield f"http://127.0.0.1:{port}", stop, results
    stop.set()
    t.join(10)
    assert not t.is_alive()


def test_api_routes(running):
    base, _, results = running
    code, ctype, body = get(base + "/latest")
    latest = json.loads(body)
    assert code == 200 and ctype == "application/json"
    assert latest["result"]["frame"] >= 3 and latest["backend"] == "cpu"
    assert latest["stats"]["frames"] >= 3 and latest["healthy"] is True
    code, _, body = get(base + "/healthz")
    assert code == 200 and json.loads(body)["status"] == "ok"
    code, ctype, body = get(base + "/snapshot.jpg")
    assert code == 200 and ctype == "image/jpeg"
    assert Image.open(io.BytesIO(body)).size == (640, 480)
    code, ctype, body = get(base + "/metrics")
    text = body.decode()
    assert code == 200 and ctype.startswith("text/plain; version=0.0.4")
    samples = dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    assert int(samples["edgekit_frames_total"]) >= 3
    assert samples['edgekit_errors_total{kind="inference"}'] == "0"
    buckets = [int(v) for k, v in samples.items() if k.startswith("edgekit_latency_seconds_bucket")]
    assert buckets == sorted(buckets), "histogram buckets are cumulative"
    assert buckets[-1] == int(samples["edgekit_latency_seconds_count"])
    assert "# TYPE edgekit_latency_seconds histogram" in text
    assert get(base + "/nope")[0] == 404


def test_healthz_fails_when_frames_stop(monkeypatch):
    stats = Stats()
    sink = HttpSink("127.0.0.1", 0, stats, stale_after_s=0.2)
    try:
        base = sink.url.rstrip("/")
        code, _, body = get(base + "/healthz")
        assert code == 503 and json.loads(body)["status"] == "starting"
        assert get(base + "/snapshot.jpg")[0] == 404
        stats.record(latency_ms=12.0, inference_ms=5.0)
        assert get(base + "/healthz")[0] == 200
        time.sleep(0.3)
        code, _, body = get(base + "/healthz")
        assert code == 503 and json.loads(body)["status"] == "stale"
    finally:
        sink.close()


def test_parse_listen_errors():
    from edgekit.errors import EdgekitError

    assert parse_listen("8080") == ("127.0.0.1", 8080)
    assert parse_listen("0.0.0.0:80") == ("0.0.0.0", 80)
    with pytest.raises(EdgekitError, match="HOST:PORT"):
        parse_listen("localhost:http")


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "chromium is needed for this test: apt-get install -y chromium"
    return path


def render_page(url: str, tmp_path) -> subprocess.CompletedProcess:
    """The page at ``url`` as headless Chromium renders it after 3 s of its scripts
    (``.stdout`` is the DOM); no network but loopback, a fresh profile under ``tmp_path``."""
    return subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=3000", "--dump-dom", url],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip


def test_status_page_in_a_real_browser(running, tmp_path):
    base, _, results = running
    # The fps chart has a point once a 1-s bucket has run half a second: wait for it (Chromium's
    # virtual time budget runs the page's 2-s poll without waiting, so a page rendered right
    # after the first results drew an empty chart in one CI run).
    deadline = time.monotonic() + 20
    while not any(json.loads(get(base + "/history.json?res=1")[2])["fps"]):
        assert time.monotonic() < deadline, "no fps in /history.json after 20 s"
        time.sleep(0.2)
    out = render_page(base + "/", tmp_path)
    dom = out.stdout
    assert out.returncode == 0, out.stderr[-2000:]
    labels = {r.label for r in results}
    assert any(f'<h1 id="label">{label}</h1>' in dom for label in labels), dom[:2000]
    # Fields only the page's script fills in (the server renders "-"): the JS ran and fetched.
    assert '<span id="frame">-</span>' not in dom and '<span id="fps">-</span>' not in dom
    assert "frames flowing" in dom
    assert re.search(r'<img id="snap" src="[^"]*/snapshot\.jpg\?f=\d+"', dom)
    # The charts were drawn (an fps line) and the events list filled (the label appeared).
    fps_chart = re.search(r'<svg class="chart" id="c-fps"[^>]*>(.*?)</svg>', dom, re.S).group(1)
    assert "<polyline" in fps_chart or "<circle" in fps_chart
    assert "label appeared" in dom
