"""Hot reload (edgekit.stream.reload): serve takes a new bundle without a restart, inline and
with the worker process, through a symlink swap, a bundle renamed into place and SIGHUP; a bad
bundle keeps the old model running. Real models, a real video, real worker processes."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from edgekit.errors import EdgekitError
from edgekit.stream import serve
from edgekit.stream.config import from_dict
from edgekit.stream.sinks import CallbackSink
from tests.edgetpu_standin import edgetpu_standins  # noqa: F401 - the fixture

from .bundles import make_bundle, version_of
from .conftest import edgekit_cmd, free_port


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bundles")
    return {v: make_bundle(d / v, v) for v in ("a", "b", "c")}


def swap_symlink(link: Path, target: Path) -> None:
    """What a user does: ``ln -sfn target tmp && mv -T tmp link`` (one atomic rename)."""
    tmp = link.with_name(link.name + ".new")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, link)


class Served:
    """serve.run in a thread on a looping video, collecting results and events."""

    def __init__(self, config: dict, video):
        self.results, self.events = [], []
        self.cond = threading.Condition()
        self.stop, self.trigger = threading.Event(), threading.Event()
        cfg = from_dict({"output": {"json_lines": False},
                         "source": {"uri": str(video), "loop": True, "realtime": True},
                         **config})  # fmt: skip
        sink = CallbackSink(self._add(self.results), self._add(self.events))
        self.error: BaseException | None = None
        self.stats: dict = {}
        self.started: dict = {}
        self.thread = threading.Thread(target=self._run, args=(cfg, sink), daemon=True)
        self.thread.start()

    def _add(self, into):
        def add(x):
            with self.cond:
                into.append(x)
                self.cond.notify_all()

        return add

    def _run(self, cfg, sink):
        try:
            self.stats = serve.run(cfg, stop=self.stop, extra_sinks=[sink], reload=self.trigger,
                                   on_start=self.started.update)  # fmt: skip
        except BaseException as e:
            self.error = e

    def wait(self, pred, timeout=60.0, what="condition"):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred():
                left = deadline - time.monotonic()
                assert left > 0 and self.error is None, f"{what}: {self.error}"
                self.cond.wait(min(left, 0.5))

    def event(self, kind, after=0):
        return next((e for e in self.events[after:] if e.kind == kind), None)

    def close(self):
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error


def versions(results) -> list[str]:
    return [version_of({"classes": list(r.classes)}) for r in results]


def largest_gap(results) -> float:
    ts = [r.timestamp for r in results]
    return max(b - a for a, b in zip(ts, ts[1:]))


@pytest.mark.parametrize("mode", ["inline", "process"])
def test_symlink_swap_switches_model_between_two_frames(bundles, video_avi, tmp_path, mode):
    link = tmp_path / "model"
    link.symlink_to(bundles["a"])
    http = {"enabled": mode == "inline", "listen": f"127.0.0.1:{free_port()}"}
    s = Served({"model": {"path": str(link), "device": "cpu", "top_k": 1, "watch_s": 0.2},
                "worker": {"mode": mode}, "http": http}, video_avi)  # fmt: skip
    try:
        s.wait(lambda: len(s.results) >= 5, what="first results")
        first_pids = _worker_pids()
        assert len(first_pids) == (mode == "process")
        swap_symlink(link, bundles["b"])
        s.wait(lambda: s.event("model_reloaded") or s.event("reload_failed"), what="reload")
        ev = s.event("model_reloaded")
        assert ev is not None, [e.to_dict() for e in s.events]
        n = len(s.results)
        s.wait(lambda: len(s.results) >= n + 5, what="results after the reload")
        time.sleep(2.5)  # the old worker is closed in the background (up to 2 s)
        seen_after = _worker_pids()
        if http["enabled"]:  # the status page and /latest say which bundle serves
            page = _page_and_latest(s.started["http"], tmp_path)
    finally:
        s.close()
    assert ev.details["bundle"] == str(bundles["b"]) and len(ev.details["sha256"]) == 64
    from edgekit.signing import bundle_digest

    assert ev.details["sha256"] == bundle_digest(bundles["b"])
    v = versions(s.results)
    k = v.index("b")
    assert set(v[:k]) == {"a"} and set(v[k:]) == {"b"}  # one switch, between two frames
    gap = largest_gap(s.results)
    print(f"{mode}: largest gap between results {gap * 1000:.0f} ms")
    assert gap < 2.0
    assert s.stats["frames"] == len(s.results)
    if http["enabled"]:
        dom, latest = page
        metrics = latest.pop("metrics")
        assert 'edgekit_model_reloads_total{result="ok"} 1' in metrics
        assert f'edgekit_model_info{{sha256="{ev.details["sha256"]}"}} 1' in metrics
        assert latest["model"] == {"bundle": str(bundles["b"]), "sha256": ev.details["sha256"],
                                   "reloads": 1}  # fmt: skip
        want = f'<span class="sub" id="model">b · {ev.details["sha256"][:12]} · reloaded 1x</span>'
        assert want in dom, dom[:3000]
        assert '<span class="k recover">model reloaded</span>' in dom
    if mode == "process":
        assert len(_worker_pids()) == 0  # serve stopped the new one too
        assert not (first_pids & seen_after)  # the old worker stopped after the switch
    assert not [e for e in s.events if e.kind in ("reload_failed", "inference_error")]


def _page_and_latest(base: str, tmp_path) -> tuple[str, dict]:
    import urllib.request

    from .test_http import render_page

    with urllib.request.urlopen(base + "/latest", timeout=10) as r:
        latest = json.loads(r.read())
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        latest["metrics"] = r.read().decode()
    out = render_page(base + "/", tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout, latest


def _worker_pids() -> set[int]:
    """PIDs of this process's live inference workers."""
    import multiprocessing as mp

    return {p.pid for p in mp.active_children() if p.name == "edgekit-inference"}


