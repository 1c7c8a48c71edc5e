"""What the status page charts and lists, in bounded memory: per-bucket aggregates of the last
hour (:class:`History`) and the recent events with thumbnails (:class:`EventLog`).

History keeps two rings: 1-s buckets over the last 5 minutes (a service just started shows
detail at once) and 10-s buckets over the last hour. A bucket holds the frame count, latency
and inference sums and maxima, and per label the sum of its count over the bucket's frames
(at most :data:`LABELS_PER_BUCKET` labels each), so memory is fixed: 660 small buckets.
"""

from __future__ import annotations

import collections
import io
import itertools
import math
import threading
import time

import numpy as np

RESOLUTIONS = ((1.0, 300), (10.0, 360))  # (bucket seconds, buckets): 5 min and 1 h
LABELS_PER_BUCKET = 32
TOP_LABELS = 8  # label series returned by to_dict (the most present over the span)


class _Bucket:
    __slots__ = ("start", "frames", "lat_sum", "lat_max", "inf_sum", "labels")

    def __init__(self, start: float):
        self.start = start
        self.frames = 0
        self.lat_sum = self.lat_max = self.inf_sum = 0.0
        self.labels: dict[str, int] = {}


class History:
    """Rolling per-bucket aggregates; ``add`` from the worker, ``to_dict`` from HTTP threads."""

    def __init__(self, resolutions=RESOLUTIONS):
        self._lock = threading.Lock()
        self._rings = {float(b): collections.deque(maxlen=int(n)) for b, n in resolutions}
        self._first: float | None = None  # time of the first result: no "0 fps" before it

    @property
    def resolutions(self) -> list[float]:
        return sorted(self._rings)

    def add(self, t: float, latency_ms: float, inference_ms: float, present: dict) -> None:
        """One result at wall-clock time ``t`` (s) with its ``{label: count}``."""
        with self._lock:
            if self._first is None:
                self._first = t
            for bucket_s, ring in self._rings.items():
                start = math.floor(t / bucket_s) * bucket_s
                if not ring or ring[-1].start < start:
                    ring.append(_Bucket(start))
                b = ring[-1]
                if b.start != start:  # a frame older than the newest bucket: rare, skip it
                    continue
                b.frames += 1
                b.lat_sum += latency_ms
                b.lat_max = max(b.lat_max, latency_ms)
                b.inf_sum += inference_ms
                for label, n in present.items():
                    if label in b.labels or len(b.labels) < LABELS_PER_BUCKET:
                        b.labels[label] = b.labels.get(label, 0) + int(n)

    def to_dict(self, bucket_s: float = 10.0, now: float | None = None) -> dict:
        """Series over the ring's span ending now, one point per bucket: fps over the part of
        the bucket the service ran for (None when that is under half the bucket: before the
        first result, the current bucket's first half; 0 for a gap without frames); means and
        maxima None without frames. ``labels`` maps the :data:`TOP_LABELS` most present labels
        to their mean count per frame in each bucket. Times are bucket starts, s since the
        epoch."""
        now = time.time() if now is None else now
        ring = self._rings.get(float(bucket_s))
        if ring is None:
            raise KeyError(bucket_s)
        with self._lock:
            buckets = {b.start: b for b in ring}
            n = ring.maxlen or 0
            last = math.floor(now / bucket_s) * bucket_s
            starts = [last - (n - 1 - i) * bucket_s for i in range(n)]
            rows = [buckets.get(s) for s in starts]
            totals: collections.Counter[str] = collections.Counter()
            for b in rows:
                if b is not None:
                    totals.update(b.labels)
            top = [label for label, _ in totals.most_common(TOP_LABELS)]
            fps, lat, lat_max, inf = [], [], [], []
            series: dict[str, list] = {label: [] for label in top}
            first = self._first
            for s, b in zip(starts, rows):
                # The part of the bucket the service was running for.
                span = min(s + bucket_s, now) - max(s, first if first is not None else now)
                if span < bucket_s / 2 or b is None or not b.frames:
                    fps.append(None if span < bucket_s / 2 else 0.0)
                    lat.append(None), lat_max.append(None), inf.append(None)
                    for label in top:
                        series[label].append(None)
                    continue
                fps.append(round(b.frames / span, 2))
                lat.append(round(b.lat_sum / b.frames, 2))
                lat_max.append(round(b.lat_max, 2))
                inf.append(round(b.inf_sum / b.frames, 2))
                for label in top:
                    series[label].append(round(b.labels.get(label, 0) / b.frames, 3))
        return {
            "bucket_s": bucket_s, "span_s": bucket_s * n, "now": round(now, 3),
            "t": [round(s, 3) for s in starts], "fps": fps, "latency_ms": lat,
            "latency_max_ms": lat_max, "inference_ms": inf, "labels": series,
        }  # fmt: skip


