"""Query parameters of serve's HTTP routes, with a real server on loopback and urllib as the
client: a malformed, out-of-range or repeated value is answered 400 with one line of JSON that
names the parameter and what it accepts (it used to fall back to the default silently); good
values still work; names a route does not take (a cache-buster) are ignored."""

from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from edgekit.stream.http import HttpSink
from edgekit.stream.pipeline import Event, Result


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()


@pytest.fixture(scope="module")
def sink():
    """A sink holding 3 frames (frame n is a flat grey of value 40 n) and 3 events."""
    s = HttpSink("127.0.0.1", 0)
    now = time.time()
    for n in range(1, 4):
        rgb = np.full((32, 48, 3), 40 * n, np.uint8)
        classes = ({"id": 0, "label": "cat", "score": 0.9},)
        s.on_result(Result(n, now + n, classes, 1.0, 2.0, "cat", rgb=rgb))
        s.on_event(Event("source_lost", f"lost {n}", now + n, {"n": n}))
    yield s
    s.close()


@pytest.mark.parametrize(
    "query, parameter, accepted",
    [
        ("/events.json?limit=abc", "limit", "an integer 1-100"),
        ("/events.json?limit=-5", "limit", "an integer 1-100"),
        ("/events.json?limit=0", "limit", "an integer 1-100"),
        ("/events.json?limit=101", "limit", "an integer 1-100"),
        ("/events.json?limit=99999999999999999999999", "limit", "an integer 1-100"),
        ("/events.json?limit=", "limit", "an integer 1-100"),
        ("/events.json?limit=2.5", "limit", "an integer 1-100"),
        ("/events.json?limit=5&limit=6", "limit", "given 2 times"),
        ("/history.json?res=0.001", "res", "1 or 10"),
        ("/history.json?res=60", "res", "1 or 10"),
        ("/history.json?res=1.0", "res", "1 or 10"),
        ("/snapshot.jpg?f=abc", "f", "an integer >= 0"),
        ("/snapshot.jpg?f=-1", "f", "an integer >= 0"),
        ("/snapshot.jpg?f=abc&f=-1", "f", "given 2 times"),
        ("/snapshot.jpg?f=1e3", "f", "an integer >= 0"),
        ("/snapshot.jpg?boxes=yes", "boxes", "1, 0, true or false"),
    ],
)
def test_bad_values_are_refused_with_the_parameter_named(sink, query, parameter, accepted):
    code, ctype, body = get(sink.url.rstrip("/") + query)
    assert code == 400 and ctype == "application/json"
    assert body.count(b"\n") == 0, "one line"
    answer = json.loads(body)
    assert answer["parameter"] == parameter
    assert parameter in answer["error"] and accepted in answer["error"]
    assert query.split("?")[0] in answer["error"], "the route is named"


def test_good_values_work(sink):
    base = sink.url.rstrip("/")
    code, _, body = get(base + "/events.json?limit=2")
    assert code == 200 and [e["message"] for e in json.loads(body)] == ["lost 3", "lost 2"]
    assert len(json.loads(get(base + "/events.json")[2])) == 3
    assert json.loads(get(base + "/history.json?res=1")[2])["bucket_s"] == 1.0
    assert json.loads(get(base + "/history.json?res=10")[2])["bucket_s"] == 10.0
    assert json.loads(get(base + "/history.json")[2])["bucket_s"] == 10.0

    def grey(url):
        code, ctype, body = get(url)
        assert code == 200 and ctype == "image/jpeg"
        return int(np.asarray(Image.open(io.BytesIO(body)))[16, 24, 0])

    assert abs(grey(base + "/snapshot.jpg?f=2") - 80) <= 2, "frame 2 itself"
    assert abs(grey(base + "/snapshot.jpg?f=1&boxes=0") - 40) <= 2
    assert abs(grey(base + "/snapshot.jpg?boxes=true") - 120) <= 2, "the latest frame"
    # A frame no longer kept (or not yet seen) is answered with the latest, as the page expects.
    assert abs(grey(base + "/snapshot.jpg?f=12345") - 120) <= 2


def test_names_a_route_does_not_take_are_ignored(sink):
    base = sink.url.rstrip("/")
    assert get(base + "/snapshot.jpg?1733400000")[0] == 200, "a cache-buster"
    assert get(base + "/snapshot.jpg?t=1733400000&f=3")[0] == 200
    assert len(json.loads(get(base + "/events.json?limt=1")[2])) == 3
    assert get(base + "/latest?limit=abc")[0] == 200, "no parameters there: nothing to check"
    code, _, body = get(base + "/latest?" + "&".join(f"x{i}=1" for i in range(9)))
    assert code == 400 and "at most 8" in json.loads(body)["error"]