def test_bad_bundles_keep_the_old_model(bundles, video_avi, tmp_path, tiny_detector_or_skip):
    live = tmp_path / "live"
    live.symlink_to(bundles["a"])
    broken = tmp_path / "broken"
    make_bundle(broken, "x")
    (broken / "model_int8.tflite").write_bytes(b"TFL3 not a model")
    s = Served({"model": {"path": str(live), "device": "cpu", "top_k": 1, "watch_s": 0}},
               video_avi)  # fmt: skip
    try:
        s.wait(lambda: len(s.results) >= 3, what="first results")
        failures = []
        for bad in (broken, tmp_path / "missing", tiny_detector_or_skip):
            swap_symlink(live, bad)
            before = len(s.events)
            s.trigger.set()  # SIGHUP
            s.wait(lambda b=before: s.event("reload_failed", b), what=f"refusal of {bad}")
            failures.append(s.event("reload_failed", before))
            n = len(s.results)
            s.wait(lambda n=n: len(s.results) >= n + 3, what="results after the refusal")
    finally:
        s.close()
    assert set(versions(s.results)) == {"a"}
    msgs = [e.message for e in failures]
    assert all("the running model is kept" in m for m in msgs), msgs
    assert "broken" in msgs[0] and "no such bundle" in msgs[1]
    assert "detect model but serve runs a classify model" in msgs[2]
    assert not s.event("model_reloaded")


