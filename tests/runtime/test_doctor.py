"""`edgekit doctor` against fake root trees (sysfs, /dev, /etc, dpkg status)."""

from __future__ import annotations

import json
import os
import stat

from click.testing import CliRunner

from edgekit.cli import main
from edgekit.doctor import check_compiler, check_python, report, run_checks

from .runtime_fakes import make_sysfs

DPKG = """Package: bash
Status: install ok installed
Version: 5.2

Package: libedgetpu1-{flavour}
Status: install ok installed
Architecture: arm64
Version: {version}

Package: libedgetpu1-max
Status: deinstall ok config-files
Version: 15.0
"""
LITERT = {"ai_edge_litert": "2.3.0", "tflite_runtime": None, "tensorflow": None}
TFLITE = {"ai_edge_litert": None, "tflite_runtime": "2.17.1", "tensorflow": None}  # the pair's


def healthy_pi(root, speed=5000, flavour="std", version="16.0tf2.17.1-1"):
    """A Pi as setup-pi.sh leaves it: feranick's libedgetpu (TF 2.17.1), udev rule, plugdev,
    the Coral at 2-1 = /dev/bus/usb/002/003 (crw-rw---- root:plugdev)."""
    make_sysfs(root, usb=[("1-1", "2109", "3431", 480), ("2-1", "18d1", "9302", speed)])
    (root / "sys/bus/usb/devices/2-1/busnum").write_text("2\n")
    (root / "sys/bus/usb/devices/2-1/devnum").write_text("3\n")
    node = root / "dev/bus/usb/002/003"
    node.parent.mkdir(parents=True)
    node.touch(mode=0o660)
    node.chmod(0o660)
    try:
        os.chown(node, 0, 46)  # plugdev, as the udev rule sets it (tests run as root)
    except PermissionError:
        pass
    lib = root / "usr/lib/aarch64-linux-gnu"
    lib.mkdir(parents=True)
    (lib / "libedgetpu.so.1").touch()
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text(DPKG.format(flavour=flavour, version=version))
    (root / "etc").mkdir()
    (root / "etc/group").write_text("root:x:0:\nplugdev:x:46:pi\nvideo:x:44:pi\n")
    (root / "lib/udev/rules.d").mkdir(parents=True)
    (root / "lib/udev/rules.d/60-libedgetpu1-std.rules").write_text('SUBSYSTEM=="usb"\n')
    (root / "dev/video0").touch()
    return root


def no_picamera(name):
    raise ImportError("No module named 'libcamera'")


def checks(root, **kw):
    node = root / "dev/bus/usb/002/003"
    gids = [1000, 46] + ([node.stat().st_gid] if node.exists() else [])
    args = dict(user="pi", uid=1000, gids=gids, machine="aarch64", path="",
                import_module=no_picamera, providers=TFLITE)  # fmt: skip
    args.update(kw)
    return {c.name: c for c in run_checks(root, **args)}


def test_healthy_pi_passes_everything(tmp_path):
    got = checks(healthy_pi(tmp_path))
    assert {n: c.status for n, c in got.items()} == {
        "python": "ok", "interpreter": "ok", "pycoral": "ok", "libedgetpu": "ok", "stack": "ok",
        "edgetpu usb:0": "ok", "access usb:0": "ok", "users usb:0": "ok", "plugdev": "ok",
        "udev rule": "ok", "camera": "ok", "edgetpu_compiler": "ok", "link usb:0": "ok",
    }  # fmt: skip
    assert "libedgetpu1-std 16.0tf2.17.1-1" in got["libedgetpu"].detail
    assert "both TF 2.17.1" in got["stack"].detail
    assert "/dev/bus/usb/002/003" in got["access usb:0"].detail
    assert "/usr/lib/aarch64-linux-gnu/libedgetpu.so.1" in got["libedgetpu"].detail
    assert "USB 3" in got["edgetpu usb:0"].detail
    assert got["udev rule"].detail == "/lib/udev/rules.d/60-libedgetpu1-std.rules"
    cam = got["camera"].detail
    assert "/dev/video0" in cam and "picamera2 not importable" in cam
    assert "x86-64" in got["edgetpu_compiler"].detail
    assert report(list(got.values()))["ok"] is True


