"""Atomic output: a file or a directory appears complete, or not at all.

Everything is first written next to its destination (same filesystem, so ``os.replace`` is an
atomic rename) and moved into place only when complete. A crash or an exception leaves at most a
hidden ``.<name>.tmp-*`` entry that is removed on the error path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from edgekit.errors import EdgekitError


@contextlib.contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix, not yet created) for a writer that
    must create the file itself (Keras' ``model.save``, ``savefig``); on success it is renamed
    over ``path``, on error removed."""
    given = Path(path)
    _refuse_special(given)
    # Through a symlink: the file it names is replaced, the link stays (os.replace would put a
    # regular file in the link's place; /dev/stdout is one).
    path = Path(os.path.realpath(given)) if given.is_symlink() else given
    with _output_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(
            prefix=f".{path.stem}.tmp-", suffix=path.suffix, dir=path.parent
        )
    os.close(fd)
    os.unlink(name)
    tmp = Path(name)
    try:
        with _write_errors(path):
            yield tmp
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


_SPECIAL = {stat.S_IFCHR: "a device", stat.S_IFBLK: "a device", stat.S_IFIFO: "a FIFO",
            stat.S_IFSOCK: "a socket"}  # fmt: skip


def _refuse_special(path: Path) -> None:
    """A device, FIFO or socket (itself or through a symlink) is never an output: the atomic
    rename would replace it with a regular file (``bench --plot /dev/null`` as root replaced
    the machine's /dev/null)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    kind = _SPECIAL.get(stat.S_IFMT(mode))
    if kind:
        raise EdgekitError(
            f"{path}: is {kind}, not a file; edgekit writes only regular files",
            "choose a file name (to discard an output, leave its option out)",
        )


NAME_MAX = 255  # bytes per path component on Linux file systems (ext4, xfs, btrfs, tmpfs)
PATH_MAX = 4096  # bytes of a whole path
# The longest sibling edgekit creates beside an output: ".<name>.tmp-" plus mkdtemp's 8
# random characters (atomic_dir, temporary_path); the lock file ".<name>.lock" is shorter.
SIBLING_EXTRA = 14


def _check_name_length(path: Path) -> None:
    """A name the file system cannot hold is one line (the OSError 'File name too long' came
    out of the first ``stat`` as a traceback), checked with room for our temporary sibling."""
    parts = path.parts
    for i, part in enumerate(parts):
        n = len(os.fsencode(part))
        limit = NAME_MAX - (SIBLING_EXTRA if i == len(parts) - 1 else 0)
        if n > limit:
            short = part if len(part) <= 24 else part[:20] + "..."
            raise EdgekitError(
                f"{short}: a name of {n} bytes; at most {limit} fit here (file systems take "
                f"{NAME_MAX}, edgekit's temporary copy beside it adds {NAME_MAX - limit})",
                "choose a shorter output name",
            )
    if len(os.fsencode(str(path.absolute()))) + SIBLING_EXTRA > PATH_MAX:
        raise EdgekitError(
            f"{str(path)[:40]}...: the path is longer than {PATH_MAX - SIBLING_EXTRA} bytes",
            "choose a shorter output path",
        )


def check_destination(path: str | os.PathLike) -> None:
    """Raise :class:`EdgekitError` now if ``path`` could never be created because a file stands
    where one of its folders should be (``model.h5/out``), it is a device, FIFO or socket, or
    its nearest existing folder is not writable (read-only disk, no permission): lets a command
    fail before a long job rather than after it."""
    _check_name_length(Path(path))
    _refuse_special(Path(path))
    parent = Path(path).absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise EdgekitError(
            f"{path}: {parent} is a file, not a folder", "choose another output path"
        )
    # Writable? Try it (os.access says yes to root on a read-only mount or in /sys).
    try:
        fd, probe = tempfile.mkstemp(prefix=".edgekit-probe-", dir=parent)
    except OSError as e:
        raise EdgekitError(
            f"{path}: cannot write in {parent} ({e.strerror or e})", "choose another output path"
        ) from None
    os.close(fd)
    os.unlink(probe)


@contextlib.contextmanager
def _output_errors(path: Path) -> Iterator[None]:
    """OSError while preparing an output (a file in the way, no permission, read-only disk)
    -> one clear EdgekitError instead of a traceback."""
    try:
        yield
    except (FileExistsError, NotADirectoryError):
        check_destination(path)
        raise EdgekitError(
            f"{path}: cannot create its folder", "choose another output path"
        ) from None
    except OSError as e:
        raise EdgekitError(
            f"{path}: cannot write here ({e.strerror or e})", "choose another output path"
        ) from None


def current_umask() -> int:
    """The process umask, read without changing it (``/proc/self/status``, Linux >= 4.7), else
    through the classic set-and-restore."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# errno values that mean "the disk cannot take it", whatever was being written
