"""``serve --check`` and the HTTP address. Before: an address that is not this machine's
(``10.255.255.1:8080``, a typo), a host name that does not resolve or a link-local IPv6 without
its interface passed --check ("OK: ... http 10.255.255.1:8080"), and serve then failed at every
start ("cannot listen on ..."), systemd restarting it in a loop. A port in use passes (the
running service itself holds it when a config edit is checked) and the OK line says so."""

from __future__ import annotations

import socket

import pytest

from .conftest import TINY, cli


def _check(photo, listen):
    return cli("serve", "--check", "--model", TINY, "--source", photo.parent, "-d", "cpu",
               "--http", listen)  # fmt: skip


@pytest.mark.parametrize("listen, why", [
    ("10.255.255.1:8080", "Cannot assign requested address"),
    ("nosuchhost.invalid:8080", ""),
    ("[fe80::1]:8080", ""),
])  # fmt: skip
def test_an_address_serve_can_never_listen_on_is_refused(photo, listen, why):
    r = _check(photo, listen)
    assert r.exit_code == 1, r.output
    last = r.output.strip().splitlines()[-1]
    assert last.startswith(f"Error: HTTP address {listen}: cannot listen there ({why}"), r.output
    assert last.endswith("use an address of this machine, e.g. 127.0.0.1:8080 or 0.0.0.0:8080")


def test_a_port_in_use_passes_and_is_said(photo):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = _check(photo, f"127.0.0.1:{port}")
    assert r.exit_code == 0, r.output
    assert f"http 127.0.0.1:{port} (in use now: by this service?)" in r.output


def test_a_free_address_passes_and_stays_free(photo):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = _check(photo, f"127.0.0.1:{port}")
    assert r.exit_code == 0 and f"http 127.0.0.1:{port};" in r.output, r.output
    with socket.socket() as s:  # released: serve can bind it
        s.bind(("127.0.0.1", port))
