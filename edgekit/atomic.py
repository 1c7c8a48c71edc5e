"""Atomic output: a file or a directory appears complete, or not at all.

Everything is first written next to its destination (same filesystem, so ``os.replace`` is an
atomic rename) and moved into place only when complete. A crash or an exception leaves at most a
hidden ``.<name>.tmp-*`` entry that is removed on the error path.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from edgekit.errors import EdgekitError


@contextlib.contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix, not yet created) for a writer that
    must create the file itself (Keras' ``model.save``, ``savefig``); on success it is renamed
    over ``path``, on error removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.tmp-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    os.unlink(name)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file + fsync + rename)."""
    with replacing(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Build a directory in a temporary sibling and move it to ``path`` on success.

    Yields the temporary directory to fill. If the block raises, the temporary directory is
    removed and ``path`` is untouched. If ``path`` exists, :class:`EdgekitError` is raised
    unless ``force`` is true, in which case the old directory is replaced only after the new one
    is complete.
    """
    path = Path(path)
    if path.exists() and not force:
        raise EdgekitError(f"{path} already exists", "choose another output or pass --force")
    if path.exists() and not path.is_dir():
        raise EdgekitError(f"{path} exists and is not a directory", "choose another output")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