@pytest.fixture(scope="module")
def tiny_detector_or_skip(tmp_path_factory):
    """A detector bundle (a different task), made by tests/detect's script."""
    import subprocess
    import sys

    here = Path(__file__).resolve().parents[1] / "detect"
    out = tmp_path_factory.mktemp("det")
    proc = subprocess.run([sys.executable, str(here / "make_tiny_detectors.py"), str(out)],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    if proc.returncode != 0:
        pytest.skip(f"tiny detector not built: {proc.stderr[-300:]}")
    sys.path.insert(0, str(here.parent.parent))
    from tests.detect.conftest import write_detect_bundle

    return write_detect_bundle(out / "bundle", out / "anchor_free.tflite")


def test_signed_only(bundles, video_avi, tmp_path):
    from edgekit import signing

    key, pub, _ = signing.keygen(tmp_path / "k")
    other, _, _ = signing.keygen(tmp_path / "other")
    import shutil

    signed = {v: Path(shutil.copytree(bundles[v], tmp_path / f"s{v}")) for v in "abc"}
    signing.sign(signed["a"], key)
    signing.sign(signed["b"], key)
    signing.sign(signed["c"], other)  # a foreign key
    tampered = Path(shutil.copytree(signed["b"], tmp_path / "tampered"))
    data = json.loads((tampered / "edgekit.json").read_text())
    data["labels"][88] = "b:eagle"  # macaw -> eagle: a small, plausible edit
    (tampered / "edgekit.json").write_text(json.dumps(data))
    cfg = {"model": {"path": str(signed["a"]), "device": "cpu", "top_k": 1, "watch_s": 0},
           "fleet": {"public_key": pub.read_text()}}  # fmt: skip
    # at startup: an unsigned bundle is refused with one line
    with pytest.raises(EdgekitError, match="not signed"):
        serve.run(from_dict({**cfg, "model": {**cfg["model"], "path": str(bundles["a"])}}))
    s = Served(cfg, video_avi)
    outcomes = []
    try:
        s.wait(lambda: len(s.results) >= 3, what="first results")
        for target in (bundles["b"], tampered, signed["c"], signed["b"]):
            before = len(s.events)
            # the fleet agent's entry point: a blocking reload of a given path
            reloader = s.started["reload"]
            outcomes.append(reloader.reload(str(target), "test"))
            assert len([e for e in s.events[before:] if e.kind in ("reload_failed",
                        "model_reloaded")]) == 1  # fmt: skip
        n = len(s.results)
        s.wait(lambda: len(s.results) >= n + 3, what="results after the reload")
    finally:
        s.close()
    assert [o.ok for o in outcomes] == [False, False, False, True]
    assert "not signed" in outcomes[0].message
    assert "edgekit.json changed since it was signed" in outcomes[1].message
    assert "bad signature (signed by SHA256:" in outcomes[2].message
    assert outcomes[3].sha256 == signing.bundle_digest(signed["b"])
    assert versions(s.results)[-1] == "b"


def test_cli_sighup_reloads_and_unit_has_execreload(bundles, video_avi, tmp_path):
    live = tmp_path / "live"
    live.symlink_to(bundles["a"])
    proc = subprocess.Popen(
        [*edgekit_cmd(), "serve", "--model", str(live), "--device", "cpu", "--top-k", "1",
         "--source", str(video_avi), "--loop", "--realtime"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines = []
    try:
        lines.append(json.loads(proc.stdout.readline()))
        swap_symlink(live, bundles["c"])
        proc.send_signal(signal.SIGHUP)
        for raw in proc.stdout:
            lines.append(json.loads(raw))
            if len([x for x in lines if version_of(x) == "c"]) >= 3:
                break
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    events = [x for x in lines if "event" in x and not x["event"].startswith("label_")]
    assert [e["event"] for e in events] == ["model_reloaded"], events
    assert events[0]["bundle"] == str(bundles["c"]) and "SIGHUP" in events[0]["message"]
    assert "Traceback" not in err
    unit = (Path(__file__).resolve().parents[2] / "systemd" / "edgekit.service").read_text()
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit


@pytest.fixture
def standin(edgetpu_standins, monkeypatch, tmp_path):  # noqa: F811 - the fixture
    monkeypatch.setenv("LD_LIBRARY_PATH", str(edgetpu_standins["works"].parent))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the probe's verdicts


def test_edgetpu_reload_stops_the_old_worker_first(standin, tmp_path, coral_dir):
    """One process per Edge TPU: the old worker is stopped before the new one opens the
    device; a bundle that fails brings the previous one back on the Edge TPU."""
    from edgekit.images import load_rgb
    from edgekit.stream.reload import HotReload
    from edgekit.stream.resilient import ResilientClassifier
    from edgekit.stream.worker import ModelProcess
    from tests.runtime.runtime_fakes import make_sysfs

    from .worker_models import standin_classifier

    root = make_sysfs(tmp_path / "root", usb=[("2-1", "18d1", "9302", 5000)])
    a, b = (make_bundle(tmp_path / v, v, edgetpu=True) for v in "ab")
    broken = make_bundle(tmp_path / "broken", "x", edgetpu=True)
    (broken / "model_int8_edgetpu.tflite").write_bytes(b"TFL3 not a model")

    def load(cfg):
        factory = functools.partial(standin_classifier, cfg.model.path, str(root), top_k=1)
        return ModelProcess(factory, backoff_s=0.05)

    events = []
    cfg = from_dict({"model": {"path": str(a), "device": "usb"}})
    first = load(cfg)
    resilient = ResilientClassifier(first, lambda *e: events.append(e))
    hr = HotReload(cfg, resilient, lambda *e: events.append(e), load)
    rgb = load_rgb(coral_dir / "parrot.jpg")
    try:
        assert hr(rgb).classes[0].label.startswith("a:") and resilient.backend == "edgetpu"
        ok = hr.reload(str(b), "test")
        assert ok.ok and "Edge TPU: results paused" in ok.message, ok
        assert first.pid is None  # stopped before the new worker opened the device
        assert hr(rgb).classes[0].label.startswith("b:") and resilient.backend == "edgetpu"
        second = resilient.classifier
        bad = hr.reload(str(broken), "test")
        assert not bad.ok and "the previous model was loaded again" in bad.message, bad
        assert second.pid is None and resilient.classifier is not second
        assert hr(rgb).classes[0].label.startswith("b:") and resilient.backend == "edgetpu"
    finally:
        resilient.classifier.close()
    assert [e[0] for e in events] == ["model_reloaded", "reload_failed"]


def test_serve_check_knows_fleet_rules(bundles, video_avi, tmp_path):
    from edgekit import signing
    from edgekit.stream.check import check

    key, pub, _ = signing.keygen(tmp_path / "k")
    base = {"model": {"path": str(bundles["a"]), "device": "cpu"},
            "source": {"uri": str(video_avi)}}  # fmt: skip
    with pytest.raises(EdgekitError, match=r"\[fleet\] topic is set but \[fleet\] public_key"):
        check(from_dict({**base, "fleet": {"topic": "t", "state_dir": str(tmp_path / "s")}}))
    with pytest.raises(EdgekitError, match="not signed"):
        check(from_dict({**base, "fleet": {"public_key": str(pub)}}))
    with pytest.raises(EdgekitError, match="not a plain MQTT topic"):
        check(from_dict({**base, "fleet": {"topic": "a/#", "public_key": str(pub)}}))
    signed = make_bundle(tmp_path / "signed", "a")
    signing.sign(signed, key)
    ok = check(from_dict({**base, "model": {"path": str(signed), "device": "cpu"},
                          "fleet": {"public_key": str(pub)}}))  # fmt: skip
    assert ok.startswith(f"model {signed} (classify, cpu)")


def test_bundle_renamed_into_place_is_reloaded(bundles, video_avi, tmp_path):
    """No symlink: the bundle folder itself is replaced by two renames (old away, new in)."""
    import shutil

    live = Path(shutil.copytree(bundles["a"], tmp_path / "model"))
    s = Served({"model": {"path": str(live), "device": "cpu", "top_k": 1, "watch_s": 0.2}},
               video_avi)  # fmt: skip
    try:
        s.wait(lambda: len(s.results) >= 3, what="first results")
        staged = Path(shutil.copytree(bundles["b"], tmp_path / ".model.new"))
        os.rename(live, tmp_path / "model.old")
        os.rename(staged, live)
        s.wait(lambda: s.event("model_reloaded") or s.event("reload_failed"), what="reload")
        n = len(s.results)
        s.wait(lambda: len(s.results) >= n + 3, what="results after the reload")
    finally:
        s.close()
    ev = s.event("model_reloaded")
    assert ev is not None and "was replaced" in ev.message and ev.details["bundle"] == str(live)
    assert not s.event("reload_failed") and versions(s.results)[-1] == "b"
