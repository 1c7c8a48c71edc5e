"""The fleet's bundle archive and download (edgekit.stream.fleet_wire, fleet_fetch) against
hostile input: real tar files, a real HTTP server started by the test."""

from __future__ import annotations

import http.server
import io
import tarfile
import threading

import pytest

from edgekit import signing
from edgekit.errors import EdgekitError
from edgekit.stream import fleet_wire as wire
from edgekit.stream.fleet_fetch import fetch

from .bundles import make_bundle


def tar_of(*members) -> bytes:
    """members: (TarInfo, bytes or None)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def member(name, data=b"x", kind=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, (data if kind == tarfile.REGTYPE else None)


def test_pack_unpack_round_trip_is_deterministic(tmp_path):
    b = make_bundle(tmp_path / "b", "a")
    key, _, _ = signing.keygen(tmp_path / "k")
    signing.sign(b, key)
    data = wire.pack(b)
    assert wire.pack(b) == data  # same bytes every time: same archive sha256
    wire.unpack(data, tmp_path / "out", 10 << 20)
    assert signing.verify(tmp_path / "out", str(tmp_path / "k.pub")).digest == (
        signing.bundle_digest(b)
    )


@pytest.mark.parametrize(
    "members, message",
    [
        ([member("/etc/cron.d/x")], "unsafe path"),
        ([member("a/../../x")], "unsafe path"),
        ([member("..")], "unsafe path"),
        ([member("l", kind=tarfile.SYMTYPE, link="/etc/passwd")], "not a regular file"),
        ([member("h", kind=tarfile.LNKTYPE, link="edgekit.json")], "not a regular file"),
        ([member("f", kind=tarfile.FIFOTYPE)], "not a regular file"),
        ([member("dev", kind=tarfile.CHRTYPE)], "not a regular file"),
        ([member("big", bytes(2048))], "unpacks to more than 1024 bytes"),
        ([member("x"), member("x")], "File exists"),
        ([member(f"f{i}") for i in range(wire.MAX_MEMBERS + 1)], "more than 1000 files"),
    ],
)
def test_hostile_archives_are_refused_and_leave_nothing(tmp_path, members, message):
    dest = tmp_path / "dest"
    with pytest.raises(EdgekitError, match=message):
        wire.unpack(tar_of(*members), dest, 1024 if "big" in str(members) else 10**6)
    assert not dest.exists() and sorted(tmp_path.iterdir()) == []


def test_garbage_is_one_error(tmp_path):
    for data in (b"", b"not a tar", tar_of(member("a"))[:40]):
        with pytest.raises(EdgekitError, match="not a readable bundle archive"):
            wire.unpack(data, tmp_path / "d", 10**6)
        assert not (tmp_path / "d").exists()


@pytest.fixture
def server():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # the stdlib handler method name
            if self.path == "/ok":
                body = b"z" * 100
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif self.path == "/nolength":  # no Content-Length: the cap applies while reading
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"z" * 5000)
            elif self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "ftp://127.0.0.1/x")  # urllib would follow it
                self.end_headers()
            else:
                self.send_error(404)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_fetch_is_capped_and_http_only(server):
    assert fetch(f"{server}/ok", 100, 10) == b"z" * 100
    cases = [
        (f"{server}/ok", 99, "100 bytes is over the 99-byte limit"),
        (f"{server}/nolength", 1000, "larger than the 1000-byte limit"),
        (f"{server}/redirect", 1000, "http and https only"),
        (f"{server}/missing", 1000, "HTTP 404"),
        ("file:///etc/passwd", 1000, "only http:// and https://"),
        ("ftp://example.com/x", 1000, "only http:// and https://"),
        ("http://127.0.0.1:1/x", 1000, "cannot download"),
    ]
    for url, cap, message in cases:
        with pytest.raises(EdgekitError, match=message):
            fetch(url, cap, 10)
