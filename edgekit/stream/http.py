"""HTTP sink: a status page, JSON, health and Prometheus metrics, served by the standard library
in a background thread. Binds 127.0.0.1 by default: it has no authentication, expose it through
a reverse proxy or an explicit ``--http 0.0.0.0:8080``.

Routes: ``/`` status page (:mod:`edgekit.stream.page`), ``/latest`` (last result as JSON, plus
stats and the labels in view), ``/healthz`` (200 while results flow, 503 when none for
``stale_after_s``), ``/metrics`` (Prometheus text format 0.0.4), ``/snapshot.jpg`` (the last
frame; ``?f=N`` frame N while it is among the last few, ``?boxes=1`` with the detection boxes
drawn), ``/history.json?res=1|10`` (per-second / per-10-s aggregates, :mod:`~.history`),
``/events.json?limit=N`` (recent events, newest first) and ``/thumb/ID.jpg`` (their thumbnails).
Memory is bounded: a few recent frames, the fixed history rings, the last 100 events.
"""

from __future__ import annotations

import collections
import json
import logging
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from edgekit.errors import EdgekitError
from edgekit.stream.history import EventLog, History, encode_jpeg
from edgekit.stream.pool import device_metrics
from edgekit.stream.sinks import Sink
from edgekit.stream.stats import Stats

log = logging.getLogger("edgekit.stream")


