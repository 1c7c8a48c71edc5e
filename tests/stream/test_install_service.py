"""scripts/install-service.sh end to end under a temporary root, with the system commands it
calls (useradd, systemctl, runuser...) replaced by stubs that log their arguments; the check it
runs is the real ``edgekit serve --check``. The unit's restart policy is bounded."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import edgekit_cmd

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "install-service.sh"

STUB = """#!/bin/bash
echo "$(basename "$0") $*" >> "$STUB_LOG"
case "$(basename "$0")" in
  id) [ "$1" = "-u" ] && [ "$2" = edgekit ] && exit 0; exec /usr/bin/id "$@" ;;
  getent) exit 0 ;;
  runuser) shift 3; exec "$@" ;;   # runuser -u edgekit -- CMD...: run CMD as ourselves
  systemd-analyze) exit 0 ;;
esac
exit 0
"""


@pytest.fixture
def env(tmp_path):
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for name in ("useradd", "usermod", "groupadd", "getent", "id", "systemctl", "runuser",
                 "systemd-analyze"):  # fmt: skip
        (bin_ / name).write_text(STUB)
        (bin_ / name).chmod(0o755)
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "edgekit").symlink_to(edgekit_cmd()[0])
    log = tmp_path / "calls.log"
    log.write_text("")
    e = {**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}", "STUB_LOG": str(log),
         "EDGEKIT_INSTALL_ROOT": str(tmp_path / "root")}  # fmt: skip
    return tmp_path, venv, e, log


def install(env, *args):
    tmp, venv, e, log = env
    out = subprocess.run(["bash", str(SCRIPT), "--venv", str(venv), *args], env=e,
                         capture_output=True, text=True, timeout=180)  # fmt: skip
    return out, log.read_text().splitlines()


def test_example_config_is_installed_but_never_enabled(env):
    out, calls = install(env)
    assert out.returncode == 0, out.stderr
    assert "still the example" in out.stdout
    assert not any(c.startswith("systemctl enable") or c.startswith("systemctl restart")
                   for c in calls), calls  # fmt: skip
    root = env[0] / "root"
    assert (root / "etc/edgekit/edgekit.toml").read_text() == (
        ROOT / "systemd/edgekit.toml"
    ).read_text()
    assert (root / "etc/systemd/system/edgekit.service").is_file()


def test_a_config_that_fails_the_check_is_not_enabled(env, coral_dir):
    root = env[0] / "root"
    (root / "etc/edgekit").mkdir(parents=True)
    (root / "etc/edgekit/edgekit.toml").write_text(
        '[model]\npath = "/nonexistent/model"\n[source]\nuri = "/nonexistent/frames"\n'
    )
    out, calls = install(env)
    assert out.returncode == 1
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and "nonexistent" in errors[0], out.stderr
    assert "not enabled" in out.stderr
    assert not any(c.startswith("systemctl enable") for c in calls), calls


def test_a_good_config_is_checked_then_enabled_and_started(env, coral_dir, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    shutil.copy(coral_dir / "cat.bmp", frames / "cat.bmp")
    root = env[0] / "root"
    (root / "etc/edgekit").mkdir(parents=True)
    (root / "etc/edgekit/edgekit.toml").write_text(
        '[model]\npath = "model/mobilenet_v1_0.25_128_quant.tflite"\ndevice = "cpu"\n'
        f'[source]\nuri = "{frames}"\n'
    )
    out, calls = install(env, "--model", str(coral_dir / "mobilenet_v1_0.25_128_quant.tflite"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "OK: " in out.stdout and "started" in out.stdout
    assert calls.index("systemctl enable edgekit.service") < calls.index(
        "systemctl restart edgekit.service"
    )
    assert any(c.startswith("runuser -u edgekit --") and "serve --check" in c for c in calls)


def test_restart_policy_is_bounded():
    text = (ROOT / "systemd" / "edgekit.service").read_text()
    unit, _, service = text.partition("[Service]")
    assert "StartLimitBurst=0" not in text
    burst = int(unit.split("StartLimitBurst=")[1].split()[0])
    interval = int(unit.split("StartLimitIntervalSec=")[1].split()[0])
    restart_sec = int(service.split("RestartSec=")[1].split()[0])
    assert 1 <= burst <= 10 and burst * restart_sec < interval  # the limit can actually trip
