"""Serve configs a user (or an attacker with write access to /etc) can get wrong: not UTF-8,
not a regular file, NaN/infinite/out-of-range numbers, bad ports and listen addresses, QoS
outside 0-2; relative source paths resolve against the config file's folder."""

from __future__ import annotations

import os
import threading

import pytest

from edgekit.errors import EdgekitError
from edgekit.stream.config import ServeConfig, load_config, override


def write(tmp_path, text: str | bytes):
    p = tmp_path / "edgekit.toml"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


def test_not_utf8_is_one_clear_error(tmp_path):
    p = write(tmp_path, b'[model]\npath = "caf\xe9"\n')
    with pytest.raises(EdgekitError, match="not UTF-8") as e:
        load_config(p)
    assert str(p) in str(e.value)


def test_bom_is_accepted(tmp_path):
    p = write(tmp_path, b"\xef\xbb\xbf[model]\ntop_k = 3\n")
    assert load_config(p).model.top_k == 3


def test_fifo_config_is_refused_without_blocking(tmp_path):
    p = tmp_path / "edgekit.toml"
    os.mkfifo(p)
    result: list = []
    t = threading.Thread(target=lambda: result.append(_error(p)), daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive(), "load_config blocked on a FIFO"
    assert "not a regular file" in result[0]


def _error(p) -> str:
    try:
        load_config(p)
    except EdgekitError as e:
        return str(e)
    return "no error"


FLOAT_KEYS = [
    ("model", "threshold"), ("model", "tpu_retry_s"), ("source", "fps"), ("source", "backoff_s"),
    ("source", "backoff_max_s"), ("pipeline", "stale_after_s"), ("pipeline", "hold_s"),
    ("mqtt", "min_interval_s"),
]  # fmt: skip


@pytest.mark.parametrize("section,key", FLOAT_KEYS)
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_every_float_key_rejects_nan_and_infinity(tmp_path, section, key, value):
    p = write(tmp_path, f"[{section}]\n{key} = {value}\n")
    with pytest.raises(EdgekitError, match=f"{section}.{key}"):
        load_config(p)


@pytest.mark.parametrize(
    "section,key,value",
    [
        ("pipeline", "stale_after_s", "0"), ("source", "fps", "1e9"), ("mqtt", "port", "0"),
        ("mqtt", "port", "1000000"), ("mqtt", "qos", "3"), ("mqtt", "qos", "-1"),
        ("mqtt", "min_interval_s", "1e12"), ("model", "threads", "1000000000"),
        ("http", "jpeg_quality", "0"), ("http", "jpeg_quality", "101"),
        ("source", "width", "100000000"), ("mqtt", "keepalive_s", "0"),
        ("source", "backoff_s", "0"), ("pipeline", "max_frames", "-1"),
        ("http", "listen", '"0"'), ("http", "listen", "0"), ("http", "listen", '"127.0.0.1:0"'),
        ("http", "listen", '"127.0.0.1:1000000"'), ("http", "listen", '"::1:80"'),
        ("output", "json_lines", '"no"'), ("mqtt", "enabled", "1"),
    ],
)  # fmt: skip
def test_out_of_range_and_wrong_type_values(tmp_path, section, key, value):
    p = write(tmp_path, f"[{section}]\n{key} = {value}\n")
    with pytest.raises(EdgekitError, match=f"{section}.{key}") as e:
        load_config(p)
    assert "\n" not in str(e.value)


def test_ipv6_listen_and_flag_override():
    c = override(ServeConfig(), http__listen="[::1]:8080", model__threads=2)
    assert c.http.listen == "[::1]:8080" and c.model.threads == 2
    with pytest.raises(EdgekitError, match="--threads"):
        override(ServeConfig(), model__threads=1_000_000_000)
    with pytest.raises(EdgekitError, match="--http"):
        override(ServeConfig(), http__listen="0")


def test_relative_source_uri_is_relative_to_the_config_file(tmp_path, monkeypatch):
    etc = tmp_path / "etc"
    etc.mkdir()
    cases = {
        "frames": str(etc / "frames"), "video/cam.avi": str(etc / "video/cam.avi"),
        "/dev/video0": "/dev/video0", "0": "0", "rtsp://cam/stream": "rtsp://cam/stream",
        "picamera2:lores": "picamera2:lores", "/abs/clip.mp4": "/abs/clip.mp4",
    }  # fmt: skip
    monkeypatch.chdir(tmp_path)  # not the config's folder
    for uri, want in cases.items():
        p = etc / "edgekit.toml"
        p.write_text(f'[source]\nuri = "{uri}"\n')
        assert load_config(p).source.uri == want, uri
