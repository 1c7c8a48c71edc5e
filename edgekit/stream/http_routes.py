"""The routes of serve's HTTP sink (:mod:`edgekit.stream.http`): each path to its view.

Query parameters are checked, never guessed: a malformed, out-of-range or repeated value of a
route's parameter is answered 400 with ``{"error": "...", "parameter": NAME}`` naming what is
accepted (a silent fallback to the default answered ``?limit=abc`` with 100 events and
``?res=60`` with 10-s buckets, as if they were right). Names a route does not take are ignored
(a cache-buster such as ``?t=1733...``), as are queries on routes without parameters.
"""

from __future__ import annotations

import json
import re
from http.server import BaseHTTPRequestHandler

from edgekit.stream.http_server import IDLE_TIMEOUT_S


class BadQuery(ValueError):
    """A query parameter the route cannot honour; ``parameter`` names it (None: the query)."""

    def __init__(self, message: str, parameter: str | None = None):
        super().__init__(message)
        self.parameter = parameter


def _query(path: str) -> tuple[str, list[tuple[str, str]]]:
    """(route, [(name, value), ...]); at most MAX_FIELDS fields (BadQuery beyond)."""
    from urllib.parse import parse_qsl

    route, _, q = path.partition("?")
    try:
        return route, parse_qsl(q, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        raise BadQuery(f"too many query parameters (at most {MAX_FIELDS})") from None


MAX_FIELDS = 8


def _flag(v: str) -> bool:
    if v.lower() not in ("0", "1", "true", "false"):
        raise ValueError
    return v.lower() in ("1", "true")


def _bounded(lo: int, hi: int):
    def parse(v: str) -> int:
        if not re.fullmatch(r"[0-9]{1,19}", v) or not lo <= int(v) <= hi:
            raise ValueError
        return int(v)

    return parse


def _res(v: str) -> float:
    if v not in ("1", "10"):
        raise ValueError
    return float(v)


# route -> {parameter: (parser, what is accepted)}; README "HTTP query parameters" lists them.
PARAMETERS = {
    "/history.json": {"res": (_res, "1 or 10 (seconds per bucket)")},
    "/events.json": {"limit": (_bounded(1, 100), "an integer 1-100 (events, newest first)")},
    "/snapshot.jpg": {
        "f": (_bounded(0, 2**63 - 1), "a frame number, an integer >= 0"),
        "boxes": (_flag, "1, 0, true or false"),
    },
}


def parameters(route: str, fields: list[tuple[str, str]]) -> dict:
    """The route's parameters parsed from the query ``fields``; BadQuery for a malformed,
    out-of-range or repeated one. Names the route does not take are ignored."""
    spec, out = PARAMETERS.get(route, {}), {}
    names = [name for name, _ in fields if name in spec]
    for name in names:
        if names.count(name) > 1:
            raise BadQuery(f"{route}: parameter {name} given {names.count(name)} times; "
                           "give it once", name)  # fmt: skip
    for name, value in fields:
        if name not in spec:
            continue
        parse, accepted = spec[name]
        try:
            out[name] = parse(value)
        except ValueError:
            shown = value if len(value) <= 40 else value[:40] + "..."
            raise BadQuery(
                f"{route}: bad value {shown!r} for parameter {name}: accepted {accepted}", name
            ) from None
    return out


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
            try:
                path, fields = _query(self.path)
                query = parameters(path, fields)
            except BadQuery as e:
                self._json(400, {"error": str(e), "parameter": e.parameter})
                return
            if path == "/":
                self._send(200, _page(sink).encode(), "text/html; charset=utf-8")
            elif path == "/history.json":
                res = query.get("res", 10.0)
                self._json(200, sink.history.to_dict(res))
            elif path == "/events.json":
                limit = query.get("limit", 100)
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
                data = sink.snapshot_jpeg(query.get("f"), query.get("boxes", False))
                self._jpeg(data, "no frame yet")
            else:
                self._json(404, {"error": f"no route {path}"})

    return Handler


def _page(sink) -> str:
    from edgekit.stream.page import render

    return render(sink.latest_dict(), sink.title)
