"""The probe's verdict cache: what is a property of the libedgetpu + interpreter PAIR (it works;
it segfaults), in ``$XDG_CACHE_HOME/edgekit/probe.json`` (else ``~/.cache/edgekit``), keyed by
the identity (path, size, mtime, inode) of both files and of the Python executable. Reading it
never fails (a bad cache is an empty one); writing it is best effort.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
from dataclasses import replace
from pathlib import Path

from edgekit.backends.probe_verdict import CACHEABLE, Verdict


def interpreter_identity() -> tuple[str, str, str]:
    """(module, version, file) of the interpreter the child will use, without importing it."""
    from importlib.util import find_spec

    from edgekit.backends.providers import PROVIDER_ORDER, dist_version

    for name in PROVIDER_ORDER:
        try:
            spec = find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is not None:
            return name, dist_version(name), str(spec.origin or "")
    return "none", "", ""


def _file_id(path: str) -> list:
    try:
        st = os.stat(path)
    except OSError:
        return [path]
    return [os.path.realpath(path), st.st_size, st.st_mtime_ns, st.st_ino]


def cache_key(library: Path) -> str:
    name, version, origin = interpreter_identity()
    ident = [
        os.path.realpath(sys.executable),
        name,
        version,
        _file_id(origin),
        _file_id(str(library)),
    ]
    return json.dumps(ident, separators=(",", ":"))


def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "edgekit" / "probe.json"


def _read_cache() -> dict:
    """The cache, or {} when it is absent, unreadable, not a regular file (a FIFO would block)
    or not what this module wrote."""
    path = cache_path()
    try:
        if not stat.S_ISREG(path.stat().st_mode) or path.stat().st_size > (1 << 20):
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _cached(hit: object) -> Verdict | None:
    """A cache entry back as a Verdict, only if it is one of the cacheable kinds, well formed."""
    if not isinstance(hit, dict) or hit.get("status") not in CACHEABLE:
        return None
    if not all(isinstance(hit.get(k), str) for k in ("detail", "fix")):
        return None
    try:
        v = Verdict(**hit)
    except TypeError:
        return None
    if v.runtime is not None and not isinstance(v.runtime, int):
        return None
    return replace(v, cached=True)


def _write_cache(key: str, v: Verdict) -> None:
    """Best effort: a read-only home only costs a probe next time."""
    from edgekit.atomic import write_text

    data = _read_cache()
    data[key] = {k: val for k, val in v.to_dict().items() if k != "cached"}
    with contextlib.suppress(Exception):
        write_text(cache_path(), json.dumps(data, indent=1) + "\n")
