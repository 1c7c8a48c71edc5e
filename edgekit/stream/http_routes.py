"""The routes of serve's HTTP sink (:mod:`edgekit.stream.http`): each path to its view, with
query parameters clamped (a bad number falls back to the default)."""

from __future__ import annotations

import json
import re
from http.server import BaseHTTPRequestHandler

from edgekit.stream.http_server import IDLE_TIMEOUT_S


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


def handler_class(sink, idle_timeout_s: float = IDLE_TIMEOUT_S):
    """The request handler class for ``sink`` (an :class:`~edgekit.stream.http.HttpSink`):
    every route, GET and HEAD; a client idle for ``idle_timeout_s`` is dropped."""

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

        def _json(self, code: int, data: dict | list) -> None:
            self._send(code, json.dumps(data).encode(), "application/json")

        def _jpeg(self, data: bytes | None, missing: str) -> None:
            """The image, or 404 with ``missing`` as the error when there is none."""
            if data is None:
                self._json(404, {"error": missing})
            else:
                self._send(200, data, "image/jpeg")

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
                self._json(200, sink.events.to_list(limit))
            elif _THUMB.fullmatch(path):
                data = sink.events.thumbnail(int(_THUMB.fullmatch(path).group(1)))
                self._jpeg(data, "no such thumbnail (only recent ones are kept)")
            elif path == "/latest":
                self._json(200, sink.latest_dict())
            elif path == "/healthz":
                self._json(*sink.health())
            elif path == "/metrics":
                self._send(200, sink.metrics_text().encode(), "text/plain; version=0.0.4")
            elif path == "/snapshot.jpg":
                frame = _int(query.get("f"), None, 0, 2**62)
                data = sink.snapshot_jpeg(frame, query.get("boxes") in ("1", "true"))
                self._jpeg(data, "no frame yet")
            else:
                self._json(404, {"error": f"no route {path}"})

    return Handler


def _page(sink) -> str:
    from edgekit.stream.page import render

    return render(sink.latest_dict(), sink.title)
