"""``edgekit doctor``: the software checks: Python, the TFLite interpreter, pycoral, the
installed libedgetpu (files and dpkg packages, read under ``root``) and, on an x86-64 host,
edgetpu_compiler."""

from __future__ import annotations

import importlib
import platform
import re
import shutil
import subprocess
from pathlib import Path
from typing import Callable

from edgekit.backends.providers import installed_providers
from edgekit.doctor_check import FAIL, OK, WARN, Check

LIB_DIRS = (
    "usr/lib/aarch64-linux-gnu",
    "usr/lib/arm-linux-gnueabihf",
    "usr/lib/x86_64-linux-gnu",
    "usr/lib",
    "usr/local/lib",
    "lib/aarch64-linux-gnu",
    "lib/x86_64-linux-gnu",
    "lib",
)
APT_FIX = (
    "sudo bash scripts/setup-pi.sh: it installs the libedgetpu built for your interpreter "
    "(`edgekit stack` names it; Google's own package crashes in current interpreters)"
)


def check_python(version: str | None = None) -> Check:
    v = version or platform.python_version()
    major, minor = (int(x) for x in v.split(".")[:2])
    if (major, minor) < (3, 9):
        return Check("python", FAIL, f"Python {v}", "edgekit needs Python >= 3.9")
    note = ""
    if (major, minor) > (3, 9):
        note = " (Google's pycoral needs <= 3.9: edgekit uses the libedgetpu delegate instead)"
    return Check("python", OK, f"Python {v}{note}")


def check_interpreter(providers: dict[str, str | None] | None = None) -> Check:
    found = providers if providers is not None else installed_providers()
    for name in ("ai_edge_litert", "tflite_runtime"):
        if found.get(name):
            return Check("interpreter", OK, f"{name} {found[name]}")
    if found.get("tensorflow"):
        return Check(
            "interpreter",
            WARN,
            f"only tensorflow {found['tensorflow']} (slow to load)",
            "pip install ai-edge-litert",
        )
    return Check(
        "interpreter", FAIL, "no TFLite interpreter installed", "pip install ai-edge-litert"
    )


def check_pycoral(import_module: Callable = importlib.import_module) -> Check:
    """Google's pycoral is optional (the delegate is used without it); PyPI's ``pycoral`` is an
    unrelated project that only shadows the name."""
    try:
        import_module("pycoral")
    except Exception:
        return Check("pycoral", OK, "not installed (not needed: edgekit loads the delegate)")
    try:
        mod = import_module("pycoral.utils.edgetpu")
        ok = hasattr(mod, "make_interpreter")
    except Exception:
        ok = False
    if ok:
        return Check("pycoral", OK, "Google's pycoral (used for the Edge TPU)")
    return Check(
        "pycoral",
        WARN,
        "a `pycoral` that is not Google's (the unrelated PyPI package)",
        "pip uninstall pycoral (Google's comes from Coral's repository, Python <= 3.9)",
    )


def _dpkg_installed(root: Path) -> dict[str, str]:
    """{package: version} of installed libedgetpu1-* packages from /var/lib/dpkg/status."""
    try:
        text = (root / "var/lib/dpkg/status").read_text(errors="replace")
    except OSError:
        return {}
    out = {}
    for block in text.split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", block, re.M))
        name = fields.get("Package", "")
        if name.startswith("libedgetpu1-") and "install ok installed" in fields.get("Status", ""):
            out[name] = fields.get("Version", "?")
    return out


def check_libedgetpu(root: Path) -> Check:
    libs = [
        str(Path("/") / d / "libedgetpu.so.1")
        for d in LIB_DIRS
        if (root / d / "libedgetpu.so.1").exists()
    ]
    pkgs = _dpkg_installed(root)
    if not libs and not pkgs:
        return Check("libedgetpu", FAIL, "libedgetpu.so.1 not found", APT_FIX)
    flavour = ", ".join(f"{k} {v}" for k, v in sorted(pkgs.items())) or "not from a package"
    detail = f"{libs[0] if libs else 'library file not found'} ({flavour})"
    if not libs:
        return Check(
            "libedgetpu",
            FAIL,
            detail,
            "reinstall: sudo apt-get install --reinstall "
            + (next(iter(pkgs)) if pkgs else "libedgetpu1-std"),
        )
    if "libedgetpu1-max" in pkgs:
        return Check(
            "libedgetpu",
            WARN,
            detail + ": maximum clock, runs hot",
            "keep the Coral at <= 25 C ambient, or install libedgetpu1-std",
        )
    return Check("libedgetpu", OK, detail)


def check_compiler(machine: str, path: str | None) -> Check:
    if machine.lower() not in ("x86_64", "amd64"):
        return Check("edgetpu_compiler", OK, f"not needed on {machine}: compile on an x86-64 host")
    exe = shutil.which("edgetpu_compiler", path=path)
    if not exe:
        return Check(
            "edgetpu_compiler",
            WARN,
            "not on PATH: `edgekit convert` writes CPU-only bundles until it is installed",
            "sudo bash scripts/setup-host.sh (installs edgetpu-compiler from Coral's apt "
            "repository)",
        )
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=20)
        version = (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        version = "version unknown"
    return Check("edgetpu_compiler", OK, f"{exe}: {version}")
