"""When no frames arrive, /latest, /healthz and the status page say why: the camera is being
opened, it is lost and being reconnected, or frames stopped."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

from edgekit.stream import serve
from edgekit.stream.config import from_dict
from edgekit.stream.sources import Source, SourceLost

from .conftest import free_port


class UnpluggedCamera(Source):
    """A live camera that cannot be opened (unplugged): ``open`` fails until ``plugged``."""

    live, name = True, "/dev/video7"

    def open(self):
        raise SourceLost("/dev/video7 does not exist (camera unplugged?)")

    def read(self):
        raise SourceLost("not open")


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_reason_for_no_frames_is_published(classifier):
    port = free_port()
    cfg = from_dict({"output": {"json_lines": False},
                     "http": {"enabled": True, "listen": f"127.0.0.1:{port}"},
                     "source": {"backoff_s": 0.05, "backoff_max_s": 0.1}})  # fmt: skip
    stop = threading.Event()
    t = threading.Thread(target=serve.run, args=(cfg,), daemon=True,
                         kwargs={"stop": stop, "classifier": classifier,
                                 "source": UnpluggedCamera()})  # fmt: skip
    t.start()
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                code, latest = fetch(base + "/latest")
                if latest.get("source_state") == "reconnecting":
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert time.monotonic() < deadline, "no reconnecting state"
            time.sleep(0.1)
        assert latest["healthy"] is False
        assert "camera unplugged" in latest["reason"] and "retrying in" in latest["reason"]
        code, health = fetch(base + "/healthz")
        assert code == 503 and "camera unplugged" in health["detail"]
    finally:
        stop.set()
        t.join(10)
    assert not t.is_alive()
