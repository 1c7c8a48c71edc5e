"""The inference worker: takes the newest frame, calls ``infer`` on it, hands results to sinks.

The pipeline knows nothing about models: ``infer(rgb)`` is any callable returning a record with
``inference_ms`` and ``to_dict()`` (a :class:`~edgekit.classify.Classification` with
``"classes"``, or a detection record with ``"detections"``); the :class:`Result` is built from
that dict alone. Sinks are callbacks (see :mod:`edgekit.stream.sinks`): ``on_result(Result)``
and ``on_event(Event)``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from edgekit.stream.capture import CaptureThread
from edgekit.stream.stats import Stats

log = logging.getLogger("edgekit.stream")


@dataclass(frozen=True)
class Result:
    """One processed frame: the JSON line format (``to_dict``).

    ``frame`` is the capture index, ``timestamp`` the capture time (s since the epoch),
    ``inference_ms`` the model's time, ``latency_ms`` capture to result. ``rgb`` is the frame,
    for snapshots only.

    Classification: ``classes`` the top-k ``{"id", "label", "score"}`` dicts, best first,
    ``label`` the reported (smoothed) label (None when no class passed the threshold).
    Detection: ``detections`` the ``{"id", "label", "score", "box": [x0, y0, x1, y1]}`` dicts
    (pixels of the frame), ``counts`` ``{label: n}``; ``classes`` is empty, ``label`` None.
    A cascade's detections also carry their crop's ``classes``, and ``counts`` counts the
    crops' top class (the species) instead of the detector's label.
    ``extra`` holds the record's other fields (e.g. ``decode_ms``), copied into the line."""

    frame: int
    timestamp: float
    classes: tuple[dict, ...]
    inference_ms: float
    latency_ms: float
    label: str | None
    rgb: np.ndarray | None = field(default=None, repr=False, compare=False)
    detections: tuple[dict, ...] | None = None
    counts: dict[str, int] | None = None
    extra: dict = field(default_factory=dict)

    @property
    def task(self) -> str:
        return "classify" if self.detections is None else "detect"

    @property
    def present(self) -> dict[str, int]:
        """What is in view, one shape for both tasks: ``{label: count}`` (detection: objects
        per label; classification: the reported label, count 1)."""
        if self.counts is not None:
            return dict(self.counts)
        return {self.label: 1} if self.label is not None else {}

    def to_dict(self) -> dict:
        head = {"frame": self.frame, "timestamp": round(self.timestamp, 6)}
        tail = {"inference_ms": round(self.inference_ms, 3),
                "latency_ms": round(self.latency_ms, 3)}  # fmt: skip
        if self.detections is None:
            return {**head, "classes": [dict(c) for c in self.classes], **tail,
                    "label": self.label}  # fmt: skip
        return {**head, "detections": [dict(d) for d in self.detections],
                "counts": dict(self.counts or {}), **self.extra, **tail}  # fmt: skip


# Record fields the pipeline measures or reports itself (not copied into the line).
_OWN_FIELDS = ("inference_ms", "preprocess_ms", "classes", "detections", "counts")


def build_result(frame, out: Any, latency_ms: float, smoother: Smoother) -> Result:
    """A :class:`Result` from ``out.to_dict()`` (any task record; see the module doc)."""
    if hasattr(out, "to_dict"):
        d = out.to_dict()
    else:  # a bare object with .classes (id, label, score)
        d = {"classes": [{"id": c.id, "label": c.label, "score": c.score} for c in out.classes]}
    classes = tuple(
        {"id": int(c["id"]), "label": str(c["label"]), "score": _score(c["score"])}
        for c in d.get("classes", ())
    )
    detections = counts = None
    if "detections" in d:
        detections = tuple(
            {"id": int(x["id"]), "label": str(x["label"]), "score": _score(x["score"]),
             "box": [round(float(v), 2) for v in x["box"]], **_crop_classes(x)}
            for x in d["detections"]
        )  # fmt: skip
        counts = {}
        for x in detections:  # a cascade counts species: the crop's top class, if it has one
            name = x["classes"][0]["label"] if x.get("classes") else x["label"]
            counts[name] = counts.get(name, 0) + 1
        counts = dict(sorted(counts.items()))  # as Detections.counts(): a stable order
    label = None
    if detections is None:  # classification: the smoothed top-1
        label = smoother.update(classes[0]["label"] if classes else None)
    extra = {k: _ms(v) if k.endswith("_ms") else v for k, v in d.items() if k not in _OWN_FIELDS}
    return Result(
        frame.index, frame.timestamp, classes, float(out.inference_ms), latency_ms, label,
        frame.rgb, detections, counts, extra,
    )  # fmt: skip


def _crop_classes(x: dict) -> dict:
    """A cascade's detection (edgekit.detect.cascade) carries its crop's ``classes``."""
    if "classes" not in x:
        return {}
    return {"classes": [{"id": int(c["id"]), "label": str(c["label"]),
                         "score": _score(c["score"])} for c in x["classes"]]}  # fmt: skip


def _score(v) -> float:
    """A score as lines and /latest carry it: 4 decimals (a uint8 score steps by 1/256)."""
    return round(float(v), 4)


def _ms(v):
    """A time in ms as lines and /latest carry it: 3 decimals (1 us); non-numbers unchanged."""
    return round(float(v), 3) if isinstance(v, (int, float)) and not isinstance(v, bool) else v


