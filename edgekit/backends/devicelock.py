"""One process owns one Edge TPU: an advisory lock file per device.

Why: libedgetpu gives a USB Accelerator to whichever process opens it last. A second process
that opens a Coral in use makes the first one abort with "USB transfer error 5" (SIGABRT), so
``edgekit classify`` run by hand next to a running ``edgekit serve`` would kill the service.
Every edgekit process therefore takes ``flock(LOCK_EX | LOCK_NB)`` on ``<dir>/<key>.lock``
before it touches the device (the probe included) and keeps it while the interpreter is open.
The file holds the owner's PID and command (``edgekit serve``) for the error message.

flock is released by the kernel when its holder dies, however it dies (SIGKILL, SIGSEGV): a
lock file left behind by a dead PID is simply not locked and the next process takes it over
and rewrites it. Lock files are opened close-on-exec, so children never inherit them.

``<key>`` names the physical device: its sysfs port path (``usb-2-1``: stable across the
Coral's re-enumeration from 1a6e:089a to 18d1:9302, which changes its /dev/bus/usb node) or,
without sysfs, the device string (``usb-0``).

Directory: ``$EDGEKIT_LOCK_DIR`` if set; else the first writable of ``/run/edgekit`` (the
systemd unit's RuntimeDirectory), ``$XDG_RUNTIME_DIR/edgekit`` and ``/tmp/edgekit-locks``.
Before taking its own lock a process also probes the same key in the other directories that
exist, so an interactive user sees the service's lock in /run/edgekit.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import stat
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import EdgekitError

_OWNER: tuple[int, str] | None = None  # (pid, command) recorded in lock files


def set_owner(pid: int, command: str) -> None:
    """Record ``pid``/``command`` in lock files taken by this process (a worker process
    records the ``edgekit serve`` process it works for)."""
    global _OWNER
    _OWNER = (int(pid), str(command))


def owner() -> tuple[int, str]:
    """(pid, command) this process records: by default its own PID and ``edgekit <command>``
    from argv."""
    if _OWNER is not None:
        return _OWNER
    argv = [a for a in sys.argv[1:] if not a.startswith("-")]
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    if prog in ("edgekit", "__main__.py") and argv:
        return os.getpid(), f"edgekit {argv[0]}"
    return os.getpid(), prog or "python"


def lock_dirs() -> list[Path]:
    """Candidate lock directories, most shared first (see module docstring)."""
    env = os.environ.get("EDGEKIT_LOCK_DIR")
    if env:
        return [Path(env)]
    dirs = [Path("/run/edgekit")]
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg):
        dirs.append(Path(xdg) / "edgekit")
    dirs.append(Path("/tmp/edgekit-locks"))
    return dirs


def lock_key(name: str, path: str | None = None) -> str:
    """File-name-safe key: the sysfs port (``usb-2-1``) when known, else the device name
    (``usb-0``)."""
    kind, _, index = name.partition(":")
    # The sysfs port is stable across the Coral's re-enumeration.
    ident = os.path.basename(path) if path and path.startswith("/sys/") else index or "0"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{kind or 'edgetpu'}-{ident}")


@dataclass(frozen=True)
class Holder:
    """Who holds a device lock: ``pid`` and ``command`` as recorded (None if unreadable)."""

    pid: int | None
    command: str
    path: Path


class DeviceBusy(EdgekitError):
    """Another process holds the Edge TPU (exit status 1)."""


class DeviceLock:
    """A held lock; :meth:`release` (or garbage collection, or death) frees it. Within one
    process the lock is shared (libedgetpu lets one process run several interpreters on one
    Edge TPU): the file is unlocked when the last holder releases it."""

    def __init__(self, key: str, path: Path, name: str):
        self._key: str | None = key
        self.path, self.name = path, name

    @property
    def held(self) -> bool:
        return self._key is not None

    def release(self) -> None:
        key, self._key = self._key, None
        if key is None:
            return
        with _HELD_GUARD:
            entry = _HELD.get(key)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] > 0:
                return
            del _HELD[key]
        fd = entry[0]
        try:
            os.ftruncate(fd, 0)  # a reader never sees a released lock naming a live PID
        except OSError:
            pass
        os.close(fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> DeviceLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


# key -> [fd, holders, path] for the locks this process holds
_HELD: dict[str, list] = {}
_HELD_GUARD = threading.RLock()  # acquire() holds it throughout: no race between threads


def _read_holder(fd: int, path: Path) -> Holder:
    try:
        text = os.pread(fd, 512, 0).decode("utf-8", "replace")
    except OSError:
        text = ""
    lines = text.splitlines()
    pid = int(lines[0]) if lines and lines[0].strip().isdigit() else None
    return Holder(pid, lines[1].strip() if len(lines) > 1 else "", path)


def _busy(fd: int) -> bool:
    """True if someone else holds ``fd``'s file locked. Leaves it unlocked."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return True
        raise
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


