"""Compiled segments pipelined over two Edge TPUs (edgekit.backends.segment_pipeline): segment
K on stand-in Coral K (tests/edgetpu_standin, two attached, fake sysfs), several frames in
flight from several threads, every frame's outputs bit-identical to the one-frame-at-a-time
chain, both devices inside invoke at the same time, ``bench`` and ``classify``/``detect`` on a
set. The small model's segments are uncompiled (the stand-in claims no node: the CPU computes
every op, real numbers through the real Edge TPU path) or passed through the stand-in compiler
(one edgetpu-custom-op per segment: the stand-in's invoke sleeps a fixed time, computes
nothing)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgekit import backends
from edgekit.backends.edgetpu import SystemStack
from edgekit.backends.segment_pipeline import (
    PipelineInterpreter,
    frames_in_flight,
    map_ordered,
)
from edgekit.backends.segments import ChainInterpreter
from tests.edgetpu_standin import edgetpu_standins  # noqa: F401 - the fixture
from tests.runtime.runtime_fakes import make_sysfs
from tests.runtime.segment_models import make_segments

CORAL = Path(__file__).resolve().parents[1] / "data" / "coral"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, list[Path]]:
    """{"cpu": uncompiled segments (+ the whole model beside them), "compiled": compiled}."""
    root = tmp_path_factory.mktemp("tiny_segments")
    return {"cpu": make_segments(root / "cpu"),
            "compiled": make_segments(root / "compiled", compiled=True, twin=False)}  # fmt: skip


@pytest.fixture
def two_corals(tmp_path, monkeypatch, edgetpu_standins):  # noqa: F811
    """Two stand-in USB Accelerators; returns use(**env) -> the trace file."""
    root = make_sysfs(tmp_path / "root", usb=[("2-1", "18d1", "9302", 5000),
                                              ("2-2", "18d1", "9302", 5000)])  # fmt: skip
    monkeypatch.setenv("EDGEKIT_LIBEDGETPU", str(edgetpu_standins["works"]))
    monkeypatch.setenv("EDGETPU_STANDIN_DEVICES", "2")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    trace = tmp_path / "trace"
    monkeypatch.setenv("EDGETPU_STANDIN_TRACE", str(trace))
    old = backends.register_backend("edgetpu", backends.EdgeTpuBackend(SystemStack(root=root)))

    def use(**env) -> Path:
        for key, value in env.items():
            monkeypatch.setenv(f"EDGETPU_STANDIN_{key}", str(value))
        return trace

    yield use
    backends.register_backend("edgetpu", old)


def traced(trace: Path) -> list[str]:
    """The stand-in's trace lines of this process (the Edge TPU probe's child has its own)."""
    return [s for s in trace.read_text().splitlines() if s.split()[0] == str(os.getpid())]


def busy_at_once(trace: Path) -> int:
    """The most devices inside invoke at the same moment, from the stand-in's trace."""
    events = []
    for line in traced(trace):
        _pid, device, what, ns = line.split()
        events.append((int(ns), 0 if what == "end" else 1, device))
    busy, most = set(), 0
    for _, begin, device in sorted(events):
        (busy.add if begin else busy.discard)(device)
        most = max(most, len(busy))
    return most


def _run_raw(pipe, x: np.ndarray) -> np.ndarray:
    pipe.set_tensor(pipe.get_input_details()[0]["index"], x)
    pipe.invoke()
    return pipe.get_tensor(pipe.get_output_details()[0]["index"])


def test_pipelined_frames_are_bit_identical_to_the_chain_and_in_order(tiny, two_corals):
    two_corals()
    r = backends.open_model(tiny["cpu"][1], device="usb:*")
    try:
        pipe = r.interpreter
        assert isinstance(pipe, PipelineInterpreter) and pipe.devices == ["usb:0", "usb:1"]
        assert r.backend == "edgetpu" and r.device == "usb:0+usb:1"
        rng = np.random.default_rng(1)
        xs = [rng.random(r.input_shape, dtype=np.float32) for _ in range(24)]
        # the chain over the very same interpreters, one frame at a time
        chain = ChainInterpreter(pipe.parts, [f.name for f in tiny["cpu"]])
        want = [_run_raw(chain, x) for x in xs]
        assert len({w.tobytes() for w in want}) == len(xs)  # every frame its own answer
        for _ in range(2):  # three threads, frames overtaking each other between segments
            got = list(map_ordered(lambda x: _run_raw(pipe, x), xs, 3))
            for g, w in zip(got, want):
                assert not isinstance(g, BaseException), g
                assert g.dtype == w.dtype and np.array_equal(g, w)
        # and what the whole model gives on the CPU (the segments are one model)
        whole = backends.open_model(tiny["cpu"][0].parent / "tiny.tflite", device="cpu")
        np.testing.assert_allclose(whole.run(xs[0]), want[0], rtol=1e-5, atol=1e-6)
        whole.close()
    finally:
        r.close()
    # the devices were released: opened again at once
    backends.open_model(tiny["cpu"][0], device="usb:0,usb:1").close()


def test_a_classifier_runs_frames_in_flight_with_the_sequential_results(tiny, two_corals):
    two_corals()
    from edgekit.classify import Classifier

    clf = Classifier(tiny["cpu"][0], device="auto", top_k=5)
    try:
        assert frames_in_flight(clf) == 3  # one per device and one being prepared
        rng = np.random.default_rng(2)
        images = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(12)]
        want = [clf.run(im).to_dict()["classes"] for im in images]
        got = [g.to_dict()["classes"] for g in map_ordered(clf.run, images, 3)]
        assert got == want
    finally:
        clf.close()


