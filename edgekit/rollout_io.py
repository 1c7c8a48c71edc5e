"""The I/O of `edgekit rollout` (:mod:`edgekit.rollout`): the broker connection that sends
commands and follows each device's status and health, and the one-file HTTP server for
``--serve-http``. The rollout's planning and state stay in :mod:`edgekit.rollout`."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Callable

from edgekit.errors import EdgekitError
from edgekit.stream import fleet_wire as wire


class Fleet:
    """The broker connection: latest status and health per device."""

    def __init__(self, host, port, topic, username, password, tls, ca_file):
        self.topic = topic
        self.status: dict[str, dict] = {}
        self.health: dict[str, tuple[float, dict]] = {}
        self.cond = threading.Condition()
        self.last_status = time.monotonic()
        self.refused = None
        self.client = wire.make_client(
            f"edgekit-rollout-{uuid.uuid4().hex[:8]}", username, password, tls, ca_file
        )
        subscribed = threading.Event()
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: subscribed.set()
        connected = threading.Event()

        def on_connect(client, userdata, flags, reason_code, properties=None):
            if not reason_code.is_failure:
                client.subscribe([(f"{topic}/+/status", 1), (f"{topic}/+/health", 0)])
            connected.set()
            self.refused = reason_code if reason_code.is_failure else None

        self.client.on_connect = on_connect
        try:
            self.client.connect(host, int(port), keepalive=30)
        except (OSError, ValueError) as e:
            raise EdgekitError(
                f"MQTT broker {host}:{port}: {e}", "check --broker (and that the broker runs)"
            ) from None
        self.client.loop_start()
        if not connected.wait(15) or self.refused is not None:
            self.close()
            why = f"refused ({self.refused})" if connected.is_set() else "no answer"
            raise EdgekitError(
                f"MQTT broker {host}:{port}: {why}", "check --broker, --username/--password, --tls"
            )
        if not subscribed.wait(15):
            self.close()
            raise EdgekitError(f"MQTT broker {host}:{port}: the subscription was not confirmed")

    def _on_message(self, client, userdata, msg):
        parts = msg.topic.split("/")
        device, leaf = parts[-2], parts[-1]
        try:
            doc = wire.decode(msg.payload, 64 * 1024)
        except EdgekitError:
            return
        with self.cond:
            if leaf == "status":
                self.status[device] = doc
                self.last_status = time.monotonic()
            else:
                self.health[device] = (time.monotonic(), doc)
            self.cond.notify_all()

    def discover(self, quiet_s: float = 0.5, max_s: float = 3.0) -> dict[str, dict]:
        """Retained statuses arrive right after the subscription: wait until none came for
        ``quiet_s`` (at most ``max_s``)."""
        end = time.monotonic() + max_s
        with self.cond:
            while time.monotonic() < end and time.monotonic() - self.last_status < quiet_s:
                self.cond.wait(0.1)
            return {k: dict(v) for k, v in self.status.items()}

    def send(self, device: str, message: dict) -> None:
        info = self.client.publish(
            wire.topic_of(self.topic, device, "command"), wire.encode(message), qos=1
        )
        info.wait_for_publish(30)

    def wait(self, pred: Callable[[], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        with self.cond:
            while not pred():
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.2))
            return True

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class ArchiveServer:
    """Serves the archive at ``http://ADDRESS:PORT/<sha256>.tar.gz`` while the rollout runs."""

    def __init__(self, listen: str, sha: str, archive: bytes):
        import http.server

        from edgekit.stream.http import parse_listen

        host, port = parse_listen(listen)
        path = f"/{sha}.tar.gz"

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # the stdlib handler method name
                if self.path != path:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/gzip")
                self.send_header("Content-Length", str(len(archive)))
                self.end_headers()
                self.wfile.write(archive)

            def log_message(self, *args):
                pass

        try:
            self.server = http.server.ThreadingHTTPServer((host, port), Handler)
        except OSError as e:
            raise EdgekitError(
                f"--serve-http {listen}: {e.strerror or e}",
                "choose a free port on an address the devices reach",
            ) from None
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}{path}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
