"""`edgekit doctor` proving the Edge TPU stack: the pair against the stack table, the device node
(permission, who holds it) and the child-process probe, with the stand-in libedgetpu libraries
installed into a fake Pi root where the real one would be."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from edgekit.cli import main
from edgekit.doctor import report

from .test_doctor import LITERT, checks, healthy_pi

LIB = "usr/lib/aarch64-linux-gnu/libedgetpu.so.1"


@pytest.fixture(autouse=True)
def no_inherited_library(monkeypatch):
    monkeypatch.delenv("EDGEKIT_LIBEDGETPU", raising=False)


def pi_with(root, standin=None, **kw):
    root = healthy_pi(root, **kw)
    if standin is not None:
        shutil.copy(standin, root / LIB)  # where the .deb puts it
    return root


def test_googles_library_with_a_current_interpreter_fails_naming_the_fix(tmp_path):
    got = checks(healthy_pi(tmp_path, version="16.0"), providers=LITERT)
    c = got["stack"]
    assert c.status == "fail" and "libedgetpu1-std 16.0 (TF 2.5.0)" in c.detail
    assert "ai_edge_litert 2.3.0" in c.detail and "segfaults" in c.detail
    assert "setup-pi.sh" in c.fix


def test_an_unknown_pair_warns(tmp_path):
    c = checks(healthy_pi(tmp_path, version="16.0tf2.19.1-1"), providers=LITERT)["stack"]
    assert c.status == "warn" and "probe" in c.detail


def test_device_node_permission(tmp_path):
    root = healthy_pi(tmp_path)
    (root / "dev/bus/usb/002/003").chmod(0o600)
    c = checks(root)["access usb:0"]
    assert c.status == "fail" and "crw" not in c.detail and "-rw-------" in c.detail
    assert "udev rule" in c.fix and "plugdev" in c.fix
    assert checks(root, user="root", uid=0, gids=[0])["access usb:0"].status == "ok"


def test_who_holds_the_device_and_the_probe_waits(tmp_path, edgetpu_standins):
    root = pi_with(tmp_path, edgetpu_standins["works"])
    proc = root / "proc/4242"
    (proc / "fd").mkdir(parents=True)
    os.symlink("/dev/bus/usb/002/003", proc / "fd/7")
    os.symlink("/dev/null", proc / "fd/0")
    (proc / "cmdline").write_bytes(b"/opt/edgekit/venv/bin/python3\0-m\0edgekit\0serve\0")
    (root / "proc/self").mkdir()
    got = checks(root, probe=True)
    c = got["users usb:0"]
    assert c.status == "warn" and "in use by PID 4242" in c.detail and "edgekit serve" in c.detail
    assert got["probe"].status == "warn" and "in use" in got["probe"].detail


@pytest.mark.parametrize("mode, status, words, fix", [
    ("works", "ok", "loads, allocates and invokes", ""),
    ("segv", "fail", "crashed (SIGSEGV)", "edgekit stack"),
    ("abort", "fail", "USB transfer error 5", "edgekit doctor"),
    ("null", "fail", "could not open the Edge TPU", "plugdev"),
])  # fmt: skip
def test_probe_diagnoses_each_library(tmp_path, edgetpu_standins, mode, status, words, fix):
    got = checks(pi_with(tmp_path, edgetpu_standins[mode]), probe=True)
    c = got["probe"]
    assert c.status == status and words in c.detail and fix in c.fix, c
    assert str(tmp_path / LIB) in c.detail or mode == "null"
    assert got["libedgetpu runtime"].detail.endswith("RuntimeVersion(14) (runtime 14)")
    assert report(list(got.values()))["ok"] is (mode == "works")


def test_probe_timeout(tmp_path, edgetpu_standins):
    c = checks(pi_with(tmp_path, edgetpu_standins["hang"]), probe=True, timeout=3)["probe"]
    assert c.status == "fail" and "did not answer within 3 s" in c.detail and "replug" in c.fix


def test_probe_skipped_without_a_device(tmp_path, edgetpu_standins):
    root = pi_with(tmp_path, edgetpu_standins["works"])
    shutil.rmtree(root / "sys/bus/usb/devices/2-1")
    c = checks(root, probe=True)["probe"]
    assert c.status == "warn" and "no Edge TPU" in c.detail


def compiled_bundle(tmp_path, coral_dir):
    """A bundle of Coral's compiled MobileNet that needs Edge TPU runtime 14."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    shutil.copy(coral_dir / "mobilenet_v1_0.25_128_quant_edgetpu.tflite", bundle / "m.tflite")
    (bundle / "edgekit.json").write_text(json.dumps({
        "models": {"cpu": "m.tflite", "edgetpu": "m.tflite"},
        "compile": {"status": "compiled", "compiler_version": "16.0.384591198",
                    "min_runtime": None, "required_runtime": 14},
    }))  # fmt: skip
    return bundle


