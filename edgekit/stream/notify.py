"""sd_notify(3) by hand: no libsystemd binding needed.

systemd passes ``$NOTIFY_SOCKET`` to a ``Type=notify`` service: a path of an ``AF_UNIX``
datagram socket, or an abstract socket when it starts with ``@`` (the ``@`` stands for the
leading NUL byte of the Linux abstract namespace). Each datagram is newline-separated
``KEY=VALUE`` assignments: ``READY=1``, ``STATUS=...``, ``WATCHDOG=1``, ``STOPPING=1``.
With ``WatchdogSec=`` in the unit, systemd sets ``$WATCHDOG_USEC`` (and ``$WATCHDOG_PID``) and
kills and restarts the service if no ``WATCHDOG=1`` arrives within that time.
Outside systemd every call is a cheap no-op.
"""

from __future__ import annotations

import os
import socket


class Notifier:
    """Sends sd_notify datagrams to ``$NOTIFY_SOCKET`` (or ``address``)."""

    def __init__(self, address: str | None = None, environ: dict | None = None):
        env = os.environ if environ is None else environ
        self.address = address if address is not None else env.get("NOTIFY_SOCKET", "")
        self.watchdog_s = _watchdog_seconds(env)
        self._sock: socket.socket | None = None
        if self.address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def notify(self, **fields: object) -> bool:
        """Send ``KEY=VALUE`` fields (keys upper-cased). Returns False when not under systemd
        or the message could not be sent (never raises: telemetry must not stop the camera)."""
        if self._sock is None:
            return False
        text = "\n".join(f"{k.upper()}={v}" for k, v in fields.items())
        addr = self.address
        if addr.startswith("@"):
            addr = "\0" + addr[1:]
        try:
            self._sock.sendto(text.encode("utf-8"), addr)
            return True
        except OSError:
            return False

    def ready(self, status: str = "") -> bool:
        return self.notify(ready=1, **({"status": status} if status else {}))

    def status(self, text: str) -> bool:
        return self.notify(status=text.replace("\n", " "))

    def watchdog(self) -> bool:
        return self.notify(watchdog=1)

    def stopping(self) -> bool:
        return self.notify(stopping=1)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _watchdog_seconds(env) -> float:
    """The watchdog period in seconds, 0 when disabled or meant for another process."""
    try:
        usec = int(env.get("WATCHDOG_USEC", "0"))
    except ValueError:
        return 0.0
    pid = env.get("WATCHDOG_PID")
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return 0.0
    return usec / 1e6 if usec > 0 else 0.0
