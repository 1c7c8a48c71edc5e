"""Presence (appear/leave with a hold time), the history rings and the event log: the bounded
state behind the status page, /metrics and MQTT."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageColor

from edgekit.stream.draw import label_color
from edgekit.stream.history import EventLog, History
from edgekit.stream.pipeline import Event, Result
from edgekit.stream.presence import Presence


def kinds(events):
    return [(k, label) for k, label, _ in events]


def test_appears_at_once_and_leaves_only_after_the_hold_time():
    p = Presence(hold_s=2.0)
    assert kinds(p.update({"car": 1}, 100.0)) == [("label_appeared", "car")]
    # Flicker: gone for 1.5 s, back, gone again: no events.
    assert p.update({}, 100.5) == [] and p.update({}, 101.9) == []
    assert p.update({"car": 1}, 102.0) == []
    assert p.update({}, 103.0) == [] and p.counts() == {"car": 1}
    (event,) = p.update({}, 104.0)
    assert event == ("label_left", "car", {"label": "car", "duration_s": 2.0})
    assert p.counts() == {} and p.appearances["car"] == 1
    assert kinds(p.update({"car": 2}, 110.0)) == [("label_appeared", "car")]
    assert p.appearances["car"] == 2


def test_held_count_is_the_window_maximum():
    p = Presence(hold_s=1.0)
    p.update({"person": 3}, 0.0)
    p.update({"person": 1}, 0.5)
    assert p.counts() == {"person": 3}, "a drop is held"
    p.update({"person": 1}, 1.2)
    assert p.counts() == {"person": 1}, "released after hold_s"
    p.update({"person": 2}, 1.3)
    assert p.counts() == {"person": 2}, "a rise is at once"
    snap = p.snapshot()
    assert snap["raw"] == {"person": 2} and snap["appearances"] == {"person": 1}


def test_hold_zero_leaves_on_the_first_frame_without_the_label():
    p = Presence(hold_s=0.0)
    p.update({"cat": 1}, 0.0)
    assert kinds(p.update({"dog": 1}, 0.1)) == [("label_appeared", "dog"), ("label_left", "cat")]


def test_history_buckets_and_bounds():
    h = History(resolutions=((1.0, 5), (10.0, 3)))
    t0 = 1000.0
    for i in range(20):  # 2 results per second for 10 s
        t = t0 + i * 0.5
        h.add(t, latency_ms=10.0 + i, inference_ms=5.0, present={"car": 2} if i < 10 else {})
    d = h.to_dict(1.0, now=t0 + 9.99)
    assert d["t"] == [1005.0, 1006.0, 1007.0, 1008.0, 1009.0] and len(d["fps"]) == 5
    assert d["fps"][:4] == [2.0] * 4, "complete 1-s buckets"
    assert d["latency_ms"][0] == 20.5 and d["latency_max_ms"][0] == 21.0
    assert d["labels"] == {}, "no car in the last 5 s: no series"
    d10 = h.to_dict(10.0, now=t0 + 9.99)
    assert d10["t"][-1] == 1000.0 and d10["labels"]["car"][-1] == 1.0  # mean count 20/20
    assert d10["fps"][:2] == [None, None], "nothing known before the first result"
    # A gap: no frames from 1010 to 1030, then one at 1030.5 (1 frame in 0.9 s).
    h.add(t0 + 30.5, 1.0, 1.0, {})
    gap = h.to_dict(1.0, now=t0 + 30.9)
    assert gap["fps"][-5:] == [0.0, 0.0, 0.0, 0.0, 1.11] and gap["latency_ms"][-2] is None
    # A long run keeps only the ring's buckets.
    for i in range(1000):
        h.add(t0 + 40 + i, 1.0, 1.0, {f"label{i % 100}": 1})
    assert all(len(r) <= r.maxlen for r in h._rings.values())
    assert len(h.to_dict(10.0, now=t0 + 1040)["labels"]) == 8, "top labels only"


def frame_result(i, rgb, detections=()):
    counts = {}
    for d in detections:
        counts[d["label"]] = counts.get(d["label"], 0) + 1
    return Result(i, 1000.0 + i, (), 1.0, 2.0, None, rgb, tuple(detections), counts)


def test_event_log_keeps_the_last_events_with_thumbnails_of_their_frame():
    log = EventLog(size=5, thumb_width=80, thumbs_per_s=1000)
    rgb = np.zeros((120, 160, 3), np.uint8)
    box = {"id": 2, "label": "car", "score": 0.9, "box": [40.0, 30.0, 120.0, 90.0]}
    log.on_result(frame_result(1, rgb, [box]))
    log.on_event(Event("label_appeared", "car appeared", 1001.0, {"label": "car"}))
    (e,) = log.to_list()
    assert e["event"] == "label_appeared" and e["label"] == "car"
    thumb = Image.open(io.BytesIO(log.thumbnail(int(e["thumb"].split("/")[-1][:-4]))))
    assert thumb.size == (80, 60)
    px = np.asarray(thumb.convert("RGB")).astype(int)
    want = np.array(ImageColor.getrgb(label_color("car")))
    edge = px[43:47, 25:55]  # the box's bottom edge (y 90 -> 45 in the half-size thumbnail)
    assert np.abs(edge - want).sum(axis=2).min() < 90, "the box is drawn in the label colour"
    assert px[35, 40].max() < 40, "inside the box the black frame is untouched"
    for i in range(20):
        log.on_event(Event("source_lost", f"lost {i}", 1002.0 + i))
    events = log.to_list()
    assert len(events) == 5 and events[0]["message"] == "lost 19", "newest first, bounded"
    assert len(log._thumbs) <= 5


def test_event_log_thumbnail_rate_limit_shares_the_last_one():
    log = EventLog(size=50, thumbs_per_s=0.001)
    log.on_result(frame_result(1, np.zeros((32, 32, 3), np.uint8)))
    for i in range(10):
        log.on_event(Event("label_left", "x", 1000.0 + i))
    thumbs = {e["thumb"] for e in log.to_list()}
    assert len(thumbs) == 1 and None not in thumbs
