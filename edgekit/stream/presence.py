"""Which labels are in view, held against flicker: ``label_appeared`` / ``label_left`` events and
steady per-label counts, the same for both tasks.

A detector's score hovers around its threshold, so an object flickers in and out of the
results from frame to frame; a classifier's top-1 does the same between two close classes.
Reporting every flicker would spam MQTT and the event list. The rule here:

* a label **appears** on the first frame that shows it (news should not wait);
* it **leaves** only once ``hold_s`` seconds have passed without a frame showing it;
* its **held count** is the largest count seen in the last ``hold_s`` seconds, so a count
  goes up at once and comes down only after holding for ``hold_s``.

Times are the frames' capture timestamps (s), so a paused pipeline does not "see" labels leave.
"""

from __future__ import annotations

import collections
import threading
from typing import Callable

# Labels remembered at most (appearance counters, gauges): a model's label map is bounded, but
# a hostile or huge one must not grow memory without bound.
MAX_LABELS = 1000


class Presence:
    """Tracks held per-label counts. ``update(present, t)`` returns the events it causes.

    Args:
        hold_s: seconds a label must be absent before it counts as gone (0 = at once).
    """

    def __init__(self, hold_s: float = 2.0):
        self.hold_s = float(hold_s)
        self._lock = threading.Lock()
        # label -> deque of (t, count) with decreasing counts: the window maximum is the head.
        self._windows: dict[str, collections.deque] = {}
        self._since: dict[str, float] = {}  # label -> time it appeared
        self._last_seen: dict[str, float] = {}
        self.raw: dict[str, int] = {}  # the latest frame's counts
        self.appearances: collections.Counter[str] = collections.Counter()
        self.known: dict[str, None] = {}  # every label ever seen, in order (bounded)

    def update(self, present: dict[str, int], t: float) -> list[tuple[str, str, dict]]:
        """Feed one frame's ``{label: count}`` at capture time ``t``; returns the events it
        causes as ``(kind, label, details)`` with kind ``label_appeared`` or ``label_left``."""
        events: list[tuple[str, str, dict]] = []
        with self._lock:
            self.raw = {k: int(v) for k, v in present.items() if v > 0}
            for label, n in self.raw.items():
                if label not in self._since:
                    if label not in self.known and len(self.known) >= MAX_LABELS:
                        continue
                    self.known.setdefault(label, None)
                    self._since[label] = t
                    self._windows[label] = collections.deque()
                    self.appearances[label] += 1
                    events.append(("label_appeared", label, {"label": label, "count": n}))
                window = self._windows[label]
                while window and window[-1][1] <= n:
                    window.pop()
                window.append((t, n))
                self._last_seen[label] = t
            for label in list(self._since):
                if label in self.raw:
                    continue
                if t - self._last_seen[label] >= self.hold_s:
                    since = self._since.pop(label)
                    last = self._last_seen.pop(label)
                    del self._windows[label]
                    events.append(("label_left", label, {
                        "label": label, "duration_s": round(max(0.0, last - since), 3),
                    }))  # fmt: skip
            for window in self._windows.values():
                while len(window) > 1 and t - window[0][0] > self.hold_s:
                    window.popleft()
        return events

    def counts(self) -> dict[str, int]:
        """Held counts of the labels in view now (``{label: n}``, n >= 1, in label order)."""
        with self._lock:
            return {label: w[0][1] for label, w in sorted(self._windows.items()) if w}

    def snapshot(self) -> dict:
        """For /metrics and /latest: ``held``, ``raw`` counts and ``appearances`` per label, over
        every label seen so far (0 when not in view)."""
        held = self.counts()
        with self._lock:
            known = list(self.known)
            raw, appearances = dict(self.raw), dict(self.appearances)
        return {
            "held": {k: held.get(k, 0) for k in known},
            "raw": {k: raw.get(k, 0) for k in known},
            "appearances": {k: appearances.get(k, 0) for k in known},
        }


class PresenceSink:
    """Feeds results to a :class:`Presence` and reports its events through ``emit(kind,
    message, details)`` (the pipeline's, so every sink sees them). Put it last among the sinks:
    the others then already hold the frame an event refers to (event thumbnails)."""

    def __init__(self, presence: Presence, emit: Callable[[str, str, dict], None]):
        self.presence, self.emit = presence, emit

    def on_result(self, result) -> None:
        for kind, label, details in self.presence.update(result.present, result.timestamp):
            if kind == "label_appeared":
                n = details["count"]
                message = f"{label} appeared" + (f" ({n})" if n > 1 else "")
            else:
                message = f"{label} left after {details['duration_s']:g} s"
            self.emit(kind, message, details)

    def on_event(self, event) -> None:
        pass

    def close(self) -> None:
        pass
