"""The unit file (systemd-analyze verify + security), the shell scripts (shellcheck) and the
MemoryDenyWriteExecute=yes decision (inference under the kernel's W^X enforcement)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import edgekit_cmd

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "edgekit.service"


def need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    assert path, f"{tool} is needed for this test: apt-get install -y {package}"
    return path


def unit_copy(tmp_path) -> Path:
    """`verify` insists that ExecStart's binary exists; /opt/edgekit/venv only exists on the Pi.
    Point it at this venv's real edgekit script; everything else is checked as shipped."""
    text = UNIT.read_text()
    assert "ExecStart=/opt/edgekit/venv/bin/edgekit serve" in text
    copy = tmp_path / "edgekit.service"
    copy.write_text(text.replace("/opt/edgekit/venv/bin/edgekit", edgekit_cmd()[0]))
    return copy


def test_unit_verifies_without_warnings(tmp_path):
    exe = need("systemd-analyze", "systemd")
    out = subprocess.run([exe, "verify", str(unit_copy(tmp_path))], capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    # verify exits 0 on warnings such as unknown keys or a missing binary: read its output.
    assert out.returncode == 0 and out.stdout.strip() == "" and out.stderr.strip() == "", (
        out.stdout + out.stderr
    )


def test_unit_catches_a_typo(tmp_path):
    """Control: the check above does see problems."""
    exe = need("systemd-analyze", "systemd")
    bad = unit_copy(tmp_path)
    bad.write_text(bad.read_text().replace("NoNewPrivileges=yes", "NoNewPrivilege=yes"))
    out = subprocess.run([exe, "verify", str(bad)], capture_output=True, text=True, timeout=60)
    assert "NoNewPrivilege" in out.stdout + out.stderr


def test_unit_exposure_at_most_2_5(tmp_path):
    exe = need("systemd-analyze", "systemd")
    out = subprocess.run([exe, "security", "--offline=true", str(unit_copy(tmp_path))],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out.stdout)
    assert m, out.stdout + out.stderr
    assert float(m.group(1)) <= 2.5, out.stdout


def test_unit_essentials():
    text = UNIT.read_text()
    for line in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "User=edgekit",
                 "SupplementaryGroups=video plugdev", "DevicePolicy=closed",
                 "DeviceAllow=char-usb_device rw", "MemoryDenyWriteExecute=yes"):  # fmt: skip
        assert line in text, line


def test_shell_scripts_pass_shellcheck():
    exe = need("shellcheck", "shellcheck")
    scripts = sorted((ROOT / "scripts").glob("*.sh"))
    assert {"install-service.sh", "setup-pi.sh", "setup-host.sh"} <= {p.name for p in scripts}
    out = subprocess.run([exe, "-x", *[str(p.relative_to(ROOT)) for p in scripts]], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


MDWE = """
import ctypes, mmap, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN (Linux >= 6.3)
    print("NO_MDWE"); sys.exit(0)
try:  # control: a W+X mapping must now be refused
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    print("WX_ALLOWED"); sys.exit(1)
except OSError:
    pass
from edgekit.classify import Classifier
from edgekit.images import load_rgb
c = Classifier(sys.argv[1], labels=sys.argv[2], device="cpu", threads=2)
print(c.classify(load_rgb(sys.argv[3])).classes[0].label)
"""


def test_inference_runs_under_memory_deny_write_execute(coral_dir):
    out = subprocess.run(
        [sys.executable, "-c", MDWE, str(coral_dir / "mobilenet_v2_1.0_224_quant.tflite"),
         str(coral_dir / "imagenet_labels.txt"), str(coral_dir / "parrot.jpg")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if out.stdout.strip() == "NO_MDWE":
        pytest.skip("kernel without PR_SET_MDWE (< 6.3)")
    assert out.returncode == 0 and out.stdout.strip().endswith("macaw"), out.stdout + out.stderr
