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
it never prints.
"""

from __future__ import annotations

import dataclasses
import hashlib
import signal
import time
import uuid
from typing import Callable

from edgekit.errors import EdgekitError
from edgekit.rollout_io import ArchiveServer, Fleet
from edgekit.stream import fleet_wire as wire

STALE_S = 5.0  # a canary whose newest result (or health report) is older than this is unhealthy
INLINE_MAX_BYTES = 8 * 1024 * 1024  # larger archives go by URL (--serve-http)


@dataclasses.dataclass
class DeviceRow:
    device: str
    group: str = ""  # canary | rest | "" (not part of this rollout)
    before: str = ""  # sha256 the device ran before
    after: str = ""  # sha256 it runs at the end
    state: str = ""  # deployed | failed | rolled back | not sent | offline | unchanged | timeout
    seconds: float | None = None  # command to report
    message: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


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
        run = _Run(fleet, sha, payload, progress, timeout_s)
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


class _Run:
    def __init__(self, fleet: Fleet, sha: str, payload: dict, progress, timeout_s: float):
        self.fleet, self.sha, self.payload = fleet, sha, payload
        self.progress, self.timeout_s = progress, timeout_s
        self.id = uuid.uuid4().hex[:12]
        self.rows: dict[str, DeviceRow] = {}
        self.interrupted = 0  # the signal that stopped the run (its rollback too, if repeated)

    def plan(self, found: dict[str, dict]) -> list[str]:
        targets = []
        for name in sorted(found):
            st = found[name]
            row = self.rows[name] = DeviceRow(
                name, before=str(st.get("sha256", "")), after=str(st.get("sha256", ""))
            )
            if st.get("state") == "offline":
                row.state, row.message = "offline", "not sent (offline)"
            elif st.get("sha256") == self.sha:
                row.state, row.message = "unchanged", "already runs this bundle"
            else:
                row.state = "not sent"
                targets.append(name)
        return targets

    def _terminal(self, device: str) -> dict | None:
        st = self.fleet.status.get(device, {})
        if st.get("state") == "offline":
            return st
        if st.get("rollout") == self.id and st.get("state") in ("deployed", "failed"):
            return st
        return None

    def deploy(self, devices: list[str], group: str) -> str:
        """Send to ``devices`` and wait for each; returns why the rollout must stop, or ''."""
        t0 = time.monotonic()
        for d in devices:
            self.rows[d].group, self.rows[d].state = group, "sent"
            self.fleet.send(
                d, {"action": "deploy", "rollout": self.id, "sha256": self.sha, **self.payload}
            )
            self.progress(f"{d}: sent ({group})")
        pending = set(devices)
        failures = []
        while pending:
            done = self.fleet.wait(
                lambda: any(self._terminal(d) for d in pending),
                max(0.0, t0 + self.timeout_s - time.monotonic()),
            )
            if not done:
                for d in sorted(pending):
                    self._set(d, "timeout", f"no report within {self.timeout_s:g} s", t0)
                    failures.append(d)
                break
            for d in sorted(pending):
                st = self._terminal(d)
                if st is None:
                    continue
                pending.discard(d)
                state = st.get("state")
                self.rows[d].after = str(st.get("sha256", ""))
                if state == "deployed":
                    self._set(d, "deployed", "", t0)
                else:
                    self._set(d, state, str(st.get("reason", "went offline")), t0)
                    failures.append(d)
        if failures:
            return f"{', '.join(failures)}: {self.rows[failures[0]].message}"
        return ""

    def _set(self, device: str, state: str, message: str, t0: float) -> None:
        row = self.rows[device]
        row.state, row.message = state, message
        row.seconds = round(time.monotonic() - t0, 2)
        short = row.after[:12] or "-"
        self.progress(
            f"{device}: {state} {short} in {row.seconds:.1f} s"
            + (f": {message}" if message else "")
        )

    def watch(self, devices: list[str], wait_s: float) -> str:
        """Every device keeps producing results from the new bundle for ``wait_s``."""
        if wait_s <= 0:
            return ""
        self.progress(f"watching {', '.join(devices)} for {wait_s:g} s")
        t0 = time.monotonic()
        start = {d: self._frames(d) for d in devices}
        seen: set[str] = set()  # devices whose health already shows the new bundle
        while time.monotonic() - t0 < wait_s:
            for d in devices:
                why = self._unhealthy(d, t0)
                # a health report sent just before the switch may still show the old bundle
                if why.startswith("runs ") and d not in seen and time.monotonic() - t0 < STALE_S:
                    continue
                if not why:
                    seen.add(d)
                    continue
                self.rows[d].state, self.rows[d].message = "unhealthy", why
                self.progress(f"{d}: UNHEALTHY: {why}")
                return f"{d}: {why}"
            time.sleep(0.2)
        for d in devices:
            if wait_s >= 2 and self._frames(d) <= start[d]:
                self.rows[d].state, self.rows[d].message = "unhealthy", "no new results"
                return f"{d}: no new results in {wait_s:g} s"
            self.progress(f"{d}: healthy for {wait_s:g} s")
        return ""

    def _frames(self, device: str) -> int:
        got = self.fleet.health.get(device)
        return int(got[1].get("frames") or 0) if got else -1

    def _unhealthy(self, device: str, since: float) -> str:
        """Why ``device`` is not healthy now ('' if it is); ``since``: when watching began."""
        if self.fleet.status.get(device, {}).get("state") == "offline":
            return "went offline"
        got = self.fleet.health.get(device)
        if time.monotonic() - (got[0] if got else since) > STALE_S:
            return f"no health report for {STALE_S:g} s"
        if got is None:
            return "runs ? (no health report yet)"
        doc = got[1]
        if doc.get("sha256") != self.sha:
            return f"runs {str(doc.get('sha256'))[:12]}, not the new bundle"
        age = doc.get("age_s")
        if age is None or not isinstance(age, (int, float)) or age > STALE_S:
            return f"no results for {age} s" if age is not None else "no results yet"
        return ""

    def roll_back(self) -> None:
        """Every device of this run that runs the new bundle goes back to its previous one;
        after an interruption also those sent it that have not reported yet (a device handles
        its commands in order: the rollback follows the deploy). A signal during the rollback
        stops waiting: each row then says what the device reported last (``after``)."""
        maybe = ("sent",) if self.interrupted else ()
        back = [
            r
            for r in self.rows.values()
            if r.group and (r.after == self.sha or r.state in maybe)
            and r.before and r.before != self.sha
        ]  # fmt: skip
        t0 = time.monotonic()
        try:
            self._send_back(back)
        except KeyboardInterrupt as e:
            self.interrupted = self.interrupted or getattr(e, "signum", signal.SIGINT)
            self.progress("rollback interrupted: not waiting for the devices")
        for r in back:
            self._report_back(r, t0)

    def _send_back(self, back: list[DeviceRow]) -> None:
        for r in back:
            self.fleet.send(
                r.device, {"action": "rollback", "rollout": self.id, "sha256": r.before}
            )
            r.state = "rolling back"
            self.progress(f"{r.device}: rolling back to {r.before[:12]}")
        self.fleet.wait(lambda: all(self._returned(r) for r in back), self.timeout_s)

    def _returned(self, r: DeviceRow) -> bool:
        st = self.fleet.status.get(r.device, {})
        return (
            st.get("rollout") == self.id
            and st.get("sha256") == r.before
            and st.get("state") == "deployed"
            and st.get("action") == "rollback"
        )

    def _report_back(self, r: DeviceRow, t0: float) -> None:
        st = self.fleet.status.get(r.device, {})
        if self._returned(r):
            r.after, r.state = r.before, "rolled back"
            r.message = r.message or "rolled back after the failure"
        else:  # what it reported last: the bundle it runs, and deploying/failed/offline
            r.after = str(st.get("sha256", r.after))
            if r.state != "rolling back":
                r.state = "not rolled back"  # interrupted before its rollback was sent
            else:
                r.state = "rollback unconfirmed" if self.interrupted else "rollback failed"
            r.message = str(st.get("reason") or f"last report: {st.get('state', 'none')}")
        r.seconds = round(time.monotonic() - t0, 2)
        self.progress(f"{r.device}: {r.state} ({r.after[:12]})")
