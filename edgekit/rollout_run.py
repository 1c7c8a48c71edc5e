"""The steps of one `edgekit rollout` over a connected fleet (:mod:`edgekit.rollout` sequences
them): which devices get the bundle, deploy and wait for each report, watch the canaries'
health, roll back every device that took the new bundle.
"""

from __future__ import annotations

import dataclasses
import signal
import time
import uuid

from edgekit.rollout_io import Fleet

STALE_S = 5.0  # a canary whose newest result (or health report) is older than this is unhealthy


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


class RolloutRun:
    """One rollout's devices (:class:`DeviceRow` by name) and its steps: plan, deploy to a
    group and wait for the reports, watch the canaries' health, roll back. Times in seconds
    (monotonic clock); ``progress(line)`` hears each step."""

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
