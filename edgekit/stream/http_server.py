"""The HTTP server under :mod:`edgekit.stream.http`: the listen address parsed, and a
threading server bounded in connections, idle time and backlog.
"""

from __future__ import annotations

import logging
import socket
import threading
from http.server import ThreadingHTTPServer

from edgekit.errors import EdgekitError

log = logging.getLogger("edgekit.stream")


def parse_listen(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT``, ``:PORT`` or ``PORT`` -> (host, port); port 1-65535."""
    hint = "use HOST:PORT with a port 1-65535, e.g. 127.0.0.1:8080 or [::1]:8080"
    host, _, port = str(text).strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if not host:
            raise EdgekitError(f"bad HTTP address {text!r}", hint)
    elif ":" in host:
        raise EdgekitError(f"bad HTTP address {text!r}: IPv6 needs brackets", hint)
    host = host or default_host
    try:
        p = int(port)
        if not 1 <= p <= 65535:
            raise ValueError
    except ValueError:
        raise EdgekitError(f"bad HTTP address {text!r}", hint) from None
    return host, p


# A few idle or slow clients must not starve the status page, /healthz or /metrics: connections
# beyond MAX_CONNECTIONS are closed at once, and a client that sends nothing for IDLE_TIMEOUT_S
# is dropped. The backlog absorbs a burst of connects while the accept thread is busy.
MAX_CONNECTIONS = 256
IDLE_TIMEOUT_S = 10.0
BACKLOG = 128


class BoundedServer(ThreadingHTTPServer):
    """A threading HTTP server (IPv4 or IPv6 by the host's form) that serves at most
    ``max_connections`` clients at once; more are closed at accept."""

    daemon_threads = True
    request_queue_size = BACKLOG

    def __init__(self, address, handler, max_connections: int = MAX_CONNECTIONS):
        host = address[0]
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)  # over the limit: close now, keep serving the rest
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address):
        """A client that disconnects early or times out is normal: no traceback per client."""
        import sys

        err = sys.exc_info()[1]
        if isinstance(err, (ConnectionError, TimeoutError, OSError)):
            return
        log.warning("HTTP request from %s failed: %s: %s", client_address[0],
                    type(err).__name__, err)  # fmt: skip
