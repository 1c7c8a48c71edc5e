"""HTTP sink: a status page, JSON, health and Prometheus metrics, served by the standard library
in a background thread. Binds 127.0.0.1 by default: it has no authentication, expose it through
a reverse proxy or an explicit ``--http 0.0.0.0:8080``.

Routes: ``/`` status page (snapshot + label, refreshed by JS), ``/latest`` (last result as JSON,
plus stats), ``/healthz`` (200 while results flow, 503 when none for ``stale_after_s``),
``/metrics`` (Prometheus text format 0.0.4), ``/snapshot.jpg`` (the last classified frame).
"""

from __future__ import annotations

import html
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from edgekit.errors import EdgekitError
from edgekit.stream.sinks import Sink
from edgekit.stream.stats import Stats


def parse_listen(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``PORT`` -> (host, port)."""
    host, _, port = str(text).rpartition(":")
    host = host.strip("[]") or default_host
    try:
        p = int(port)
        if not 0 <= p <= 65535:
            raise ValueError
    except ValueError:
        raise EdgekitError(
            f"bad HTTP address {text!r}", "use HOST:PORT, e.g. 127.0.0.1:8080"
        ) from None
    return host, p


class HttpSink(Sink):
    """Serves the latest result. ``info()`` returns extra status (model, backend, degraded...)
    merged into ``/latest`` and shown on the page."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8080,
        stats: Stats | None = None,
        stale_after_s: float = 10.0,
        info: Callable[[], dict] | None = None,
        jpeg_quality: int = 80,
    ):
        self.stats = stats or Stats()
        self.stale_after_s = stale_after_s
        self.info = info or dict
        self.jpeg_quality = jpeg_quality
        self._lock = threading.Lock()
        self._latest = None
        self._jpeg: tuple[int, bytes] | None = None  # (frame, bytes): encode once per frame
        try:
            self.server = ThreadingHTTPServer((host, port), _handler(self))
        except OSError as e:
            raise EdgekitError(
                f"cannot listen on {host}:{port} ({e})", "pick another --http"
            ) from None
        self.server.daemon_threads = True
        self.host, self.port = self.server.server_address[:2]
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
            name="edgekit-http", daemon=True,
        )  # fmt: skip
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def on_result(self, result) -> None:
        with self._lock:
            self._latest = result

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- views -------------------------------------------------------------------------------
    def latest_dict(self) -> dict:
        with self._lock:
            r = self._latest
        age = self.stats.last_result_age()
        return {
            "result": r.to_dict() if r is not None else None,
            "stats": self.stats.snapshot(),
            "healthy": age is not None and age <= self.stale_after_s,
            "last_result_age_s": None if age is None else round(age, 3),
            **self.info(),
        }

    def health(self) -> tuple[int, dict]:
        age = self.stats.last_result_age()
        if age is None:
            return 503, {"status": "starting", "detail": "no result yet"}
        if age > self.stale_after_s:
            return 503, {"status": "stale", "last_result_age_s": round(age, 3)}
        return 200, {"status": "ok", "last_result_age_s": round(age, 3), **self.info()}

    def snapshot_jpeg(self) -> bytes | None:
        with self._lock:
            r, cached = self._latest, self._jpeg
        if r is None or r.rgb is None:
            return None
        if cached is not None and cached[0] == r.frame:
            return cached[1]
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(r.rgb).save(buf, format="JPEG", quality=self.jpeg_quality)
        data = buf.getvalue()
        with self._lock:
            self._jpeg = (r.frame, data)
        return data

    def metrics_text(self) -> str:
        """Prometheus text exposition format, written by hand (no client library needed)."""
        s = self.stats.snapshot()
        events = s["events"]
        lines = []

        def metric(name, kind, help_, samples):
            lines.append(f"# HELP {name} {help_}")
            lines.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                lines.append(f"{name}{labels} {value}")

        metric("edgekit_frames_total", "counter", "Frames classified.", [("", s["frames"])])
        metric("edgekit_frames_dropped_total", "counter",
               "Frames replaced by a newer one.", [("", s["dropped"])])  # fmt: skip
        metric("edgekit_decode_errors_total", "counter", "Frames that failed to decode.",
               [("", events.get("decode_error", 0))])  # fmt: skip
        metric("edgekit_source_lost_total", "counter", "Times the camera/stream was lost.",
               [("", events.get("source_lost", 0))])  # fmt: skip
        errors = dict(s["errors"]) or {"inference": 0}
        metric("edgekit_errors_total", "counter", "Errors by kind.",
               [(f'{{kind="{k}"}}', v) for k, v in sorted(errors.items())])  # fmt: skip
        metric("edgekit_fps", "gauge", "Results per second (recent window).", [("", s["fps"])])
        info = self.info()
        metric("edgekit_degraded", "gauge", "1 when running on the CPU after an Edge TPU "
               "failure.", [("", int(bool(info.get("degraded"))))])  # fmt: skip
        buckets, count, total = self.stats.histogram()
        samples = [(f'_bucket{{le="{le:g}"}}', c) for le, c in buckets]
        samples += [('_bucket{le="+Inf"}', count), ("_sum", round(total, 6)), ("_count", count)]
        lines.append("# HELP edgekit_latency_seconds Capture to result latency.")
        lines.append("# TYPE edgekit_latency_seconds histogram")
        lines += [f"edgekit_latency_seconds{suffix} {v}" for suffix, v in samples]
        return "\n".join(lines) + "\n"