def holder(key: str) -> Holder | None:
    """The process holding ``key`` in any lock directory, or None if the device is free.
    Read-only: usable by ``doctor`` for a lock file another user created."""
    with _HELD_GUARD:
        if key in _HELD:
            return _read_holder(_HELD[key][0], _HELD[key][2])
    for d in lock_dirs():
        path = d / f"{key}.lock"
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode) and _busy(fd):
                return _read_holder(fd, path)
        except OSError:
            pass
        finally:
            os.close(fd)
    return None


def busy_error(name: str, who: Holder) -> DeviceBusy:
    pid = f"PID {who.pid}" if who.pid is not None else "another process"
    cmd = f" ({who.command})" if who.command else ""
    return DeviceBusy(
        f"{name} is in use by {pid}{cmd}",
        "one process per Edge TPU (a second one would crash the first): stop that one "
        "(sudo systemctl stop edgekit, if it is the service), use another Coral, or pass "
        "--device cpu",
    )


def _open_dir(d: Path) -> bool:
    try:
        if d == Path("/tmp/edgekit-locks"):
            d.mkdir(mode=0o1777, exist_ok=True)
            st = os.lstat(d)
            if stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid():
                os.chmod(d, 0o1777)  # shared by every user, like /tmp (umask would narrow it)
        else:
            d.mkdir(mode=0o755, parents=d.parent != Path("/run"), exist_ok=True)
        st = os.lstat(d)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and os.access(d, os.W_OK | os.X_OK)


def acquire(name: str, path: str | None = None) -> DeviceLock:
    """Take the lock of the Edge TPU ``name`` (``usb:0``) at sysfs ``path`` (optional).

    Raises :class:`DeviceBusy` ("usb:0 is in use by PID N (edgekit serve)") if another process
    holds it, EdgekitError if no lock directory is usable.
    """
    with _HELD_GUARD:
        return _acquire(name, path)


def _acquire(name: str, path: str | None = None) -> DeviceLock:
    key = lock_key(name, path)
    with _HELD_GUARD:
        if key in _HELD:  # this process already owns it
            _HELD[key][1] += 1
            return DeviceLock(key, _HELD[key][2], name)
    who = holder(key)
    if who is not None:
        raise busy_error(name, who)
    problems = []
    for d in lock_dirs():
        if not _open_dir(d):
            problems.append(f"{d}: not a writable directory")
            continue
        file = d / f"{key}.lock"
        try:
            fd = os.open(file, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as e:  # e.g. a lock file of another user: try the next directory
            problems.append(f"{file}: {e.strerror}")
            continue
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(errno.EINVAL, "not a regular file")
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):  # lost a race with another process
                who = _read_holder(fd, file)
                os.close(fd)
                raise busy_error(name, who) from None
            os.close(fd)
            problems.append(f"{file}: {e.strerror}")
            continue
        pid, command = owner()
        try:
            os.fchmod(fd, 0o644)  # readable by other users' edgekit, whatever the umask
        except OSError:
            pass
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{pid}\n{command}\n".encode(), 0)
        with _HELD_GUARD:
            _HELD[key] = [fd, 1, file]
        return DeviceLock(key, file, name)
    raise EdgekitError(
        f"cannot create a lock file for {name} ({'; '.join(problems)})",
        "set EDGEKIT_LOCK_DIR to a writable directory",
    )