def test_bundle_runtime_is_compared_before_loading(tmp_path, edgetpu_standins, coral_dir):
    bundle = compiled_bundle(tmp_path, coral_dir)
    got = checks(pi_with(tmp_path / "pi", edgetpu_standins["runtime13"]), probe=True,
                 model=str(bundle))  # fmt: skip
    c = got["model runtime"]
    assert c.status == "fail" and "needs Edge TPU runtime 14" in c.detail
    assert "runtime 13" in c.detail and "-m 13" in c.fix
    got = checks(pi_with(tmp_path / "pi2", edgetpu_standins["works"]), probe=True,
                 model=str(bundle))  # fmt: skip
    assert got["model runtime"].status == "ok"


def test_doctor_cli_with_a_segfaulting_library_exits_1(tmp_path, edgetpu_standins):
    """The real command in a real process: a diagnosis and status 1, not a signal."""
    root = pi_with(tmp_path, edgetpu_standins["segv"])
    p = subprocess.run([sys.executable, "-c", "from edgekit.cli import run; run()", "doctor",
                        "--root", str(root), "--json"], capture_output=True, text=True,
                       timeout=120)  # fmt: skip
    assert p.returncode == 1, (p.returncode, p.stderr)
    d = json.loads(p.stdout)
    probe = next(c for c in d["checks"] if c["name"] == "probe")
    assert probe["status"] == "fail" and "SIGSEGV" in probe["detail"]
    assert "another TensorFlow version" in probe["detail"]


def test_doctor_cli_options(tmp_path, edgetpu_standins):
    root = pi_with(tmp_path, edgetpu_standins["segv"])
    r = CliRunner().invoke(main, ["doctor", "--root", str(root), "--no-probe"])
    assert "] probe:" not in r.stdout
    r = CliRunner().invoke(main, ["doctor", "--root", str(root), "-d", "usb:x"])
    assert r.exit_code == 1 and "invalid device" in r.stderr
    r = CliRunner().invoke(main, ["doctor", "--root", str(root), "--model", str(tmp_path / "no")])
    assert r.exit_code == 2 and "no such bundle" in r.stderr
    r = CliRunner().invoke(main, ["doctor", "--root", str(root), "--timeout", "0"])
    assert r.exit_code == 2
    # --libedgetpu overrides the library found under the root
    r = CliRunner().invoke(main, ["doctor", "--root", str(root), "--libedgetpu",
                                  str(edgetpu_standins["works"]), "--json"])  # fmt: skip
    probe = next(c for c in json.loads(r.stdout)["checks"] if c["name"] == "probe")
    assert probe["status"] == "ok", probe


def test_doctor_timeout_must_be_a_number(tmp_path):
    for bad in ("nan", "inf", "0", "-1"):
        r = CliRunner().invoke(main, ["doctor", "--root", str(tmp_path), "--timeout", bad])
        assert r.exit_code == 2 and "--timeout" in r.stderr, (bad, r.stderr)


def test_model_runtime_not_compared_is_said(tmp_path, coral_dir):
    """doctor --model BUNDLE said nothing about the model when it could not compare (no
    libedgetpu, --no-probe), nor about a folder that is no compiled bundle."""
    bundle = compiled_bundle(tmp_path, coral_dir)
    root = pi_with(tmp_path / "pi")  # an Edge TPU, no libedgetpu
    for probe, why in ((False, "--no-probe"), (True, "runtime version could not be read")):
        c = checks(root, probe=probe, model=str(bundle))["model runtime"]
        assert c.status == "warn" and "needs Edge TPU runtime 14; not compared" in c.detail
        assert why in c.detail, c
    photos = tmp_path / "photos"
    photos.mkdir()
    c = checks(root, probe=False, model=str(photos))["model runtime"]
    assert c.status == "warn" and "no Edge TPU runtime requirement recorded" in c.detail
