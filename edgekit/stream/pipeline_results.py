"""What the pipeline hands its sinks: :class:`Result` (one frame, the JSON line format) built by
:func:`build_result` from any task record's ``to_dict()``, :class:`Event` (faults, recoveries,
presence), and the :class:`Smoother` that holds a classifier's reported label."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


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
