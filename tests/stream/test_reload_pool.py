"""Hot reload on several Edge TPUs (a device list runs a pool: edgekit.stream.pool): SIGHUP
switches every device's worker to the new bundle (each Coral is owned by one process, so the
old pool stops first), and a bundle that fails brings the previous one back on every device.
Real serve.run, real worker processes, two stand-in Corals (fake sysfs, stand-in libedgetpu)."""

from __future__ import annotations

import functools

from edgekit.stream import serve
from tests.edgetpu_standin import edgetpu_standins  # noqa: F401 - the fixture
from tests.runtime.runtime_fakes import make_sysfs

from .bundles import make_bundle
from .test_pool import TWO
from .test_reload import Served, swap_symlink, versions
from .test_worker import standin  # noqa: F401 - the fixture
from .worker_models import standin_classifier


def test_sighup_reloads_every_device_of_the_pool(standin, tmp_path, video_avi,  # noqa: F811
                                                 monkeypatch):  # fmt: skip
    standin("works", DEVICES=2, INVOKE_MS=60)  # 30 fps needs both Corals
    root = make_sysfs(tmp_path / "root", usb=TWO)
    # the hardware boundary: the model opens its Coral through the fake sysfs under root
    monkeypatch.setattr(serve, "model_factory", lambda cfg: functools.partial(
        standin_classifier, cfg.model.path, str(root), top_k=1))  # fmt: skip
    a, b = (make_bundle(tmp_path / v, v, edgetpu=True) for v in "ab")
    broken = make_bundle(tmp_path / "broken", "x", edgetpu=True)
    (broken / "model_int8_edgetpu.tflite").write_bytes(b"TFL3 not a model")
    live = tmp_path / "live"
    live.symlink_to(a)
    s = Served({"model": {"path": str(live), "device": "usb:0,usb:1", "watch_s": 0}},
               video_avi)  # fmt: skip
    try:
        s.wait(lambda: len(s.results) >= 10, what="first results")
        pool = s.started["reload"].resilient.classifier
        old_pids = {w.pid for w in pool.workers}
        assert len(old_pids) == 2 and pool.runner.backend == "edgetpu"
        swap_symlink(live, b)
        s.trigger.set()  # SIGHUP
        s.wait(lambda: s.event("model_reloaded") or s.event("reload_failed"), what="reload")
        ok = s.event("model_reloaded")
        assert ok is not None, [e.to_dict() for e in s.events]
        n = len(s.results)
        s.wait(lambda: len(s.results) >= n + 10, what="results after the reload")
        new = s.started["reload"].resilient.classifier
        status = new.pool_status()
        assert new is not pool and {w.pid for w in pool.workers} == {None}
        assert [d["device"] for d in status["devices"]] == ["usb:0", "usb:1"]
        assert {d["backend"] for d in status["devices"]} == {"edgetpu"}
        assert all(d["frames"] > 0 for d in status["devices"]), status  # both serve b
        before = len(s.events)
        swap_symlink(live, broken)
        s.trigger.set()
        s.wait(lambda: s.event("reload_failed", before), what="refusal")
        bad = s.event("reload_failed", before)
        n = len(s.results)
        s.wait(lambda: len(s.results) >= n + 10, what="results after the refusal")
        back = s.started["reload"].resilient.classifier.pool_status()
    finally:
        s.close()
    assert "Edge TPU: results paused" in ok.message and ok.details["bundle"] == str(b)
    assert "the previous model was loaded again" in bad.message, bad.message
    assert [d["device"] for d in back["devices"]] == ["usb:0", "usb:1"]
    assert {d["backend"] for d in back["devices"]} == {"edgetpu"}
    v = versions(s.results)
    k = v.index("b")
    assert set(v[:k]) == {"a"} and set(v[k:]) == {"b"}  # one switch; b kept after the refusal
    assert not [e for e in s.events if e.kind in ("inference_error", "cpu_fallback")]
