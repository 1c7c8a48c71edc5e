"""Which libedgetpu the probe (and the delegate) loads: an explicit path (``--libedgetpu``),
else ``$EDGEKIT_LIBEDGETPU``, else ``libedgetpu.so.1`` found as ``dlopen`` would find it
(``LD_LIBRARY_PATH``, the ldconfig cache, the default directories), without loading it.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from edgekit.errors import EdgekitError

LIBRARY = "libedgetpu.so.1"
ENV = "EDGEKIT_LIBEDGETPU"
LIB_DIRS = (
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib/arm-linux-gnueabihf",
    "/usr/lib/arm-linux-gnueabihf",
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/local/lib",
    "/lib",
    "/usr/lib",
)


def library_spec(explicit: str | os.PathLike | None = None) -> str:
    """The library to use: ``explicit``, else $EDGEKIT_LIBEDGETPU, else libedgetpu.so.1."""
    return str(explicit or os.environ.get(ENV) or LIBRARY)


def set_library(path: str | os.PathLike) -> str:
    """Use ``path`` (a regular file) as libedgetpu in this process and its children (the
    ``--libedgetpu`` option). Returns the absolute path."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        raise EdgekitError(
            f"--libedgetpu {path}: no such file",
            "pass the path of a libedgetpu.so.1 (e.g. /usr/lib/aarch64-linux-gnu/libedgetpu.so.1)",
            exit_code=2,
        ) from None
    if not stat.S_ISREG(st.st_mode):
        raise EdgekitError(
            f"--libedgetpu {path}: not a regular file",
            "pass the path of a libedgetpu.so.1 shared library",
            exit_code=2,
        )
    os.environ[ENV] = str(p.absolute())
    return os.environ[ENV]


def _ldconfig_paths(name: str) -> list[str]:
    for exe in ("/sbin/ldconfig", "/usr/sbin/ldconfig"):
        if os.access(exe, os.X_OK):
            try:
                out = subprocess.run([exe, "-p"], capture_output=True, text=True, timeout=10)
            except (OSError, subprocess.SubprocessError):
                return []
            return [
                ln.rsplit("=> ", 1)[1].strip()
                for ln in out.stdout.splitlines()
                if ln.strip().startswith(name + " ") and "=> " in ln
            ]
    return []


def resolve_library(spec: str | None = None) -> Path | None:
    """The file ``dlopen(spec)`` would load, WITHOUT loading it; None if there is none."""
    spec = library_spec(spec)
    if "/" in spec:
        p = Path(spec)
        return p.absolute() if p.is_file() else None
    dirs = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    candidates = [os.path.join(d, spec) for d in dirs] + _ldconfig_paths(spec)
    candidates += [os.path.join(d, spec) for d in LIB_DIRS]
    for c in candidates:
        if os.path.isfile(c):
            return Path(c).absolute()
    return None