class EventLog:
    """The last ``size`` events, newest first, each with a small JPEG of the frame it refers to
    (the latest frame at the time; boxes drawn for detections). At most ``thumbs_per_s`` new
    thumbnails per second: a burst of events shares the last one, so a flood costs no CPU."""

    def __init__(self, size: int = 100, thumb_width: int = 240, thumbs_per_s: float = 4.0):
        self._lock = threading.Lock()
        self._events: collections.deque[dict] = collections.deque(maxlen=size)
        self._thumbs: collections.OrderedDict[int, bytes] = collections.OrderedDict()
        self._ids = itertools.count(1)
        self._latest = None  # the last Result (for its frame)
        self._last_thumb: tuple[float, int | None] = (-1e18, None)
        self._last_crop: tuple[float, int | None] = (-1e18, None)
        self.size, self.thumb_width, self.min_gap_s = size, thumb_width, 1.0 / thumbs_per_s

    def on_result(self, result) -> None:
        self._latest = result

    def on_event(self, event) -> None:
        thumb = self._species_thumbnail(event)
        thumb = self._thumbnail() if thumb is None else thumb
        with self._lock:
            eid = next(self._ids)
            self._events.appendleft({"id": eid, **event.to_dict(), "thumb": thumb})

    def _species_thumbnail(self, event) -> int | None:
        """A cascade's species appearing: the thumbnail is its crop (the box with the margin
        the classifier saw, edgekit.detect.cascade), with the box and species drawn."""
        r = self._latest
        if event.kind != "label_appeared" or r is None or r.rgb is None or not r.detections:
            return None
        label = event.details.get("label")
        d = next((d for d in r.detections
                  if d.get("classes") and d["classes"][0]["label"] == label), None)  # fmt: skip
        # Every species appearing in one frame gets its crop; a burst over later frames shares
        # the frame's thumbnail (the rate limit of _thumbnail).
        now, (last_t, last_frame) = time.monotonic(), self._last_crop
        if d is None or (r.frame != last_frame and now - last_t < self.min_gap_s):
            return None
        self._last_crop = (now, r.frame)
        from edgekit.detect.cascade import crop_box

        x0, y0, x1, y1 = crop_box(d["box"], (r.rgb.shape[1], r.rgb.shape[0]))
        box = [d["box"][0] - x0, d["box"][1] - y0, d["box"][2] - x0, d["box"][3] - y0]
        data = encode_jpeg(np.ascontiguousarray(r.rgb[y0:y1, x0:x1]), [{**d, "box": box}],
                           width=self.thumb_width, quality=70)  # fmt: skip
        with self._lock:
            tid = next(self._ids)
            self._thumbs[tid] = data
            while len(self._thumbs) > self.size:
                self._thumbs.popitem(last=False)
        return tid

    def _thumbnail(self) -> int | None:
        """Id of a thumbnail of the latest frame (new, or the last one within the gap)."""
        r = self._latest
        now = time.monotonic()
        with self._lock:
            last_t, last_id = self._last_thumb
            if r is None or r.rgb is None or (now - last_t < self.min_gap_s and last_id):
                return last_id
        data = encode_jpeg(r.rgb, r.detections, width=self.thumb_width, quality=70)
        with self._lock:
            tid = next(self._ids)
            self._thumbs[tid] = data
            while len(self._thumbs) > self.size:  # at most one per event kept
                self._thumbs.popitem(last=False)
            self._last_thumb = (now, tid)
        return tid

    def to_list(self, limit: int | None = None) -> list[dict]:
        with self._lock:
            events = list(self._events)[: limit or None]
            have = set(self._thumbs)
        return [{**e, "thumb": f"/thumb/{e['thumb']}.jpg" if e["thumb"] in have else None}
                for e in events]  # fmt: skip

    def thumbnail(self, tid: int) -> bytes | None:
        with self._lock:
            return self._thumbs.get(tid)


def encode_jpeg(rgb: np.ndarray, detections=None, width: int | None = None,
                quality: int = 80) -> bytes:  # fmt: skip
    """JPEG of an (H, W, 3) uint8 frame, optionally scaled to ``width`` pixels and with the
    detection boxes (``{"label", "score", "box"}`` in frame pixels) drawn on it."""
    from PIL import Image

    img = Image.fromarray(rgb)
    if width and img.width > width:
        img = img.resize((width, max(1, round(img.height * width / img.width))), Image.BILINEAR)
    if detections:
        from edgekit.stream.draw import draw_boxes

        draw_boxes(img, detections, scale=img.width / rgb.shape[1])
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
