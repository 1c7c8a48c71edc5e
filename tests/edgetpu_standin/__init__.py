"""Stand-in libedgetpu shared libraries, built from standin.c with the system C compiler.

The real Edge TPU stack (libedgetpu, a Coral) cannot be installed or attached here, so tests
load these instead: each is a real shared library exporting the TFLite external-delegate ABI and
libedgetpu's C API (see standin.c), with one behaviour compiled in:

    works   claims the edgetpu-custom-op nodes, computes nothing, invokes fine
    null    tflite_plugin_create_delegate returns NULL ("Failed to load delegate")
    segv    SIGSEGV in the delegate's Prepare (the TF-version ABI mismatch)
    hang    blocks forever in Prepare
    abort   "USB transfer error 5" on stderr, then abort() at the first invoke

Crash after N invokes (for a worker that dies mid-stream): the ``works`` library with
``EDGETPU_STANDIN_CRASH_AFTER=N`` in the environment of the process that loads it (read when
the delegate is created; the count is per process, so a restarted worker gets N more).
``EDGETPU_STANDIN_HANG_AFTER=N`` hangs instead, ``EDGETPU_STANDIN_ABORT_AFTER=N`` prints the
``abort`` library's fatal line and aborts instead; ``EDGETPU_STANDIN_LOG=PATH`` appends
"<pid> create|prepare|invoke|destroy" lines. ``EDGETPU_STANDIN_INVOKE_MS=X`` makes each invoke
sleep X ms (the device's time, no CPU used); ``EDGETPU_STANDIN_DEVICES=N`` attaches N USB
Accelerators (a delegate for ``usb:K``, K >= N, is not created);
``EDGETPU_STANDIN_CRASH_DEVICE=usb:1`` limits CRASH_AFTER/HANG_AFTER to the delegate opened on
that device.

Each library is ``<dir>/<mode>/libedgetpu.so.1`` so that ``LD_LIBRARY_PATH=<dir>/<mode>`` makes
it the one ``dlopen("libedgetpu.so.1")`` finds. Use in a conftest::

    from tests.edgetpu_standin import edgetpu_standins  # noqa: F401  (the fixture)
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "standin.c"
MODES = {"works": 0, "null": 1, "segv": 2, "hang": 3, "abort": 4}
LIBRARY = "libedgetpu.so.1"


def compiler() -> str | None:
    return shutil.which("cc") or shutil.which("gcc")


def build(dest: Path, mode: str = "works", runtime_version: int = 14,
          build_label: str | None = None) -> Path:  # fmt: skip
    """Compile one stand-in into ``dest/LIBRARY`` and return its path."""
    cc = compiler()
    if cc is None:
        raise RuntimeError("no C compiler (apt-get install build-essential)")
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / LIBRARY
    cmd = [cc, "-shared", "-fPIC", "-O1", "-Wall", "-Werror", f"-DSTANDIN_MODE={MODES[mode]}",
           f"-DRUNTIME_VERSION={int(runtime_version)}", "-o", str(out), str(SOURCE)]  # fmt: skip
    if build_label is not None:
        cmd.insert(-3, f'-DBUILD_LABEL="{build_label}"')
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"building the {mode} stand-in failed:\n{proc.stderr}")
    return out


@pytest.fixture(scope="session")
def edgetpu_standins(tmp_path_factory) -> dict[str, Path]:
    """{mode: path of its libedgetpu.so.1} for every mode (plus "runtime13": a working library
    that reports RuntimeVersion(13))."""
    if compiler() is None:
        pytest.skip("no C compiler to build the libedgetpu stand-ins")
    root = tmp_path_factory.mktemp("edgetpu_standins")
    libs = {mode: build(root / mode, mode) for mode in MODES}
    libs["runtime13"] = build(root / "runtime13", "works", runtime_version=13)
    return libs
