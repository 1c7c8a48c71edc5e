"""`edgekit rollout`: ship a signed bundle to the serve processes listening under a fleet topic,
canaries first, and roll back on failure (protocol: :mod:`edgekit.stream.fleet_wire`).

1. Check the bundle locally (signed, and the signature holds against the key it names: a
   bundle changed after signing never leaves this machine), pack it, connect to the broker.
2. Learn the fleet from the retained ``T/+/status`` documents (devices announce themselves);
   ``offline`` devices are listed and skipped, devices already on this bundle are left alone.
3. Canaries (the first N devices by name): send, wait until each reports ``deployed`` (or
   ``failed``, ``offline``, or the timeout), then watch their health for ``wait_s``: every
   device must keep reporting results (the newest at most ``STALE_S`` old) from the new bundle.
4. The rest: send, wait until each reports.
5. Any failure stops the rollout: nothing more is sent, and every device that took the new
   bundle is sent back to the bundle it ran before (which it kept on disk).

The library reports progress through ``progress(line)`` and returns a :class:`RolloutResult`;
it never prints. The steps themselves are :mod:`~.rollout_run`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import signal
from typing import Callable

from edgekit.errors import EdgekitError
from edgekit.rollout_io import ArchiveServer, Fleet
from edgekit.rollout_run import STALE_S, DeviceRow, RolloutRun  # noqa: F401 - their import path
from edgekit.stream import fleet_wire as wire

INLINE_MAX_BYTES = 8 * 1024 * 1024  # larger archives go by URL (--serve-http)


@dataclasses.dataclass(frozen=True)
class RolloutResult:
    bundle: str
    sha256: str
    ok: bool
    devices: tuple[DeviceRow, ...]
    stopped: str = ""  # why the rollout stopped ("" when it completed)
    transport: str = "inline"  # inline | url
    interrupted: int = 0  # the signal (SIGINT: Ctrl-C, SIGTERM) that stopped it, 0 if none

    def to_dict(self) -> dict:
        return {
            "bundle": self.bundle,
            "sha256": self.sha256,
            "ok": self.ok,
            "stopped": self.stopped,
            "interrupted": signal.Signals(self.interrupted).name if self.interrupted else "",
            "transport": self.transport,
            "devices": [d.to_dict() for d in self.devices],
        }


def rollout(
    bundle: str,
    host: str,
    port: int,
    topic: str,
    *,
    canary: int = 1,
    wait_s: float = 30.0,
    timeout_s: float = 120.0,
    username: str = "",
    password: str = "",
    tls: bool = False,
    ca_file: str = "",
    serve_http: str = "",
    progress: Callable[[str], None] = lambda line: None,
) -> RolloutResult:
    """Run a rollout (see the module docstring). Raises EdgekitError before anything is sent
    (bundle, broker, empty fleet); failures during the rollout are in the result."""
    topic = wire.check_topic(topic)
    sha = _check_bundle(bundle)
    archive = wire.pack(bundle)
    server = None
    if serve_http:
        server = ArchiveServer(serve_http, sha, archive)
        payload = {
            "url": server.url,
            "archive_sha256": hashlib.sha256(archive).hexdigest(),
            "size": len(archive),
        }
        transport = "url"
    elif len(archive) > INLINE_MAX_BYTES:
        raise EdgekitError(
            f"{bundle}: the archive is {len(archive) / 2**20:.1f} MiB, too large "
            "for one MQTT message",
            "pass --serve-http ADDRESS:PORT (devices download it)",
        )
    else:
        payload, transport = {"archive": wire.b64(archive)}, "inline"
    try:
        fleet = Fleet(host, port, topic, username, password, tls, ca_file)
    except BaseException:
        if server is not None:
            server.close()
        raise
    try:
        run = RolloutRun(fleet, sha, payload, progress, timeout_s)
        found = fleet.discover()
        if not found:
            raise EdgekitError(
                f"no devices under {topic}/ on {host}:{port}",
                "check --topic and the devices' [fleet] topic",
            )
        targets = run.plan(found)
        canaries, rest = targets[:canary], targets[canary:]
        progress(
            f"rollout {run.id}: {sha[:12]} to {len(targets)} "
            f"device(s) ({len(canaries)} canary, {len(found) - len(targets)} skipped), "
            f"{transport}, {len(archive)} bytes"
        )
        stopped = ""
        try:
            if canaries:
                stopped = run.deploy(canaries, "canary") or run.watch(canaries, wait_s)
            if not stopped and rest:
                stopped = run.deploy(rest, "rest")
        except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM/SIGHUP raised like it by the CLI
            run.interrupted = getattr(e, "signum", signal.SIGINT)
            stopped = f"interrupted by {signal.Signals(run.interrupted).name}"
        if stopped:
            progress(f"rollout stopped: {stopped}; rolling back")
            run.roll_back()
        rows = tuple(sorted(run.rows.values(), key=lambda r: r.device))
        ok = not stopped and all(r.state in ("deployed", "unchanged") for r in rows if r.group)
        return RolloutResult(str(bundle), sha, ok, rows, stopped, transport, run.interrupted)
    finally:
        fleet.close()
        if server is not None:
            server.close()


def _check_bundle(bundle: str) -> str:
    """The bundle's digest, after checking that it is signed and unchanged since (against the
    key in its own edgekit.sig: whether the devices trust that key is theirs to say)."""
    import json

    from edgekit import signing
    from edgekit.safeio import read_text

    sig_path = f"{bundle}/{signing.SIG_NAME}"
    try:
        key = json.loads(read_text(sig_path, "signature", signing.SIG_LIMIT))["public_key"]
    except EdgekitError:
        raise EdgekitError(
            f"{bundle}: not signed", "sign it first: edgekit sign BUNDLE --key KEYFILE"
        ) from None
    except (ValueError, KeyError, TypeError):
        raise EdgekitError(f"{sig_path}: unreadable signature file", "sign it again") from None
    return signing.verify(bundle, str(key)).digest
