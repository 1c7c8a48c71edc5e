"""The shell scripts a new user runs first: ``--help`` prints their header comment (not code),
and long pip installs say what they are installing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ("demo.sh", "test.sh", "setup-host.sh", "setup-pi.sh", "install-service.sh")


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_prints_the_header_comment(name):
    path = ROOT / "scripts" / name
    out = subprocess.run(["bash", str(path), "--help"], capture_output=True, text=True,
                         timeout=30, cwd=ROOT)  # fmt: skip
    assert out.returncode == 0, out.stderr
    header = []
    for line in path.read_text().splitlines()[1:]:
        if not line.startswith("#"):
            break
        header.append(line[2:] if line.startswith("# ") else line[1:])
    assert out.stdout.splitlines() == header
    assert "set -e" not in out.stdout and "#" not in out.stdout.splitlines()[0]


def test_pip_progress_names_each_package(tmp_path):
    (tmp_path / ".venv").mkdir()
    pip_output = (
        "Collecting numpy>=1.23 (from edgekit==0.1)\n  Downloading numpy.whl (16 MB)\n"
        "Collecting click>=8.0\nInstalling collected packages: numpy, click\n"
        "Successfully installed click-8.1 numpy-2.1\n"
    )
    out = subprocess.run(
        ["bash", "-c", f". {ROOT}/scripts/_setup.sh && pip_progress"], input=pip_output,
        capture_output=True, text=True, timeout=30, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "  collecting numpy>=1.23", "  collecting click>=8.0",
        "  installing: numpy, click", "  installed: click-8.1 numpy-2.1",
    ]  # fmt: skip
    assert (tmp_path / ".venv" / "pip.log").read_text() == pip_output  # everything logged
