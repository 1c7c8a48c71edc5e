"""Which libedgetpu and which TFLite interpreter to install together: the stack table.

Google's libedgetpu 16.0 (Coral's apt repository) was built against TensorFlow 2.5 and segfaults
in interpreters built from TF >= 2.12. feranick/libedgetpu rebuilds libedgetpu 16.0 against one TF
version per release tag; a working Pi pairs one with an interpreter built from the SAME TF
version. Each row below is such a pair for an (OS release, Debian arch, Python) and is marked

- ``proven``: a widely used project ships exactly this pair (evidence in docs/DESIGN.md),
- ``documented``: the same binaries, inside what their releases document, not yet seen shipped
  in this exact setting,
- ``experimental``: nobody has shown it working; the runtime's probe must pass before use,
- ``unsupported``: no pair is known to work; ``why`` says what to do instead.

Pure data and small functions: no I/O except :func:`this_machine` (reads /etc/os-release).
Where the binaries come from is :mod:`~.stack_sources`; what an installed pair is (TF versions,
match or crash, the runtime a model needs) :mod:`~.stack_pairs`. Standard library only.
"""

from __future__ import annotations

import platform
import re
import sys
from dataclasses import dataclass
from typing import Any

from edgekit.edgetpu.stack_pairs import (  # noqa: F401 - their import path
    interpreter_tf,
    libedgetpu_tf,
    pair_status,
    required_runtime,
)
from edgekit.edgetpu.stack_sources import (  # noqa: F401 - their import path
    CHECKSUMS,
    CORAL_APT,
    CORAL_PY_REPO,
    FERANICK,
    FRIGATE_TFLITE,
    TFLITE_BUILDS,
    V_TAGS,
    WHEEL_ARCH,
    asset_name,
    feranick_deb,
    google_deb,
    pypi_wheel,
    sha256_for,
    tflite_wheel,
)
from edgekit.errors import EdgekitError, one_line

OS_RELEASES = ("bullseye", "bookworm", "trixie")  # Debian 11, 12, 13 = Raspberry Pi OS
ARCHES = ("arm64", "armhf", "amd64")
UV_VERSION = "0.13.8"  # pinned: a uv release resolves "3.11" to one fixed CPython build
STATUSES = ("proven", "documented", "experimental", "unsupported")