def test_usb2_link_and_max_clock_warn(tmp_path):
    got = checks(healthy_pi(tmp_path, speed=480, flavour="max"))
    assert got["edgetpu usb:0"].status == "warn" and "USB 2" in got["edgetpu usb:0"].detail
    assert "USB 3" in got["edgetpu usb:0"].fix
    assert got["libedgetpu"].status == "warn" and "25 C" in got["libedgetpu"].fix
    assert report(list(got.values()))["ok"] is True


def test_bare_machine_fails_with_fixes(tmp_path):
    (tmp_path / "sys").mkdir()
    got = checks(tmp_path, providers={"ai_edge_litert": None, "tflite_runtime": None,
                                      "tensorflow": None})  # fmt: skip
    for name, fix in [("interpreter", "pip install ai-edge-litert"),
                      ("libedgetpu", "setup-pi.sh"), ("edgetpu", "USB 3"),
                      ("plugdev", "groupadd plugdev"), ("udev rule", "setup-pi.sh")]:  # fmt: skip
        assert got[name].status == "fail" and fix in got[name].fix, got[name]
    assert got["camera"].status == "warn"
    assert report(list(got.values()))["ok"] is False


def test_uninitialised_stick_and_plugdev_states(tmp_path):
    root = healthy_pi(tmp_path)
    (root / "sys/bus/usb/devices/2-1/idVendor").write_text("1a6e\n")
    (root / "sys/bus/usb/devices/2-1/idProduct").write_text("089a\n")
    got = checks(root)
    tpu = got["edgetpu usb:0"]
    assert tpu.status == "ok" and "firmware not loaded" in tpu.detail
    assert checks(root, gids=[1000])["plugdev"].status == "warn"  # added, not re-logged in
    assert checks(root, user="bob", gids=[1000])["plugdev"].status == "fail"
    assert checks(root, user="root", uid=0, gids=[0])["plugdev"].status == "ok"


def test_udev_rule_in_etc_and_missing_lib_file(tmp_path):
    root = healthy_pi(tmp_path)
    os.remove(root / "lib/udev/rules.d/60-libedgetpu1-std.rules")
    (root / "etc/udev/rules.d").mkdir(parents=True)
    (root / "etc/udev/rules.d/99-edgetpu-accelerator.rules").touch()
    os.remove(root / "usr/lib/aarch64-linux-gnu/libedgetpu.so.1")
    got = checks(root)
    assert got["udev rule"].detail == "/etc/udev/rules.d/99-edgetpu-accelerator.rules"
    lib = got["libedgetpu"]
    assert lib.status == "fail" and "--reinstall libedgetpu1-std" in lib.fix


def test_compiler_on_an_x86_host(tmp_path):
    assert check_compiler("x86_64", str(tmp_path)).status == "warn"
    exe = tmp_path / "edgetpu_compiler"
    exe.write_text("#!/bin/sh\necho 'Edge TPU Compiler version 16.0.384591198'\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    c = check_compiler("x86_64", str(tmp_path))
    assert c.status == "ok" and c.detail.endswith("Edge TPU Compiler version 16.0.384591198")


def test_pypi_pycoral_impostor_warns(tmp_path):
    import types

    def impostor(name):
        if name == "pycoral":
            return types.ModuleType("pycoral")
        raise ImportError(name)

    got = checks(healthy_pi(tmp_path), import_module=impostor)
    assert got["pycoral"].status == "warn" and "pip uninstall pycoral" in got["pycoral"].fix
    assert checks(tmp_path)["pycoral"].detail.startswith("not installed")


def test_python_versions():
    assert check_python("3.9.2").status == "ok" and "pycoral" not in check_python("3.9.2").detail
    assert "libedgetpu delegate" in check_python("3.11.2").detail
    assert check_python("3.8.10").status == "fail"


def test_doctor_cli_json_and_exit_codes(tmp_path):
    bare = tmp_path / "bare"
    (bare / "sys").mkdir(parents=True)
    r = CliRunner().invoke(main, ["doctor", "--root", str(bare), "--json"])
    d = json.loads(r.stdout)
    assert r.exit_code == 1 and d["ok"] is False
    assert all(set(c) == {"name", "status", "detail", "fix"} for c in d["checks"])
    assert {c["status"] for c in d["checks"]} <= {"ok", "warn", "fail"}
    r = CliRunner().invoke(main, ["doctor", "--root", str(bare)])
    assert r.exit_code == 1 and "[FAIL] libedgetpu" in r.stdout and "fix: " in r.stdout
    assert "check(s) failed: follow each 'fix:' line above" in r.stdout.splitlines()[-1]
