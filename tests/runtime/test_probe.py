"""The child-process probe of a libedgetpu + interpreter pair (edgekit.backends.probe) and what
classify/bench do with its verdict, against the stand-in libraries of tests/edgetpu_standin."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from edgekit.backends.edgetpu import SystemStack
from edgekit.backends.probe import PROBE_MODEL, probe, resolve_library, verdict
from edgekit.cli import main

from .runtime_fakes import make_sysfs

V1 = "mobilenet_v1_0.25_128_quant"


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Each test gets its own probe cache and no inherited library choice."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("EDGEKIT_LIBEDGETPU", raising=False)
    monkeypatch.delenv("EDGETPU_STANDIN_CRASH_AFTER", raising=False)


@pytest.fixture
def pi_root(tmp_path):
    """A fake sysfs with one Coral on a USB 3 port."""
    return make_sysfs(tmp_path / "root", usb=[("2-1", "18d1", "9302", 5000)])


def test_probe_model_is_a_real_compiled_model():
    assert PROBE_MODEL.is_file() and b"edgetpu-custom-op" in PROBE_MODEL.read_bytes()
    assert (PROBE_MODEL.parent / "LICENSE").is_file()


@pytest.mark.parametrize("mode, status, stage, words", [
    ("works", "ok", "done", "loads, allocates and invokes"),
    ("null", "no-device", "delegate", "could not open the Edge TPU"),
    ("segv", "crash", "interpreter", "SIGSEGV"),
    ("abort", "usb-error", "invoke", "USB transfer error 5"),
])  # fmt: skip
def test_each_failure_gets_its_own_diagnosis(edgetpu_standins, mode, status, stage, words):
    v = probe(edgetpu_standins[mode])
    assert (v.status, v.stage) == (status, stage), v
    assert words in v.detail and bool(v.fix) == (mode != "works")
    assert v.runtime == 14 and v.version.endswith("RuntimeVersion(14)")
    assert v.interpreter.startswith("ai_edge_litert")


def test_abi_crash_names_the_fix(edgetpu_standins):
    v = probe(edgetpu_standins["segv"])
    assert "another TensorFlow version" in v.detail and "edgekit stack" in v.fix


def test_a_hanging_library_times_out(edgetpu_standins):
    v = probe(edgetpu_standins["hang"], timeout=4)
    assert v.status == "timeout" and "within 4 s" in v.detail and "replug" in v.fix


def test_missing_library(tmp_path):
    v = probe(tmp_path / "libedgetpu.so.1")
    assert v.status == "missing" and "not installed" in v.detail and "setup-pi.sh" in v.fix


def test_verdict_caches_pair_facts_only(edgetpu_standins, tmp_path, monkeypatch):
    log = tmp_path / "log"
    monkeypatch.setenv("EDGETPU_STANDIN_LOG", str(log))
    for mode in ("works", "segv"):
        first = verdict(edgetpu_standins[mode])
        again = verdict(edgetpu_standins[mode])
        assert (first.cached, again.cached) == (False, True)
        assert again.status == first.status and again.detail == first.detail
    assert log.read_text().count("create") == 2  # one child per pair
    cache = json.loads((tmp_path / "cache/edgekit/probe.json").read_text())
    assert len(cache) == 2
    # A device state is not a property of the pair: probed every time.
    assert [verdict(edgetpu_standins["null"]).cached for _ in range(2)] == [False, False]


def test_a_replaced_library_is_probed_again(edgetpu_standins, tmp_path):
    lib = tmp_path / "lib" / "libedgetpu.so.1"
    lib.parent.mkdir()
    shutil.copy(edgetpu_standins["segv"], lib)
    assert verdict(lib).status == "crash"
    os.unlink(lib)  # what dpkg does when it installs the fixed package
    shutil.copy(edgetpu_standins["works"], lib)
    v = verdict(lib)
    assert v.status == "ok" and not v.cached


def test_library_choice_env_and_ld_library_path(edgetpu_standins, monkeypatch):
    works = edgetpu_standins["works"]
    monkeypatch.setenv("LD_LIBRARY_PATH", f"/nonexistent:{works.parent}")
    assert resolve_library() == works
    monkeypatch.setenv("EDGEKIT_LIBEDGETPU", str(edgetpu_standins["segv"]))
    assert resolve_library() == edgetpu_standins["segv"]
    assert resolve_library(str(works)) == works


def classify(args, use_stack, root, lib):
    use_stack(SystemStack(root=root, library=lib))
    return CliRunner().invoke(main, ["classify", *map(str, args)])


@pytest.mark.parametrize("mode, words", [
    ("segv", "crashed (SIGSEGV)"),
    ("abort", "USB transfer error 5"),
    ("null", "could not open the Edge TPU"),
])  # fmt: skip
def test_classify_and_bench_survive_a_bad_library(edgetpu_standins, use_stack, pi_root,
                                                  coral_dir, mode, words):  # fmt: skip
    model = coral_dir / f"{V1}_edgetpu.tflite"
    r = classify([model, coral_dir / "cat.bmp", "-d", "usb"], use_stack, pi_root,
                 edgetpu_standins[mode])  # fmt: skip
    assert r.exit_code == 1 and r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: libedgetpu") and words in lines[0]
    for cmd in (["bench", str(model), "-d", "usb", "-n", "2"],
                ["detect", str(model), str(coral_dir / "cat.bmp"), "-d", "usb"]):  # fmt: skip
        use_stack(SystemStack(root=pi_root, library=edgetpu_standins[mode]))
        r = CliRunner().invoke(main, cmd)
        assert r.exit_code == 1 and len(r.stderr.splitlines()) == 1 and words in r.stderr, cmd


def test_classify_survives_a_hanging_library(edgetpu_standins, use_stack, pi_root, coral_dir,
                                             monkeypatch):  # fmt: skip
    monkeypatch.setenv("EDGEKIT_PROBE_TIMEOUT", "3")
    model = coral_dir / f"{V1}_edgetpu.tflite"
    r = classify([model, coral_dir / "cat.bmp", "-d", "usb"], use_stack, pi_root,
                 edgetpu_standins["hang"])  # fmt: skip
    assert r.exit_code == 1 and len(r.stderr.splitlines()) == 1
    assert "did not answer within 3 s" in r.stderr and "replug" in r.stderr
    for bad in ("nan", "0", "inf", "soon"):
        monkeypatch.setenv("EDGEKIT_PROBE_TIMEOUT", bad)
        r = classify([model, coral_dir / "cat.bmp", "-d", "usb"], use_stack, pi_root,
                     edgetpu_standins["works"])  # fmt: skip
        assert r.exit_code == 2 and "EDGEKIT_PROBE_TIMEOUT" in r.stderr, bad


def test_classify_runs_on_a_working_library(edgetpu_standins, use_stack, pi_root, coral_dir):
    model = coral_dir / f"{V1}_edgetpu.tflite"
    r = classify([model, coral_dir / "cat.bmp", "-d", "usb", "--json"], use_stack, pi_root,
                 edgetpu_standins["works"])  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)[0]["image"].endswith("cat.bmp")


SCRIPT = textwrap.dedent(
    """
    import sys
    from edgekit import backends
    from edgekit.backends.edgetpu import SystemStack
    backends.register_backend("edgetpu", backends.EdgeTpuBackend(SystemStack(root=sys.argv[1])))
    from edgekit.cli import run
    sys.argv = ["edgekit", *sys.argv[2:]]
    run()
    """
)


def test_a_segfaulting_library_costs_one_line_not_a_signal(edgetpu_standins, pi_root, coral_dir):
    """A real process, the library chosen with --libedgetpu: exit 1, one line, no core."""
    model = coral_dir / f"{V1}_edgetpu.tflite"
    for how in (["--libedgetpu", str(edgetpu_standins["segv"])], []):
        env = {**os.environ}
        if not how:
            env["LD_LIBRARY_PATH"] = str(edgetpu_standins["segv"].parent)
        p = subprocess.run([sys.executable, "-c", SCRIPT, str(pi_root), "classify", str(model),
                            str(coral_dir / "cat.bmp"), "-d", "usb", *how],
                           capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
        assert p.returncode == 1 and p.stdout == "", (p.returncode, p.stderr)
        assert len(p.stderr.splitlines()) == 1 and "SIGSEGV" in p.stderr, p.stderr


def test_libedgetpu_option_rejects_what_is_not_a_library(tmp_path, coral_dir):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for bad, words in ((tmp_path / "nope.so", "no such file"), (fifo, "not a regular file")):
        args = [
            str(coral_dir / f"{V1}.tflite"),
            str(coral_dir / "cat.bmp"),
            "--libedgetpu",
            str(bad),
        ]
        r = CliRunner().invoke(main, ["classify", *args])
        assert r.exit_code == 2 and len(r.stderr.splitlines()) == 1 and words in r.stderr


def test_bundle_runtime_is_checked_before_the_library_loads(edgetpu_standins, pi_root,
                                                            coral_dir, tmp_path):  # fmt: skip
    from edgekit import backends
    from edgekit.backends import EdgeTpuError

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    model = bundle / "m_edgetpu.tflite"
    shutil.copy(coral_dir / f"{V1}_edgetpu.tflite", model)
    (bundle / "edgekit.json").write_text(json.dumps({
        "models": {"cpu": "m.tflite", "edgetpu": model.name},
        "compile": {"status": "compiled", "required_runtime": 14},
    }))  # fmt: skip
    old = backends.EdgeTpuBackend(SystemStack(root=pi_root, library=edgetpu_standins["runtime13"]))
    with pytest.raises(EdgeTpuError, match="needs Edge TPU runtime 14.*libedgetpu is runtime 13"):
        old(str(model), "usb")
    new = backends.EdgeTpuBackend(SystemStack(root=pi_root, library=edgetpu_standins["works"]))
    new(str(model), "usb").close()


def test_a_hostile_cache_is_ignored_not_trusted(edgetpu_standins, tmp_path):
    from edgekit.backends.probe import cache_key, cache_path

    lib = edgetpu_standins["segv"]
    cache = cache_path()
    cache.parent.mkdir(parents=True, exist_ok=True)
    key = cache_key(lib)
    entries = [
        {"status": "ok"},
        {"status": "no-device", "library": None, "detail": "x", "fix": ""},  # not a pair fact
        {"status": "ok", "library": None, "detail": 3, "fix": ""},
    ]
    for bad in ["not json", "[1, 2]", *(json.dumps({key: e}) for e in entries)]:
        cache.write_text(bad)
        v = verdict(lib)
        assert v.status == "crash" and not v.cached, bad
    cache.unlink()
    os.mkfifo(cache)  # would block a reader forever
    v = verdict(lib)
    assert v.status == "crash" and not v.cached