def parse_listen(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT``, ``:PORT`` or ``PORT`` -> (host, port); port 1-65535."""
    hint = "use HOST:PORT with a port 1-65535, e.g. 127.0.0.1:8080 or [::1]:8080"
    host, _, port = str(text).strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if not host:
            raise EdgekitError(f"bad HTTP address {text!r}", hint)
    elif ":" in host:
        raise EdgekitError(f"bad HTTP address {text!r}: IPv6 needs brackets", hint)
    host = host or default_host
    try:
        p = int(port)
        if not 1 <= p <= 65535:
            raise ValueError
    except ValueError:
        raise EdgekitError(f"bad HTTP address {text!r}", hint) from None
    return host, p


# A few idle or slow clients must not starve the status page, /healthz or /metrics: connections
# beyond MAX_CONNECTIONS are closed at once, and a client that sends nothing for IDLE_TIMEOUT_S
# is dropped. The backlog absorbs a burst of connects while the accept thread is busy.
MAX_CONNECTIONS = 256
IDLE_TIMEOUT_S = 10.0
BACKLOG = 128


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = BACKLOG

    def __init__(self, address, handler, max_connections: int = MAX_CONNECTIONS):
        host = address[0]
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)  # over the limit: close now, keep serving the rest
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address):
        """A client that disconnects early or times out is normal: no traceback per client."""
        import sys

        err = sys.exc_info()[1]
        if isinstance(err, (ConnectionError, TimeoutError, OSError)):
            return
        log.warning("HTTP request from %s failed: %s: %s", client_address[0],
                    type(err).__name__, err)  # fmt: skip


RECENT_FRAMES = 6  # frames kept for /snapshot.jpg?f=N (the page asks for the frame it has boxes of)


class HttpSink(Sink):
    """Serves the latest result. ``info()`` returns extra status (model, backend, degraded...)
    merged into ``/latest`` and shown on the page; ``presence`` (a
    :class:`~edgekit.stream.presence.Presence`) adds the held labels in view and the per-label
    metrics; ``title`` heads the page."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8080,
        stats: Stats | None = None,
        stale_after_s: float = 10.0,
        info: Callable[[], dict] | None = None,
        jpeg_quality: int = 80,
        presence=None,
        title: str = "edgekit",
        max_connections: int = MAX_CONNECTIONS,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
    ):
        self.stats = stats or Stats()
        self.stale_after_s = stale_after_s
        self.info = info or dict
        self.jpeg_quality = jpeg_quality
        self.presence, self.title = presence, title
        self.history, self.events = History(), EventLog()
        self._lock = threading.Lock()
        self._latest = None
        self._recent: collections.deque = collections.deque(maxlen=RECENT_FRAMES)
        self._jpeg: dict[tuple[int, bool], bytes] = {}  # (frame, boxes): encode once per frame
        try:
            self.server = _Server((host, port), _handler(self, idle_timeout_s), max_connections)
        except (OSError, OverflowError) as e:
            raise EdgekitError(
                f"cannot listen on {host}:{port} ({e})",
                "pick a free address: --http HOST:PORT, or [http] listen in the config",
            ) from None
        self.host, self.port = self.server.server_address[:2]
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
            name="edgekit-http", daemon=True,
        )  # fmt: skip
        self._thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def on_result(self, result) -> None:
        with self._lock:
            self._latest = result
            self._recent.append(result)
        self.history.add(result.timestamp, result.latency_ms, result.inference_ms, result.present)
        self.events.on_result(result)

    def on_event(self, event) -> None:
        self.events.on_event(event)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- views -------------------------------------------------------------------------------
    def latest_dict(self) -> dict:
        with self._lock:
            r = self._latest
        age = self.stats.last_result_age()
        out = {
            "result": r.to_dict() if r is not None else None,
            "stats": self.stats.snapshot(),
            "healthy": age is not None and age <= self.stale_after_s,
            "last_result_age_s": None if age is None else round(age, 3),
            **self.info(),
        }
        if self.presence is not None:
            out["in_view"] = self.presence.counts()  # held against flicker
        return out

    def health(self) -> tuple[int, dict]:
        age = self.stats.last_result_age()
        if age is None:
            reason = self.info().get("reason") or "no result yet"
            return 503, {"status": "starting", "detail": reason}
        if age > self.stale_after_s:
            reason = self.info().get("reason")
            return 503, {"status": "stale", "last_result_age_s": round(age, 3), "detail": reason}
        return 200, {"status": "ok", "last_result_age_s": round(age, 3), **self.info()}

    def snapshot_jpeg(self, frame: int | None = None, boxes: bool = False) -> bytes | None:
        """JPEG of frame ``frame`` if it is still among the recent ones, else of the latest;
        ``boxes`` draws the detections into it."""
        with self._lock:
            r = self._latest
            for old in self._recent:
                if old.frame == frame:
                    r = old
            key = (r.frame, bool(boxes)) if r is not None else None
            cached = self._jpeg.get(key)
        if r is None or r.rgb is None:
            return None
        if cached is not None:
            return cached
        data = encode_jpeg(r.rgb, r.detections if boxes else None, quality=self.jpeg_quality)
        with self._lock:
            if len(self._jpeg) >= 2 * RECENT_FRAMES:
                self._jpeg.pop(next(iter(self._jpeg)))
            self._jpeg[key] = data
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
        acc = s["accounting"]
        metric("edgekit_frames_captured_total", "counter", "Frames read from the source "
               "(= classified + dropped + failed + in the pipeline).",
               [("", acc["captured"])])  # fmt: skip
        metric("edgekit_frames_failed_total", "counter", "Frames whose inference failed "
               "(skipped, each reported).", [("", acc["failed"])])  # fmt: skip
        metric("edgekit_decode_errors_total", "counter", "Frames that failed to decode.",
               [("", events.get("decode_error", 0))])  # fmt: skip
        metric("edgekit_source_lost_total", "counter", "Times the camera/stream was lost.",
               [("", events.get("source_lost", 0))])  # fmt: skip
        metric("edgekit_worker_failures_total", "counter",
               "Inference worker processes that crashed or hung (each one is restarted).",
               [('{reason="crash"}', events.get("worker_crashed", 0)),
                ('{reason="hang"}', events.get("worker_hung", 0))])  # fmt: skip
        errors = dict(s["errors"]) or {"inference": 0}
        metric("edgekit_errors_total", "counter", "Errors by kind.",
               [(f'{{kind="{k}"}}', v) for k, v in sorted(errors.items())])  # fmt: skip
        metric("edgekit_fps", "gauge", "Results per second (recent window).", [("", s["fps"])])
        info = self.info()
        metric("edgekit_degraded", "gauge", "1 when running on the CPU after an Edge TPU "
               "failure.", [("", int(bool(info.get("degraded"))))])  # fmt: skip
        if isinstance(info.get("model"), dict):  # hot reload (edgekit.stream.reload)
            metric("edgekit_model_reloads_total", "counter", "Hot reloads of the model.",
                   [('{result="ok"}', events.get("model_reloaded", 0)),
                    ('{result="failed"}', events.get("reload_failed", 0))])  # fmt: skip
            sha = "".join(c for c in str(info["model"].get("sha256", "")) if c.isalnum())
            metric("edgekit_model_info", "gauge", "The bundle serving now (sha256 of its files).",
                   [(f'{{sha256="{sha}"}}', 1)])  # fmt: skip
        from edgekit.stream.devicehealth import metric_families

        for name, kind, help_, samples in metric_families(info.get("device_health"), events):
            if samples:  # a machine without a Coral or Pi flags shows no empty families
                metric(name, kind, help_, samples)
        for name, kind, help_, samples in device_metrics(info):  # several Edge TPUs
            metric(name, kind, help_, samples)
        if isinstance(info.get("mqtt"), dict):
            metric("edgekit_mqtt_connected", "gauge", "1 while connected to the MQTT broker.",
                   [("", int(bool(info["mqtt"].get("connected"))))])  # fmt: skip
            metric("edgekit_mqtt_disconnects_total", "counter", "MQTT broker outages.",
                   [("", events.get("mqtt_disconnected", 0))])  # fmt: skip
        if self.presence is not None:
            snap = self.presence.snapshot()
            metric("edgekit_objects", "gauge", "Objects (detection) or 1 for the reported class "
                   "(classification) per label in the latest frame.",
                   [(_labels(k), v) for k, v in snap["raw"].items()])  # fmt: skip
            metric("edgekit_label_present", "gauge", "1 while the label is in view (held "
                   "against flicker for hold_s).",
                   [(_labels(k), int(v > 0)) for k, v in snap["held"].items()])  # fmt: skip
            metric("edgekit_label_appearances_total", "counter", "Times each label appeared.",
                   [(_labels(k), v) for k, v in snap["appearances"].items()])  # fmt: skip
        buckets, count, total = self.stats.histogram()
        samples = [(f'_bucket{{le="{le:g}"}}', c) for le, c in buckets]
        samples += [('_bucket{le="+Inf"}', count), ("_sum", round(total, 6)), ("_count", count)]
        lines.append("# HELP edgekit_latency_seconds Capture to result latency.")
        lines.append("# TYPE edgekit_latency_seconds histogram")
        lines += [f"edgekit_latency_seconds{suffix} {v}" for suffix, v in samples]
        return "\n".join(lines) + "\n"