def _handler(sink: HttpSink):
    class Handler(BaseHTTPRequestHandler):
        server_version = "edgekit"

        def log_message(self, format, *args):
            pass

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, code: int, data: dict) -> None:
            self._send(code, json.dumps(data).encode(), "application/json")

        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path == "/":
                self._send(200, _page(sink).encode(), "text/html; charset=utf-8")
            elif path == "/latest":
                self._json(200, sink.latest_dict())
            elif path == "/healthz":
                self._json(*sink.health())
            elif path == "/metrics":
                self._send(200, sink.metrics_text().encode(), "text/plain; version=0.0.4")
            elif path == "/snapshot.jpg":
                data = sink.snapshot_jpeg()
                if data is None:
                    self._json(404, {"error": "no frame yet"})
                else:
                    self._send(200, data, "image/jpeg")
            else:
                self._json(404, {"error": f"no route {path}"})

    return Handler


def _page(sink: HttpSink) -> str:
    # The label is rendered on the server (readable without JS); the script then refreshes
    # every field and the snapshot once a second.
    d = sink.latest_dict()
    r = d["result"]
    label = html.escape(str(r["label"])) if r else "waiting for the first frame"
    return _PAGE.replace("{{LABEL}}", label)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edgekit</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;background:#111;color:#eee}
img{max-width:100%;border:1px solid #444;background:#222;min-height:120px}
h1{font-size:2em;margin:.3em 0} table{border-collapse:collapse} td{padding:.15em .8em .15em 0}
.bad{color:#f66} .ok{color:#6c6} small{color:#999} a{color:#8cf}
</style></head><body>
<img id="snap" src="/snapshot.jpg" alt="latest frame">
<h1 id="label">{{LABEL}}</h1>
<div id="health" class="ok"></div>
<table>
<tr><td>frame</td><td id="frame">-</td></tr>
<tr><td>fps</td><td id="fps">-</td></tr>
<tr><td>latency p50 / p99</td><td id="latency">-</td></tr>
<tr><td>inference p50</td><td id="inference">-</td></tr>
<tr><td>dropped</td><td id="dropped">-</td></tr>
<tr><td>backend</td><td id="backend">-</td></tr>
</table>
<ol id="classes"></ol>
<small><a href="/latest">/latest</a> <a href="/metrics">/metrics</a>
<a href="/healthz">/healthz</a></small>
<script>
const $ = (id) => document.getElementById(id);
async function refresh() {
  try {
    const d = await (await fetch("/latest", {cache: "no-store"})).json();
    const r = d.result, s = d.stats;
    if (r) {
      $("label").textContent = r.label === null ? "(nothing above threshold)" : r.label;
      $("frame").textContent = r.frame;
      $("snap").src = "/snapshot.jpg?f=" + r.frame;
      $("classes").innerHTML = "";
      for (const c of r.classes) {
        const li = document.createElement("li");
        li.textContent = c.label + " " + (100 * c.score).toFixed(1) + "%";
        $("classes").appendChild(li);
      }
    }
    $("fps").textContent = s.fps.toFixed(1);
    $("latency").textContent = s.latency_ms.p50 === null ? "-" :
        s.latency_ms.p50 + " / " + s.latency_ms.p99 + " ms";
    $("inference").textContent = s.inference_ms.p50 === null ? "-" : s.inference_ms.p50 + " ms";
    $("dropped").textContent = s.dropped;
    $("backend").textContent = (d.backend || "?") + (d.degraded ? " (DEGRADED: CPU fallback)" : "");
    $("health").textContent = d.healthy ? "frames flowing" : "NO FRAMES";
    $("health").className = d.healthy ? "ok" : "bad";
  } catch (e) {
    $("health").textContent = "server unreachable"; $("health").className = "bad";
  }
}
refresh(); setInterval(refresh, 1000);
</script></body></html>
"""