@dataclass(frozen=True)
class Event:
    """Something that happened besides results: a fault, a recovery, the end of the source.
    ``kind`` e.g. ``source_lost``, ``source_reconnected``, ``decode_error``, ``source_ended``,
    ``inference_error``, ``backend_reopened``, ``cpu_fallback``, ``label_appeared``,
    ``label_left`` (:mod:`edgekit.stream.presence`); ``time`` s since the epoch."""

    kind: str
    message: str
    time: float
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"event": self.kind, "message": self.message, "time": round(self.time, 3),
                **self.details}  # fmt: skip


class Smoother:
    """The reported label changes only after ``n`` consecutive frames agree on a new top-1
    label (n = 1: every frame's top-1). Until then the previous label stays."""

    def __init__(self, n: int = 1):
        self.n = max(1, int(n))
        self.label: str | None = None
        self._candidate: str | None = None
        self._count = 0
        self._started = False

    def update(self, top: str | None) -> str | None:
        if self._started and top == self.label:
            self._candidate, self._count = None, 0
            return self.label
        if top == self._candidate:
            self._count += 1
        else:
            self._candidate, self._count = top, 1
        if self._count >= self.n:
            self.label, self._started = top, True
            self._candidate, self._count = None, 0
        return self.label


class FatalError(Exception):
    """Raised by ``infer`` when the pipeline must stop (e.g. Edge TPU lost, no fallback)."""


class SkipFrame(Exception):
    """Raised by ``infer`` for a frame lost to a fault it has already reported and handled."""


class Pipeline:
    """Worker thread: capture -> infer -> sinks.

    Args:
        capture: a not yet started :class:`CaptureThread`.
        infer: ``rgb -> classification`` (see module doc). May raise: :class:`FatalError`
            stops the pipeline, anything else is counted, reported and the frame skipped.
        sinks: objects with ``on_result(result)`` and ``on_event(event)``.
        smoothing: frames a new label must persist before it is reported.
        max_frames: stop after this many results (0 = no limit).
        stats: shared statistics (created if None).
    """

    def __init__(
        self,
        capture: CaptureThread,
        infer: Callable[[np.ndarray], Any],
        sinks: Sequence[Any] = (),
        smoothing: int = 1,
        max_frames: int = 0,
        stats: Stats | None = None,
    ):
        self.capture, self.infer, self.sinks = capture, infer, list(sinks)
        self.smoother = Smoother(smoothing)
        self.max_frames = int(max_frames or 0)
        self.stats = stats or Stats()
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edgekit-worker", daemon=True)
        capture.on_event = self.emit

    def start(self) -> Pipeline:
        self.capture.start()
        self._thread.start()
        return self

    def stop(self, timeout: float = 1.5) -> None:
        """Stop capture and worker; returns within about ``timeout`` seconds."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        self.capture.stop(timeout=timeout / 2)
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(max(0.0, deadline - time.monotonic()))

    def emit(self, kind: str, message: str, details: dict | None = None) -> None:
        """Report an event to the log, the counters and every sink (from any thread)."""
        event = Event(kind, message, time.time(), dict(details or {}))
        self.stats.count_event(kind)
        quiet = ("source_ended", "source_reconnected", "label_appeared", "label_left",
                 "mqtt_connected", "model_reloaded")  # fmt: skip
        level = logging.INFO if kind in quiet else logging.WARNING
        if kind == "cpu_fallback":
            level = logging.ERROR
        log.log(level, "%s: %s", kind, message)
        for sink in self.sinks:
            try:
                sink.on_event(event)
            except Exception as e:  # a broken sink must not stop the camera
                log.warning("sink %s failed on event: %s", type(sink).__name__, e)

    def _run(self) -> None:  # the worker thread
        try:
            self._loop()
        except BaseException as e:
            self.error = e
        finally:
            self.capture.stop(timeout=0.5)
            self._settle()
            self.done.set()

    def _settle(self) -> None:
        """Final frame accounting (Stats.accounting): the frame left in the slot and those
        read while stopping are ``unprocessed``; exact once the capture thread has ended."""
        slot = self.capture.slot
        left = slot.take(0.0)
        with self.stats._lock:
            self.stats.dropped = slot.dropped
            self.stats.captured = self.capture.frames_read
            self.stats.unprocessed = slot.discarded + (left is not None)
            self.stats.settled = not self.capture.alive

    def _loop(self) -> None:
        produced = 0
        while not self._stop.is_set():
            frame = self.capture.take(timeout=0.25)
            self.stats.dropped = self.capture.slot.dropped
            self.stats.captured = self.capture.frames_read
            if frame is None:
                if self.capture.finished:
                    if self.capture.error is not None:
                        raise self.capture.error
                    if self.capture.ended:
                        self.emit("source_ended", f"{self.capture.source.name}: end of stream")
                    return
                continue
            try:
                out = self.infer(frame.rgb if frame.prepared is None else frame.prepared)
            except FatalError:
                raise
            except SkipFrame:
                self.stats.count_error("inference")
                continue
            except Exception as e:
                self.stats.count_error("inference")
                self.emit("inference_error", f"{type(e).__name__}: {e}", {"frame": frame.index})
                continue
            self.deliver(frame, out)
            produced += 1
            if self.max_frames and produced >= self.max_frames:
                return

    def deliver(self, frame, out: Any) -> None:
        """The result of ``frame`` (``out``: the model's record) to the stats and every sink.
        Called for one frame at a time, in frame order (edgekit.stream.pool keeps it so)."""
        latency_ms = (time.monotonic() - frame.mono) * 1000.0
        result = build_result(frame, out, latency_ms, self.smoother)
        self.stats.record(latency_ms, result.inference_ms)
        for sink in self.sinks:
            try:
                sink.on_result(result)
            except Exception as e:
                self.stats.count_error("sink")
                log.warning("sink %s failed: %s", type(sink).__name__, e)