def _labels(label: str) -> str:
    """``{label="..."}`` with the exposition format's escapes (backslash, quote, newline)."""
    v = str(label).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{{label="{v}"}}'


def _query(path: str) -> tuple[str, dict[str, str]]:
    from urllib.parse import parse_qsl

    route, _, q = path.partition("?")
    return route, dict(parse_qsl(q)[:8])


def _int(text: str | None, default: int | None, lo: int, hi: int) -> int | None:
    try:
        v = int(text) if text is not None else default
    except ValueError:
        return default
    return v if v is None else min(max(v, lo), hi)


_THUMB = re.compile(r"/thumb/(\d{1,12})\.jpg")


def _handler(sink: HttpSink, idle_timeout_s: float = IDLE_TIMEOUT_S):
    class Handler(BaseHTTPRequestHandler):
        server_version = "edgekit"
        timeout = idle_timeout_s  # socket timeout: an idle or stalled client is dropped

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
            path, query = _query(self.path)
            if path == "/":
                self._send(200, _page(sink).encode(), "text/html; charset=utf-8")
            elif path == "/history.json":
                res = 1.0 if query.get("res") == "1" else 10.0
                self._json(200, sink.history.to_dict(res))
            elif path == "/events.json":
                limit = _int(query.get("limit"), 100, 1, 100)
                self._send(200, json.dumps(sink.events.to_list(limit)).encode(),
                           "application/json")  # fmt: skip
            elif _THUMB.fullmatch(path):
                data = sink.events.thumbnail(int(_THUMB.fullmatch(path).group(1)))
                if data is None:
                    self._json(404, {"error": "no such thumbnail (only recent ones are kept)"})
                else:
                    self._send(200, data, "image/jpeg")
            elif path == "/latest":
                self._json(200, sink.latest_dict())
            elif path == "/healthz":
                self._json(*sink.health())
            elif path == "/metrics":
                self._send(200, sink.metrics_text().encode(), "text/plain; version=0.0.4")
            elif path == "/snapshot.jpg":
                frame = _int(query.get("f"), None, 0, 2**62)
                data = sink.snapshot_jpeg(frame, query.get("boxes") in ("1", "true"))
                if data is None:
                    self._json(404, {"error": "no frame yet"})
                else:
                    self._send(200, data, "image/jpeg")
            else:
                self._json(404, {"error": f"no route {path}"})

    return Handler


def _page(sink: HttpSink) -> str:
    from edgekit.stream.page import render

    return render(sink.latest_dict(), sink.title)
