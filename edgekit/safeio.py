"""Reading files a user named: regular files only, with a size bound, one clear error.

Every reader of a user-supplied path (models, images, labels, manifests, configs) goes through
here, so that a FIFO, a character device (``/dev/zero``), a socket or a directory is refused with
one line instead of hanging the process (``open()`` on a FIFO with no writer blocks forever) or
filling memory (``/dev/zero`` never ends).

``open()`` is called with ``O_NONBLOCK`` so that even opening a FIFO returns at once; the kind
of file is then checked on the open descriptor with ``fstat`` (no race between check and read).
For regular files ``O_NONBLOCK`` has no effect.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import BinaryIO

from edgekit.errors import EdgekitError

MiB = 1024 * 1024
TEXT_LIMIT = 16 * MiB  # labels, manifests, configs: far larger than any real one


def kind_of(mode: int) -> str:
    """A reader's name for the file type in ``st_mode``."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _not_regular(path: Path, what: str, mode: int) -> EdgekitError:
    article = "an" if what[:1] in "aeiou" else "a"
    return EdgekitError(
        f"{path}: is {kind_of(mode)}, not {article} {what} file", f"pass a regular {what} file"
    )


def _nul(path: Path, what: str) -> EdgekitError:
    return EdgekitError(f"{path}: a NUL character in the {what} file's name",
                        "no file name holds one: check the path (a \\u0000 in the config?)")


def require_regular(path: str | os.PathLike, what: str = "input") -> Path:
    """Raise EdgekitError unless ``path`` exists and is a regular file (symlinks followed).
    For paths handed to native code (interpreters, HDF5) that opens them itself."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise EdgekitError(f"{path}: no such {what} file", "check the path") from None
    except OSError as e:
        raise EdgekitError(f"{path}: cannot read {what} file ({e.strerror or e})") from None
    except ValueError:  # "embedded null byte": a config string can hold \u0000, argv cannot
        raise _nul(path, what) from None
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(path, what, st.st_mode)
    return path


def open_regular(path: str | os.PathLike, what: str = "input") -> BinaryIO:
    """Open ``path`` for binary reading; refuse anything but a regular file without blocking."""
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if "\x00" in str(path):  # os.open raised ValueError ("embedded null byte"): a traceback
        raise _nul(path, what)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise EdgekitError(f"{path}: no such {what} file", "check the path") from None
    except IsADirectoryError:
        raise _not_regular(path, what, stat.S_IFDIR) from None
    except OSError as e:
        with contextlib.suppress(OSError):  # a socket cannot be opened (ENXIO): say what it is
            mode = os.stat(path).st_mode
            if not stat.S_ISREG(mode):
                raise _not_regular(path, what, mode) from None
        raise EdgekitError(f"{path}: cannot read {what} file ({e.strerror or e})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(path, what, mode)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | os.PathLike, what: str = "input", limit: int | None = None) -> bytes:
    """Whole content of the regular file ``path``; EdgekitError if larger than ``limit`` bytes."""
    with open_regular(path, what) as f:
        size = os.fstat(f.fileno()).st_size
        if limit is not None and size > limit:
            raise EdgekitError(
                f"{path}: {size} bytes is too large for a {what} file (limit {limit})",
                f"is it really a {what} file?",
            )
        try:
            data = f.read(limit + 1 if limit is not None else -1)
        except OSError as e:
            raise EdgekitError(f"{path}: cannot read {what} file ({e.strerror or e})") from None
    if limit is not None and len(data) > limit:  # grew while we read it
        raise EdgekitError(f"{path}: too large for a {what} file (limit {limit} bytes)")
    return data


def read_text(path: str | os.PathLike, what: str = "text", limit: int = TEXT_LIMIT) -> str:
    """UTF-8 text of a regular file, a leading byte-order mark removed (Windows editors write
    one; it would otherwise become part of the first label or key)."""
    data = read_bytes(path, what, limit)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        why = not_utf8(data, e)
        raise EdgekitError(f"{path}: {why}", f"save the {what} file as UTF-8") from None
    if "\x00" in text:  # valid UTF-8, but no text file holds NULs: UTF-16 without its BOM
        raise EdgekitError(f"{path}: holds NUL bytes, not text (UTF-16 without a byte-order "
                           "mark?)", f"save the {what} file as UTF-8")  # fmt: skip
    return text


def not_utf8(data: bytes, e: UnicodeDecodeError) -> str:
    """Why ``data`` is not UTF-8, in words a user can act on: Windows Notepad's "Unicode" is
    UTF-16 with a byte-order mark (every label then failed at "byte 0"); otherwise the offending
    byte's offset and value (0xe9: é in Latin-1 or Windows-1252)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "not UTF-8 text but UTF-16 (its byte-order mark says so)"
    return f"not UTF-8 text (byte {e.start} is 0x{data[e.start]:02x})"
