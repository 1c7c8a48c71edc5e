"""Fleet rollout end to end: a real mosquitto, three real `edgekit serve` processes (a looping
video, CPU inference, each its own [fleet] device and state folder) and the real `edgekit
rollout` command. One module-scoped fleet serves every test, in order: a signed rollout, a
foreign-key bundle and hostile commands, a canary failure with rollback, a rollout by URL."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from edgekit import signing
from edgekit.stream import fleet_wire as wire
from tests.tty import EDGEKIT, run_in_pty

from .bundles import make_bundle, version_of
from .conftest import edgekit_cmd, free_port
from .test_mqtt import Subscriber, broker  # noqa: F401 - the fixture (a real mosquitto)

DEVICES = ("cam1", "cam2", "cam3")  # cam2 accepts bundles of at most 1 MiB


class Device:
    """One `edgekit serve` process; its JSON lines collected with the time they arrived."""

    def __init__(self, name: str, config: Path):
        self.name, self.lines = name, []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen([*edgekit_cmd(), "serve", "--config", str(config)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)  # fmt: skip
        self.err: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=lambda: self.err.extend(self.proc.stderr), daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            with self.cond:
                self.lines.append(json.loads(raw))
                self.cond.notify_all()

    def wait(self, pred, timeout=60.0, what=""):
        end = time.monotonic() + timeout
        with self.cond:
            while not pred(self.lines):
                left = end - time.monotonic()
                assert left > 0 and self.proc.poll() is None, (
                    f"{self.name}: {what}; rc={self.proc.poll()} {''.join(self.err)[-2000:]}"
                )
                self.cond.wait(min(left, 0.5))

    def results(self, since=0):
        with self.cond:
            return [x for x in self.lines[since:] if "frame" in x]

    def events(self, kind, since=0):
        with self.cond:
            return [x for x in self.lines[since:] if x.get("event") == kind]

    def mark(self) -> int:
        with self.cond:
            return len(self.lines)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    key, pub, _ = signing.keygen(d / "fleet")
    other, _, _ = signing.keygen(d / "other")
    return {"key": key, "pub": pub, "other": other}


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, keys):
    d = tmp_path_factory.mktemp("fleet_bundles")
    out = {}
    for v, extra, key in [("a", b"", "key"), ("b", b"", "key"), ("c", os.urandom(1 << 20), "key"),
                          ("d", b"", "key"), ("f", b"", "other")]:  # fmt: skip
        out[v] = make_bundle(d / v, v, extra)
        signing.sign(out[v], keys[key])
    return out


@pytest.fixture(scope="module")
def fleet(broker, bundles, keys, video_avi, tmp_path_factory):  # noqa: F811 - the fixture
    d = tmp_path_factory.mktemp("fleet")
    topic = f"fleet-{uuid.uuid4().hex[:6]}"
    devices = {}
    watcher = Subscriber(broker, f"{topic}/+/status")  # announcements only
    try:
        for name in DEVICES:
            cap = "max_bundle_mb = 1.0\n" if name == "cam2" else ""
            cfg = d / f"{name}.toml"
            cfg.write_text(
                f'[model]\npath = "{bundles["a"]}"\ndevice = "cpu"\ntop_k = 1\n'
                f'[source]\nuri = "{video_avi}"\nloop = true\nrealtime = true\n'
                f'[mqtt]\nhost = "127.0.0.1"\nport = {broker}\n'
                f'[fleet]\ntopic = "{topic}"\ndevice = "{name}"\npublic_key = "{keys["pub"]}"\n'
                f'state_dir = "{d / name}"\n{cap}'
            )
            devices[name] = Device(name, cfg)
        for dev in devices.values():
            dev.wait(lambda lines: any("frame" in x for x in lines), what="first result")
        for name in DEVICES:  # each announced itself (retained status)
            watcher.wait_for(lambda m, n=name: m[0] == f"{topic}/{n}/status" and '"online"' in m[1])
        yield {"topic": topic, "devices": devices, "port": broker, "dir": d}
    finally:
        watcher.close()
        for dev in devices.values():
            dev.proc.terminate()
        for dev in devices.values():
            try:
                dev.proc.wait(20)
            except subprocess.TimeoutExpired:
                dev.proc.kill()
            assert "Traceback" not in "".join(dev.err), "".join(dev.err)


def rollout(fleet, bundle, *args, pty=False):
    cmd = ["rollout", str(bundle), "--broker", f"127.0.0.1:{fleet['port']}",
           "--topic", fleet["topic"], *args]  # fmt: skip
    if pty:
        return run_in_pty([*EDGEKIT, *cmd], timeout=180)
    return subprocess.run([*edgekit_cmd(), *cmd], capture_output=True, text=True, timeout=180)


def gaps(results) -> float:
    ts = [r["timestamp"] for r in results]
    return max(b - a for a, b in zip(ts, ts[1:]))


def test_signed_rollout_switches_every_device_without_a_gap(fleet, bundles):
    devs = fleet["devices"]
    marks = {n: d.mark() for n, d in devs.items()}
    out = rollout(fleet, bundles["b"], "--canary", "1", "--wait", "2", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    sha = signing.bundle_digest(bundles["b"])
    assert report["ok"] and report["sha256"] == sha and report["transport"] == "inline"
    rows = {r["device"]: r for r in report["devices"]}
    assert [rows[n]["group"] for n in DEVICES] == ["canary", "rest", "rest"]
    assert all(rows[n]["state"] == "deployed" and rows[n]["after"] == sha for n in DEVICES)
    assert "cam1: healthy for 2 s" in out.stderr and "cam3: deployed" in out.stderr
    for name, dev in devs.items():
        dev.wait(lambda lines, m=marks[name]: sum(version_of(x) == "b" for x in lines[m:]) >= 5,
                 what="results of the new bundle")  # fmt: skip
        reloaded = dev.events("model_reloaded", marks[name])
        assert len(reloaded) == 1 and reloaded[0]["sha256"] == sha
        results = dev.results(marks[name])
        v = [version_of(r) for r in results]
        k = v.index("b")
        assert set(v[:k]) == {"a"} and set(v[k:]) == {"b"}
        gap = gaps(results)
        print(f"{name}: {len(results)} results during the rollout, largest gap {gap * 1000:.0f} ms")
        assert gap < 2.0
        state = json.loads((fleet["dir"] / name / "state.json").read_text())
        assert state["current"]["sha256"] == sha
        assert os.path.realpath(fleet["dir"] / name / "current") == state["current"]["path"]


def test_foreign_key_and_hostile_commands_are_refused(fleet, bundles, keys, tmp_path):
    devs = fleet["devices"]
    sha_b = signing.bundle_digest(bundles["b"])
    marks = {n: d.mark() for n, d in devs.items()}
    out = rollout(fleet, bundles["f"], "--canary", "0", "--json")  # all at once
    assert out.returncode == 1 and "Error: rollout of" in out.stderr, out.stderr
    rows = {r["device"]: r for r in json.loads(out.stdout)["devices"]}
    for name in DEVICES:
        assert rows[name]["state"] == "failed" and "bad signature" in rows[name]["message"]
        assert rows[name]["after"] == sha_b
    # a tampered copy never leaves the machine: rollout checks the signature first
    tampered = Path(shutil.copytree(bundles["b"], tmp_path / "tampered"))
    (tampered / "edgekit.json").write_text((tampered / "edgekit.json").read_text() + " ")
    out = rollout(fleet, tampered)
    assert out.returncode == 1
    assert "edgekit.json changed since it was signed" in out.stderr and "sent" not in out.stderr
    # whoever else can publish on the broker: a tampered archive under the signed sha256, an
    # archive escaping its folder, a symlink, a bomb (cam2 takes 1 MiB), garbage
    send = Subscriber(fleet["port"], f"{fleet['topic']}/+/status")  # statuses only
    # a signed bundle altered in transit (one label renamed), sent to every device
    manifest = json.loads((bundles["d"] / "edgekit.json").read_text())
    manifest["labels"][88] = "d:eagle"
    tampered_archive = _archive({**_files(bundles["d"]),
                                 "edgekit.json": json.dumps(manifest).encode()})  # fmt: skip
    sha_d = signing.bundle_digest(bundles["d"])
    hostile = {
        "escape": _archive({"../evil": b"x"}),
        "link": _archive({}, link=("model_int8.tflite", "/etc/passwd")),
        "bomb": _archive({"zeros": bytes(3 << 20)}),
    }
    try:
        for name in DEVICES:
            msg = {"action": "deploy", "rollout": "tampered", "sha256": sha_d,
                   "archive": wire.b64(tampered_archive)}  # fmt: skip
            send.client.publish(f"{fleet['topic']}/{name}/command", json.dumps(msg), qos=1)
        for name in DEVICES:
            send.wait_for(lambda m, n=name: _failed_status(m, n, "tampered"))
        for what, data in hostile.items():
            msg = {"action": "deploy", "rollout": what, "sha256": sha_d, "archive": wire.b64(data)}
            send.client.publish(f"{fleet['topic']}/cam2/command", json.dumps(msg), qos=1)
            send.wait_for(lambda m, w=what: _failed_status(m, "cam2", w))
        send.client.publish(f"{fleet['topic']}/cam2/command", b"\xff not json", qos=1)
        time.sleep(1.0)
    finally:
        send.close()
    for name in DEVICES:  # the tampered bundle: refused by every device
        refusals = [e["message"] for e in devs[name].events("reload_failed", marks[name])
                    if e.get("rollout") == "tampered"]  # fmt: skip
        assert len(refusals) == 1 and "edgekit.json changed since it was signed" in refusals[0]
    reasons = [e["message"] for e in devs["cam2"].events("reload_failed", marks["cam2"])]
    assert any("unsafe path" in r for r in reasons) and any("not a regular file" in r
                                                            for r in reasons)  # fmt: skip
    assert any("unpacks to more than" in r for r in reasons) and any("not JSON" in r
                                                                    for r in reasons)  # fmt: skip
    for name, dev in devs.items():
        n = dev.mark()
        dev.wait(lambda lines, n=n: sum("frame" in x for x in lines[n:]) >= 5, what="results")
        assert {version_of(r) for r in dev.results(marks[name])} == {"b"}
        assert not dev.events("model_reloaded", marks[name])
        left = sorted(p.name for p in (fleet["dir"] / name / "bundles").iterdir())
        assert left == [sha_b], left  # nothing half-unpacked stays behind


def _failed_status(message, device: str, rollout: str) -> bool:
    topic, payload, _ = message
    if not topic.endswith(f"{device}/status"):
        return False
    doc = json.loads(payload)
    return doc.get("rollout") == rollout and doc.get("state") == "failed"


def _files(bundle: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in bundle.iterdir()}


def _archive(files: dict[str, bytes], link: tuple[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link[0])
            info.type, info.linkname = tarfile.SYMTYPE, link[1]
            tar.addfile(info)
    return buf.getvalue()


def test_canary_failure_stops_and_rolls_back(fleet, bundles):
    devs = fleet["devices"]
    sha_b, sha_c = (signing.bundle_digest(bundles[v]) for v in "bc")
    marks = {n: d.mark() for n, d in devs.items()}
    # cam2 (a canary) takes at most 1 MiB: c is bigger. cam1 deploys it, cam2 refuses.
    code, text = rollout(fleet, bundles["c"], "--canary", "2", "--wait", "1", pty=True)
    assert code == 1, text
    assert "cam1: rolling back to" in text and "cam1: rolled back" in text, text
    table = text[text.index("DEVICE") :]
    row = {line.split()[0]: line for line in table.splitlines()[1:] if line.startswith("cam")}
    assert "rolled back" in row["cam1"] and "failed" in row["cam2"] and "not sent" in row["cam3"]
    assert "max_bundle_mb" in row["cam2"] or "more than" in row["cam2"], row["cam2"]
    assert "Error: rollout of" in text and "Traceback" not in text
    reloads = [e["sha256"] for e in devs["cam1"].events("model_reloaded", marks["cam1"])]
    assert reloads == [sha_c, sha_b]  # took c, then back to b
    assert not devs["cam3"].events("model_reloaded", marks["cam3"])
    assert len(devs["cam2"].events("reload_failed", marks["cam2"])) == 1
    for dev in devs.values():
        n = dev.mark()
        dev.wait(lambda lines, n=n: sum("frame" in x for x in lines[n:]) >= 3, what="results")
        assert version_of(dev.results(n)[-1]) == "b"


def test_rollout_by_url(fleet, bundles):
    devs = fleet["devices"]
    sha_d = signing.bundle_digest(bundles["d"])
    marks = {n: d.mark() for n, d in devs.items()}
    out = rollout(fleet, bundles["d"], "--canary", "0", "--json",
                  "--serve-http", f"127.0.0.1:{free_port()}")  # fmt: skip
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["transport"] == "url" and report["ok"]
    for name, dev in devs.items():
        assert [e["sha256"] for e in dev.events("model_reloaded", marks[name])] == [sha_d]
        state = json.loads((fleet["dir"] / name / "state.json").read_text())
        assert state["previous"]["sha256"] == signing.bundle_digest(bundles["b"])
        kept = sorted(p.name for p in (fleet["dir"] / name / "bundles").iterdir())
        assert kept == sorted([sha_d, state["previous"]["sha256"]])
    # the same bundle again: nothing to do; a device that went away (its retained last will)
    # is listed, not sent to, and not picked as the canary although it sorts first
    gone = Subscriber(fleet["port"], f"{fleet['topic']}/cam0")
    doc = {"device": "cam0", "state": "offline", "sha256": "0" * 64}
    gone.client.publish(f"{fleet['topic']}/cam0/status", json.dumps(doc), qos=1, retain=True)
    gone.wait_for(lambda m: m[0].endswith("cam0/status"))
    gone.close()
    code, text = rollout(fleet, bundles["d"], pty=True)
    assert code == 0, text
    table = text[text.index("DEVICE") :]
    assert re.search(r"cam0\s+-\s+0{12}\s+0{12}\s+offline\s+-\s+not sent \(offline\)", table)
    assert table.count("unchanged") == 3 and "OK (1 offline, not sent)" in table
    # errors before anything is sent: one line each
    for args, message in [
        ((bundles["d"], "--topic", "nobody-here"), "no devices under nobody-here/"),
        ((bundles["d"], "--broker", f"127.0.0.1:{free_port()}"), "MQTT broker 127.0.0.1:"),
        ((make_bundle(fleet["dir"] / "unsigned", "u"),), "not signed"),
        ((bundles["d"], "--wait", "nan"), "must be a finite number"),
        ((bundles["d"], "--topic", "a/+"), "not a plain MQTT topic"),
    ]:
        out = rollout(fleet, *args)
        assert out.returncode in (1, 2) and message in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr and "sent" not in out.stderr
    # a restarted serve starts from the bundle the fleet deployed, not the configured one
    old = devs["cam3"]
    old.proc.terminate()
    assert old.proc.wait(20) == 0
    devs["cam3"] = Device("cam3", fleet["dir"] / "cam3.toml")
    devs["cam3"].wait(lambda lines: any("frame" in x for x in lines), what="first result")
    assert version_of(devs["cam3"].results()[0]) == "d"


def _interrupt(fleet, bundle, args, after: str, signum) -> tuple[int, str, str]:
    """`edgekit rollout` sent ``signum`` once its progress printed ``after``."""
    cmd = [*edgekit_cmd(), "rollout", str(bundle), "--broker", f"127.0.0.1:{fleet['port']}",
           "--topic", fleet["topic"], *args]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err: list[str] = []
    try:
        for line in proc.stderr:
            err.append(line)
            if after in line:
                proc.send_signal(signum)
                break
        out, rest = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, "".join(err) + rest


@pytest.mark.parametrize("signame,after", [("SIGINT", "watching cam1, cam2"),
                                           ("SIGTERM", "cam2: sent (canary)")])
def test_interrupted_rollout_rolls_back_and_says_so(fleet, bundles, signame, after):
    """Ctrl-C while the canaries are watched, or SIGTERM as soon as they were sent the bundle
    (before they report): both go back to the bundle they ran before; the table says what each
    device runs, one error line, exit 128 + the signal."""
    import signal

    devs = fleet["devices"]
    sha_b, sha_d = (signing.bundle_digest(bundles[v]) for v in "bd")
    marks = {n: d.mark() for n, d in devs.items()}
    signum = getattr(signal, signame)
    code, out, err = _interrupt(fleet, bundles["b"], ["--canary", "2", "--wait", "60"],
                                after, signum)  # fmt: skip
    assert code == 128 + signum, err
    assert f"cam1: rolling back to {sha_d[:12]}" in err and "cam2: rolled back" in err, err
    last = err.strip().splitlines()[-1]
    assert last == (f"Error: rollout of {sha_b[:12]} interrupted by {signame}: "
                    "rolled back cam1, cam2"), err  # fmt: skip
    assert "Traceback" not in err
    row = {line.split()[0]: line for line in out.splitlines() if line.startswith("cam")}
    assert "rolled back" in row["cam1"] and "rolled back" in row["cam2"], out
    assert "not sent" in row["cam3"] and "STOPPED" in out
    for name in ("cam1", "cam2"):  # its status came first: its event line may still be on the way
        devs[name].wait(lambda lines, m=marks[name]: len([x for x in lines[m:] if x.get("event")
                        == "model_reloaded"]) >= 2, timeout=30, what="the rollback's reload")
        reloads = [e["sha256"] for e in devs[name].events("model_reloaded", marks[name])]
        assert reloads == [sha_b, sha_d], (name, reloads)
    assert not devs["cam3"].events("model_reloaded", marks["cam3"])
    for dev in devs.values():
        n = dev.mark()
        dev.wait(lambda lines, n=n: sum("frame" in x for x in lines[n:]) >= 3, what="results")
        assert version_of(dev.results(n)[-1]) == "d"
