"""HTTP sink: a status page, JSON, health and Prometheus metrics, served by the standard library
in a background thread. Binds 127.0.0.1 by default: it has no authentication, expose it through
a reverse proxy or an explicit ``--http 0.0.0.0:8080``.

Routes: ``/`` status page (:mod:`edgekit.stream.page`), ``/latest`` (last result as JSON, plus
stats and the labels in view), ``/healthz`` (200 while results flow, 503 when none for
``stale_after_s``), ``/metrics`` (Prometheus text format 0.0.4), ``/snapshot.jpg`` (the last
frame; ``?f=N`` frame N while it is among the last few, ``?boxes=1`` with the detection boxes
drawn), ``/history.json?res=1|10`` (per-second / per-10-s aggregates, :mod:`~.history`),
``/events.json?limit=N`` (recent events, newest first) and ``/thumb/ID.jpg`` (their thumbnails).
A bad parameter value is answered 400 naming it (:data:`~.http_routes.PARAMETERS`).
Memory is bounded: a few recent frames, the fixed history rings, the last 100 events.
The server is :mod:`~.http_server`, the routes :mod:`~.http_routes`, ``/metrics``
:mod:`~.http_metrics`.
"""

from __future__ import annotations

import collections
import threading
from typing import Callable

from edgekit.errors import EdgekitError
from edgekit.stream.history import EventLog, History, encode_jpeg
from edgekit.stream.http_metrics import metrics_text
from edgekit.stream.http_routes import handler_class
from edgekit.stream.http_server import (  # noqa: F401 - parse_listen: its import path
    IDLE_TIMEOUT_S,
    MAX_CONNECTIONS,
    BoundedServer,
    parse_listen,
)
from edgekit.stream.sinks import Sink
from edgekit.stream.stats import Stats

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
            handler = handler_class(self, idle_timeout_s)
            self.server = BoundedServer((host, port), handler, max_connections)
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
        """Prometheus text exposition format (:mod:`~.http_metrics`)."""
        return metrics_text(self.stats, self.info, self.presence)
