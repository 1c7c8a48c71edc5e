"""TOML config validation and sd_notify over a real AF_UNIX datagram socket."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from edgekit.errors import EdgekitError
from edgekit.stream import serve
from edgekit.stream.config import ServeConfig, load_config, override
from edgekit.stream.notify import Notifier
from edgekit.stream.sources import OpenCVSource

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def write(tmp_path, text):
    p = tmp_path / "edgekit.toml"
    p.write_text(text)
    return p


def test_example_config_loads():
    cfg = load_config(os.path.join(ROOT, "systemd", "edgekit.toml"))
    assert cfg.model.on_tpu_failure == "cpu" and cfg.http.listen == "127.0.0.1:8080"


def test_unknown_key_names_key_and_file(tmp_path):
    p = write(tmp_path, "[source]\nuri = 0\nlop = true\n")
    with pytest.raises(EdgekitError) as e:
        load_config(p)
    assert str(p) in str(e.value) and "source.lop" in str(e.value) and "loop" in e.value.hint
    with pytest.raises(EdgekitError, match=r"unknown section \[camera\]"):
        load_config(write(tmp_path, "[camera]\nx = 1\n"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[source]\nloop = 'yes'\n", "source.loop must be true or false"),
        ("[model]\ntop_k = 2.5\n", "model.top_k must be an integer"),
        ("[model]\non_tpu_failure = 'retry'\n", "model.on_tpu_failure = 'retry' unknown"),
        ("[pipeline]\nmax_frames = -1\n", "must not be negative"),
        ("[model\n", "not valid TOML"),
    ],
)
def test_bad_values(tmp_path, text, message):
    with pytest.raises(EdgekitError, match=message):
        load_config(write(tmp_path, text))


def test_relative_paths_and_overrides(tmp_path):
    cfg = load_config(write(tmp_path, "[model]\npath = 'm/model.tflite'\ntop_k = 2\n"))
    assert cfg.model.path == str(tmp_path / "m" / "model.tflite")
    cfg = override(cfg, model__top_k=4, source__uri="clip.avi", model__device=None)
    assert (cfg.model.top_k, cfg.source.uri, cfg.model.device) == (4, "clip.avi", "auto")
    with pytest.raises(EdgekitError, match="no such config file"):
        load_config(tmp_path / "missing.toml")


class NotifySocket:
    """A datagram socket standing in for systemd's $NOTIFY_SOCKET."""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(10)

    def recv(self) -> dict:
        data = self.sock.recv(4096).decode()
        return dict(line.split("=", 1) for line in data.splitlines())


def test_notify_path_and_abstract_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    s = NotifySocket(path)
    n = Notifier(environ={"NOTIFY_SOCKET": path})
    assert n.ready(status="hi") and s.recv() == {"READY": "1", "STATUS": "hi"}
    name = f"edgekit-test-{os.getpid()}"
    a = NotifySocket("\0" + name)
    n2 = Notifier(environ={"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "3000000"})
    assert n2.watchdog_s == 3.0 and n2.watchdog() and a.recv() == {"WATCHDOG": "1"}
    assert not Notifier(environ={}).ready()  # outside systemd: a no-op
    other = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"}
    assert Notifier(environ=other).watchdog_s == 0.0  # the watchdog is for another process


def test_serve_sends_ready_watchdog_status_stopping(tmp_path, video_avi, classifier):
    path = str(tmp_path / "notify.sock")
    s = NotifySocket(path)
    n = Notifier(environ={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "300000"})
    stop = threading.Event()
    cfg = override(ServeConfig(), output__json_lines=False)
    t = threading.Thread(target=serve.run, args=(cfg,), daemon=True, kwargs={
        "stop": stop, "notifier": n, "classifier": classifier,
        "source": OpenCVSource(str(video_avi), loop=True)})  # fmt: skip
    t.start()
    got = []
    while not any("WATCHDOG" in m for m in got):
        got.append(s.recv())
    stop.set()
    while "STOPPING" not in got[-1]:
        got.append(s.recv())
    t.join(10)
    keys = [next(iter(m)) for m in got]
    assert keys[0] == "STATUS" and "loading model" in got[0]["STATUS"]
    ready = keys.index("READY")
    assert "fps" in got[ready]["STATUS"], "READY comes with a status line"
    assert ready < keys.index("WATCHDOG"), "READY only after the first classified frame"


def test_no_watchdog_when_frames_stop(tmp_path, classifier):
    """A camera that hangs after one frame: READY, then no WATCHDOG pings."""
    from edgekit.stream.sources import Source

    from .conftest import solid

    class HangsAfterOne(Source):
        live, name = True, "hangs"

        def __init__(self):
            self.n = 0

        def read(self):
            self.n += 1
            if self.n > 1:
                threading.Event().wait(30)
            return solid()

    path = str(tmp_path / "notify.sock")
    s = NotifySocket(path)
    s.sock.settimeout(1.5)
    n = Notifier(environ={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "300000"})
    stop = threading.Event()
    cfg = override(ServeConfig(), output__json_lines=False, pipeline__stale_after_s=0.2)
    kwargs = {"stop": stop, "notifier": n, "classifier": classifier, "source": HangsAfterOne()}
    t = threading.Thread(target=serve.run, args=(cfg,), kwargs=kwargs, daemon=True)
    t.start()
    got = []
    try:
        while True:
            got.append(s.recv())
    except socket.timeout:
        pass
    stop.set()
    t.join(10)
    keys = [k for m in got for k in m]
    assert "READY" in keys
    # At most the pings sent within stale_after_s of the only frame, then silence.
    assert keys.count("WATCHDOG") <= 2
    assert not t.is_alive()
