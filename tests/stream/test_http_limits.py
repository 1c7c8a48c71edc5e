"""The HTTP sink under idle, slow and rude clients, for real on loopback: the status page,
/healthz and /metrics keep answering while 100 idle connections are open; idle clients are
dropped after a timeout; connections beyond the limit are closed at once; a client that hangs up
early leaves no traceback; IPv6 listens."""

from __future__ import annotations

import socket
import struct
import time
import urllib.error
import urllib.request

import pytest

from edgekit.errors import EdgekitError
from edgekit.stream.http import HttpSink, parse_listen


def get(url: str, timeout: float = 5.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_answers_while_100_idle_connections_are_open():
    sink = HttpSink("127.0.0.1", 0, idle_timeout_s=30)
    idle = []
    try:
        for i in range(100):
            c = socket.create_connection((sink.host, sink.port), timeout=5)
            if i % 2:
                c.sendall(b"GET /latest HTTP/1.1\r\nHost: x\r\n")  # headers never finished
            idle.append(c)
        t0 = time.monotonic()
        for route in ("", "healthz", "metrics", "latest"):
            assert get(sink.url + route) in (200, 503), route
        assert time.monotonic() - t0 < 5
    finally:
        for c in idle:
            c.close()
        sink.close()


def test_idle_clients_are_dropped_and_extra_connections_refused():
    sink = HttpSink("127.0.0.1", 0, max_connections=8, idle_timeout_s=0.5)
    try:
        idle = [socket.create_connection((sink.host, sink.port), timeout=5) for _ in range(8)]
        time.sleep(0.2)
        extra = socket.create_connection((sink.host, sink.port), timeout=5)
        assert extra.recv(100) == b""  # closed at once: over the limit
        extra.close()
        for c in idle:  # each is closed by the server after its idle timeout
            assert c.recv(100) == b""
            c.close()
        assert get(sink.url + "healthz") == 503  # answering again (503: no result yet)
    finally:
        sink.close()


def test_clients_hanging_up_early_print_no_traceback(capfd):
    sink = HttpSink("127.0.0.1", 0)
    try:
        for _ in range(5):
            c = socket.create_connection((sink.host, sink.port))
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()  # RST: the server's write fails
        time.sleep(0.5)
        assert get(sink.url + "metrics") == 200
    finally:
        sink.close()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err, err


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_ipv6_listen():
    host, port = parse_listen("[::1]:8080")
    assert (host, port) == ("::1", 8080)
    sink = HttpSink("::1", 0)
    try:
        assert sink.url.startswith("http://[::1]:")
        assert get(sink.url + "healthz") == 503
    finally:
        sink.close()


@pytest.mark.parametrize(
    "text", ["0", "127.0.0.1:0", "127.0.0.1:65536", "1000000", "::1:8080", "[]:80", "x:y", ""]
)
def test_bad_listen_addresses(text):
    with pytest.raises(EdgekitError, match="HTTP address"):
        parse_listen(text)


def test_a_port_in_use_names_both_ways_to_choose_another():
    """The address can come from --http or from [http] listen: the hint names both."""
    first = HttpSink("127.0.0.1", 0)
    try:
        with pytest.raises(EdgekitError) as e:
            HttpSink("127.0.0.1", first.port)
        assert f"cannot listen on 127.0.0.1:{first.port}" in e.value.message
        assert "--http" in e.value.hint and "[http] listen" in e.value.hint
    finally:
        first.close()