_DISK_ERRORS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EIO}


@contextlib.contextmanager
def _write_errors(path: Path) -> Iterator[None]:
    """Disk full, file too large, quota, read-only or I/O error while writing an output -> one
    EdgekitError (the caller's cleanup has already run or runs as it propagates)."""
    try:
        yield
    except (OSError, RuntimeError) as e:
        code = getattr(e, "errno", None)
        if code is None:  # HDF5 (h5py, Keras' .h5) reports it in text: "errno = 28, ..."
            m = re.search(r"errno = (\d+)", str(e))
            code = int(m.group(1)) if m else None
        if code not in _DISK_ERRORS:
            raise
        raise EdgekitError(
            f"{path}: cannot write it ({os.strerror(code)}); nothing was written",
            "free some disk space (or choose another output) and run again",
        ) from None


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


def check_replaceable(path: str | os.PathLike, force: bool, marker: str = "edgekit.json") -> None:
    """Raise EdgekitError unless a directory may be written at ``path``: it does not exist, or
    ``force`` is set and it is an edgekit bundle (holds ``marker``: ``edgekit.json``; a composed
    dataset's is ``compose.json``) or an empty folder. ``--force`` must never delete a folder of
    photos (say, the ``--calib`` folder itself)."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return
    if not force:
        raise EdgekitError(f"{path} already exists", "choose another output or pass --force")
    if not path.is_dir() or path.is_symlink():
        raise EdgekitError(f"{path} exists and is not a directory", "choose another output")
    if not (path / marker).is_file() and any(path.iterdir()):
        what = "an edgekit bundle" if marker == "edgekit.json" else "edgekit's output"
        raise EdgekitError(
            f"{path} is not {what} (no {marker}) and not empty: --force replaces "
            "only such an output or an empty folder",
            "choose another output folder",
        )


@contextlib.contextmanager
def claim(path: str | os.PathLike, force: bool = False) -> Iterator[None]:
    """Hold an exclusive claim on the output ``path`` for the whole job (a lock file
    ``.<name>.lock`` beside it, ``flock``-ed and removed at the end).

    A second job writing the same output fails at once instead of both running for minutes and
    one silently replacing the other. Creating the lock file also proves, before any work, that
    the output's folder is writable. The destination is checked with :func:`check_replaceable`.
    """
    import fcntl

    path = Path(path)
    check_destination(path)
    check_replaceable(path, force)
    lock = path.parent / f".{path.name}.lock"
    made = [p for p in path.absolute().parents if not p.exists()]  # removed again on failure
    with _output_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    ok = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EdgekitError(
                f"{path}: another edgekit command is writing it right now",
                "wait for it to finish, or choose another output",
            ) from None
        try:
            check_replaceable(path, force)  # again, now that nobody else can create it
            yield
            ok = True
        finally:
            with contextlib.suppress(OSError):
                os.unlink(lock)
    finally:
        os.close(fd)
        for folder in made if not ok else ():  # nearest first; only the empty ones we created
            with contextlib.suppress(OSError):
                folder.rmdir()


@contextlib.contextmanager
def atomic_dir(
    path: str | os.PathLike, force: bool = False, marker: str = "edgekit.json"
) -> Iterator[Path]:
    """Build a directory in a temporary sibling and move it to ``path`` on success.

    Yields the temporary directory to fill. If the block raises, the temporary directory is
    removed and ``path`` is untouched. If ``path`` exists, :class:`EdgekitError` is raised
    unless ``force`` is true and it is a bundle (holds ``marker``) or empty
    (:func:`check_replaceable`), in which case
    the old directory is replaced only after the new one is complete. If something appears at
    ``path`` while the block runs, it is not replaced (without ``force``): the job fails.
    """
    path = Path(path)
    check_replaceable(path, force, marker)
    with _output_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
        # mkdtemp makes 0700 whatever the umask: a bundle made by root would be unreadable by
        # the service user. Give it the mode mkdir would have given.
        os.chmod(tmp, 0o777 & ~current_umask())
    try:
        with _write_errors(path):
            yield tmp
        check_replaceable(path, force, marker)  # nothing appeared there while we worked
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