def test_both_devices_are_inside_invoke_at_once_only_when_pipelined(tiny, two_corals):
    trace = two_corals(INVOKE_MS=20)
    r = backends.open_model(tiny["compiled"][0], device="usb:*")
    try:
        x = np.zeros(r.input_shape, r.input_dtype)
        for _ in range(6):  # one frame at a time: never two devices busy
            r.run(x)
        assert sum(" begin " in s for s in traced(trace)) == 12
        assert busy_at_once(trace) == 1
        trace.unlink()
        outs = list(map_ordered(lambda _: _run_raw(r.interpreter, x), range(12), 3))
        assert not any(isinstance(o, BaseException) for o in outs)
        lines = traced(trace)
        assert sum(" usb:0 begin " in s for s in lines) == sum(" usb:1 begin " in s
                                                               for s in lines) == 12  # fmt: skip
        assert busy_at_once(trace) == 2  # segment 0 on frame n+1 while segment 1 runs frame n
    finally:
        r.close()


def test_bench_and_classify_say_pipelined_over_both_devices(tiny, two_corals, tmp_path):
    from edgekit.cli import main

    two_corals(INVOKE_MS=2)
    seg = str(tiny["compiled"][0])
    res = CliRunner().invoke(main, ["bench", seg, "--device", "usb:*", "--runs", "30",
                                    "--warmup", "2", "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    js = json.loads(res.output)
    assert js["device"] == "usb:0+usb:1" and js["backend"] == "edgetpu"
    p = js["pipeline"]
    assert p["over"] == "usb:0,usb:1" and p["segments"] == 2 and p["frames_in_flight"] == 3
    assert p["runs"] >= 30 and p["fps"] > 0 and p["vs_one_at_a_time"] > 0
    text = CliRunner().invoke(main, ["bench", seg, "--device", "usb:0,usb:1", "--runs", "10"])
    assert text.exit_code == 0, text.output
    assert "pipelined over usb:0,usb:1: 3 frames in flight" in text.output
    # classify over several images: one line each, in the order given (an unreadable one too)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    images = [str(CORAL / n) for n in ("cat.bmp", "parrot.jpg")]
    args = ["classify", str(tiny["cpu"][0]), images[0], str(bad), images[1], "--json"]
    out = CliRunner().invoke(main, [*args, "--device", "usb:*"])
    one = CliRunner().invoke(main, [*args, "--device", "cpu"])  # the CPU twin, one by one
    assert out.exit_code == one.exit_code == 1
    got, want = json.loads(out.stdout), json.loads(one.stdout)
    assert [g["image"] for g in got] == [images[0], str(bad), images[1]]
    assert "error" in got[1] and "error" not in got[0] and "error" not in got[2]
    for g, w in zip(got[::2], want[::2]):  # the twin computes the same model
        assert [c["id"] for c in g["classes"]] == [c["id"] for c in w["classes"]]



def test_real_ssd_segments_pipelined_give_the_chains_detections(ssd_segments, two_corals,
                                                                 tmp_path):  # fmt: skip
    from edgekit.cli import main
    from edgekit.detect.detector import Detector
    from edgekit.images import load_rgb

    trace = two_corals(INVOKE_MS=5)
    det = Detector(ssd_segments[0], device="usb:0,usb:1", threshold=0.0)
    try:
        assert frames_in_flight(det) == 3
        pipe = det.runner.interpreter
        assert [len(links) for links in pipe._links] == [0, 3]  # three feature maps, by name
        images = [load_rgb(CORAL / n) for n in ("cat.bmp", "parrot.jpg", "bird.bmp",
                                                 "grace_hopper.bmp")] * 3  # fmt: skip
        want = [det.run(im) for im in images]
        got = list(map_ordered(det.run, images, 3))
        for g, w in zip(got, want):
            assert g.detections == w.detections and g.image_size == w.image_size
        assert busy_at_once(trace) == 2
    finally:
        det.close()
    res = CliRunner().invoke(main, ["detect", str(ssd_segments[1]), str(CORAL / "cat.bmp"),
                                    str(CORAL / "bird.bmp"), "--device", "usb:*", "--json"])
    assert res.exit_code == 0, res.output
    assert [r["image"] for r in json.loads(res.stdout)] == [str(CORAL / "cat.bmp"),
                                                              str(CORAL / "bird.bmp")]  # fmt: skip


def test_fewer_corals_than_segments_chain_them_and_say_so_once(tiny, two_corals, tmp_path):
    trace = two_corals(DEVICES=1)  # one Coral attached
    one = make_sysfs(tmp_path / "one", usb=[("2-1", "18d1", "9302", 5000)])
    backends.register_backend("edgetpu", backends.EdgeTpuBackend(SystemStack(root=one)))
    notes: list[str] = []
    r = backends.open_model(tiny["compiled"][0], device="auto", on_warning=notes.append)
    try:
        assert isinstance(r.interpreter, ChainInterpreter) and r.device == "usb:0"
        assert notes == ["2 segments on 1 Edge TPU: chained on usb:0, one frame at a time "
                         "(the pipeline needs 2)"]  # fmt: skip
        r.run(np.zeros(r.input_shape, r.input_dtype))
        assert [s.split()[1:3] for s in traced(trace)] == [["usb:0", "begin"], ["usb:0", "end"],
                                                           ["usb:0", "begin"], ["usb:0", "end"]]
    finally:
        r.close()
    from edgekit.classify import Classifier

    clf = Classifier(tiny["compiled"][0], device="usb:*", on_warning=notes.append)
    assert frames_in_flight(clf) == 1 and len(notes) == 2  # one frame at a time, said once
    clf.close()