@dataclass(frozen=True)
class Stack:
    """One answer. ``venv_python`` is the Python the venv runs on (``via`` "system" or "uv");
    ``libedgetpu`` / ``interpreter`` are None for ``unsupported``. ``dpkg_ignore`` lists Depends
    a .deb declares that the release no longer provides (installed with --ignore-depends)."""

    os: str
    arch: str
    python: str
    status: str
    why: str
    libedgetpu: dict[str, Any] | None = None
    interpreter: dict[str, Any] | None = None
    venv_python: str | None = None
    via: str = "system"
    dpkg_ignore: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The `edgekit stack --json` document (exactly these keys)."""
        return {
            "os": self.os,
            "arch": self.arch,
            "python": self.python,
            "status": self.status,
            "libedgetpu": self.libedgetpu,
            "interpreter": self.interpreter,
            "why": self.why,
        }


def _parse_python(python: str) -> tuple[int, int]:
    m = re.fullmatch(r"3\.(\d{1,2})", python.strip())
    if not m:
        raise EdgekitError(
            f"--python {python!r}: not a Python version", "pass X.Y, e.g. 3.11", exit_code=2
        )
    return 3, int(m.group(1))


def choose(
    os_name: str, arch: str, python: str, flavour: str = "std", experimental: bool = False
) -> Stack:
    """The stack for ``os_name`` (bullseye|bookworm|trixie), ``arch`` (arm64|armhf|amd64) and
    the system ``python`` (X.Y). ``experimental`` picks the experimental route where one is the
    alternative. Raises EdgekitError (exit 2) for values outside the table."""
    os_name, arch = os_name.strip().lower(), arch.strip().lower()
    if os_name not in OS_RELEASES:
        raise EdgekitError(
            f"unknown OS release {os_name!r}", f"pass one of: {', '.join(OS_RELEASES)}", exit_code=2
        )
    if arch not in ARCHES:
        raise EdgekitError(
            f"unknown architecture {arch!r}",
            f"pass one of: {', '.join(ARCHES)} (dpkg --print-architecture)",
            exit_code=2,
        )
    if flavour not in ("std", "max"):
        raise EdgekitError(f"unknown libedgetpu flavour {flavour!r}", "use std or max", 2)
    _, minor = _parse_python(python)
    py = f"3.{minor}"
    row = dict(os=os_name, arch=arch, python=py)
    if os_name == "bullseye":
        if minor != 9:
            return Stack(
                **row,
                status="unsupported",
                why="Bullseye's stack is Coral's own (TF "
                "2.5, Python 3.9); use Bullseye's python3 (3.9) or move to Bookworm",
            )
        return Stack(
            **row,
            status="proven",
            libedgetpu=google_deb(flavour),
            interpreter={
                "package": "tflite-runtime",
                "version": "2.5.0.post1",
                "tf": "2.5.0",
                "source": CORAL_PY_REPO,
            },
            venv_python=py,
            why="Coral's documented stack: Google's libedgetpu 16.0 "
            "and its tflite_runtime 2.5.0.post1 are both TF 2.5 (Coral's apt and "
            "Python repositories)",
        )
    if arch == "armhf":
        if not experimental:
            return Stack(
                **row,
                status="unsupported",
                why="no libedgetpu/interpreter pair of one "
                "TF version is published for 32-bit Raspberry Pi OS since Bullseye "
                "(tflite-runtime stops at 2.14, ai-edge-litert has no armv7l wheels, "
                "feranick's libedgetpu starts at TF 2.15): install the 64-bit OS (Pi "
                "3/4/5, Zero 2 W), or pass --experimental",
            )
        return Stack(
            **row,
            status="experimental",
            libedgetpu=feranick_deb("2.15.1", "bookworm", arch, flavour),
            interpreter=pypi_wheel("tflite-runtime", "2.14.0", "2.14.0"),
            venv_python=py if minor <= 11 else "3.11",
            via="system" if minor <= 11 else "uv",
            dpkg_ignore=("libgcc1",) if os_name == "trixie" else (),
            why="nearest pair on armhf: PyPI's last tflite-runtime (TF 2.14, numpy<2) "
            "with the oldest feranick libedgetpu (TF 2.15); not the same TF version: "
            "`edgekit doctor` must pass before you trust it",
        )
    if os_name == "trixie" and experimental and arch == "arm64":
        return Stack(
            **row,
            status="experimental",
            libedgetpu=feranick_deb("2.19.1", "trixie", arch, flavour),
            interpreter=pypi_wheel("ai-edge-litert", "2.1.2", "2.21-dev"),
            venv_python=py,
            dpkg_ignore=("libgcc1",),
            why="the system Python 3.13 with ai-edge-litert (TF master snapshot) and the "
            "newest libedgetpu build (TF 2.19.1): not the same TF version and nobody has "
            "shown this pair working; `edgekit doctor` must pass before you trust it",
        )
    deb = feranick_deb("2.17.1", "bookworm", arch, flavour)
    dpkg_ignore = ("libgcc1",) if os_name == "trixie" else ()
    if os_name == "bookworm" and minor in (11, 12):
        status = "proven" if minor == 11 else "documented"
        maker = "Frigate's" if arch == "amd64" else "feranick's"
        why = (
            f"the pair Frigate ships: libedgetpu 16.0TF2.17.1-1 with {maker} tflite_runtime "
            "2.17.1, both TF 2.17.1"
            if minor == 11
            else "Frigate's pair (TF 2.17.1) with "
            "the cp312 build of the same tflite_runtime release"
        )
        base = FRIGATE_TFLITE if (arch, minor) == ("amd64", 11) else TFLITE_BUILDS
        return Stack(
            **row,
            status=status,
            libedgetpu=deb,
            venv_python=py,
            why=why,
            interpreter=tflite_wheel("2.17.1", py, arch, base),
        )
    # Python with no tflite_runtime 2.17.1 build (3.13 on trixie, or others): the proven pair in
    # a venv on a uv-managed CPython 3.11.
    where = "Trixie's" if os_name == "trixie" else "this"
    return Stack(
        **row,
        status="documented",
        libedgetpu=deb,
        interpreter=tflite_wheel(
            "2.17.1", "3.11", arch, FRIGATE_TFLITE if arch == "amd64" else TFLITE_BUILDS
        ),
        venv_python="3.11",
        via="uv",
        dpkg_ignore=dpkg_ignore,
        why=f"{where} Python {py} has no tflite_runtime build of a TF version any "
        "libedgetpu targets, so the proven Bookworm pair (libedgetpu 16.0TF2.17.1-1 + "
        f"tflite_runtime 2.17.1, both TF 2.17.1) runs in a uv {UV_VERSION} managed "
        "CPython 3.11 venv; the alternative (--experimental) is ai-edge-litert with "
        "libedgetpu 16.0TF2.19.1, which nobody has shown working",
    )


def this_machine(os_release: str = "/etc/os-release") -> tuple[str, str, str]:
    """(OS codename, Debian arch, Python X.Y) of this machine."""
    codename = ""
    try:
        with open(os_release, encoding="utf-8") as f:
            for line in f:
                key, _, value = line.strip().partition("=")
                if key == "VERSION_CODENAME":
                    codename = value.strip().strip('"')
    except OSError:
        pass
    machine = platform.machine().lower()
    arch = {
        "aarch64": "arm64",
        "arm64": "arm64",
        "armv7l": "armhf",
        "armv6l": "armhf",
        "x86_64": "amd64",
        "amd64": "amd64",
    }.get(machine, machine)
    return codename or "unknown", arch, f"{sys.version_info[0]}.{sys.version_info[1]}"


def shell_lines(s: Stack) -> list[str]:
    """KEY=VALUE lines (shell-quoted) for scripts/setup-pi.sh, which evals them."""
    import shlex

    lib, it = s.libedgetpu or {}, s.interpreter or {}
    values = {
        "STACK_OS": s.os,
        "STACK_ARCH": s.arch,
        "STACK_PYTHON": s.python,
        "STACK_STATUS": s.status,
        "STACK_WHY": s.why,
        "LIB_PACKAGE": lib.get("package", ""),
        "LIB_VERSION": lib.get("version", ""),
        "LIB_TF": lib.get("tf", ""),
        "LIB_URL": lib.get("url", ""),
        "LIB_SHA256": (sha256_for(lib["url"]) or "") if lib else "",
        "INTERP_PACKAGE": it.get("package", ""),
        "INTERP_VERSION": it.get("version", ""),
        "INTERP_TF": it.get("tf", ""),
        # tflite_runtime wheels of this era are built against numpy 1: numpy 2 cannot import them
        "NUMPY_CONSTRAINT": "numpy<2" if it.get("package") == "tflite-runtime" else "",
        "INTERP_SOURCE": it.get("source", ""),
        "INTERP_SHA256": (sha256_for(it["source"]) or "") if it else "",
        "VENV_PYTHON": s.venv_python or "",
        "PYTHON_VIA": s.via,
        "UV_VERSION": UV_VERSION,
        "DPKG_IGNORE": ",".join(s.dpkg_ignore),
    }
    return [f"{k}={shlex.quote(str(v))}" for k, v in values.items()]


def main(argv: list[str] | None = None) -> int:
    """``python3 -m edgekit.edgetpu.stack --os NAME --arch ARCH --python X.Y [--max]
    [--experimental]``: the shell lines, with only the standard library (setup-pi.sh runs it
    before edgekit and its dependencies are installed)."""
    import argparse

    p = argparse.ArgumentParser(prog="python3 -m edgekit.edgetpu.stack")
    here = this_machine()
    p.add_argument("--os", default=here[0])
    p.add_argument("--arch", default=here[1])
    p.add_argument("--python", default=here[2])
    p.add_argument("--max", action="store_true")
    p.add_argument("--experimental", action="store_true")
    a = p.parse_args(argv)
    try:
        s = choose(a.os, a.arch, a.python, "max" if a.max else "std", a.experimental)
    except EdgekitError as e:
        sys.stderr.write(f"Error: {one_line(str(e))}\n")
        return e.exit_code
    sys.stdout.write("\n".join(shell_lines(s)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
