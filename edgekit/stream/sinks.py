"""Sinks: where results and events go. A sink is any object with ``on_result(result)``,
``on_event(event)`` and ``close()``; both callbacks run on the inference worker thread (events
also on the capture thread), so they must be quick and never block on the network
(see :mod:`edgekit.stream.http` and :mod:`edgekit.stream.mqtt` for the threaded ones).
"""

from __future__ import annotations

import json
import sys
import threading
from typing import IO, Callable


class Sink:
    """No-op base class."""

    def on_result(self, result) -> None:
        pass

    def on_event(self, event) -> None:
        pass

    def close(self) -> None:
        pass


class JsonLinesSink(Sink):
    """One compact JSON object per line: results (they have a ``"frame"`` key) and, with
    ``events``, events (they have an ``"event"`` key). Under systemd stdout is the journal.

    Each line is flushed immediately so a consumer (``| jq``, the journal) sees it at once.
    """

    def __init__(self, stream: IO[str] | None = None, events: bool = True):
        self.stream = stream if stream is not None else sys.stdout
        self.events = events
        self._lock = threading.Lock()  # results and events come from two threads

    def _write(self, data: dict) -> None:
        line = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        with self._lock:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except BrokenPipeError:  # `edgekit serve | head`: the reader went away
                self.events = False

    def on_result(self, result) -> None:
        self._write(result.to_dict())

    def on_event(self, event) -> None:
        if self.events:
            self._write(event.to_dict())


class CallbackSink(Sink):
    """Calls ``on_result(result)`` / ``on_event(event)`` functions (library users, tests)."""

    def __init__(
        self,
        on_result: Callable | None = None,
        on_event: Callable | None = None,
    ):
        self._on_result, self._on_event = on_result, on_event

    def on_result(self, result) -> None:
        if self._on_result:
            self._on_result(result)

    def on_event(self, event) -> None:
        if self._on_event:
            self._on_event(event)
