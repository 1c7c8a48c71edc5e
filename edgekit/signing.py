"""Signed bundles: Ed25519 over a canonical list of every file of a bundle directory.

A bundle's **digest** is the sha256 of its canonical manifest, one line per regular file (every
file below the directory except ``edgekit.sig`` itself, sorted by relative POSIX path)::

    edgekit-bundle-v1
    <sha256 hex> <size in bytes> <relative/path>

Two bundles with the same digest have the same bytes in the same places, so the digest names a
bundle version (hot reload's ``model_reloaded`` event, a device's fleet status, rollout's table).
A bundle holding a symlink, a FIFO or a device node is refused: what would be signed is not
what a device would load.

``edgekit sign`` writes ``BUNDLE/edgekit.sig`` (JSON): ``format``, ``digest``, ``files`` (the
``[path, sha256, size]`` list), ``public_key`` (OpenSSH one-line form, informative) and
``signature`` (base64 Ed25519 signature of the canonical manifest bytes). :func:`verify` recomputes
the list from the files on disk, names what changed since signing (a file changed, added or
removed) and checks the signature with the *trusted* key only (the key in the file is never
trusted; it only makes "signed by another key" a clear message).

Keys (OpenSSH text files, Ed25519 from the ``cryptography`` package, imported only when a key is
used) are :mod:`edgekit.signing_keys`, re-exported here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError
from edgekit.signing_keys import (  # noqa: F401 - the keys' API, re-exported
    fingerprint,
    keygen,
    load_private_key,
    load_public_key,
    looks_like_raw_key,
    public_line,
)

SIG_NAME = "edgekit.sig"
FORMAT = "edgekit-sig-1"
HEADER = b"edgekit-bundle-v1\n"
MAX_FILES = 10_000
SIG_LIMIT = 4 * 1024 * 1024  # a signature file lists paths and hashes: far below this


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative, POSIX separators
    sha256: str
    size: int  # bytes


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise EdgekitError(f"{path}: not a regular file", "a bundle holds regular files only")
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def bundle_files(bundle: str | os.PathLike) -> list[FileEntry]:
    """Every regular file of ``bundle`` except ``edgekit.sig``, sorted by path. Raises
    EdgekitError for a missing folder, a symlink or a special file inside."""
    root = Path(bundle)
    if not root.is_dir():
        raise EdgekitError(
            f"{root}: not a bundle directory", "pass the folder `edgekit convert` wrote"
        )
    out: list[FileEntry] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        for name in sorted(dirnames + filenames):
            p = here / name
            rel = p.relative_to(root).as_posix()
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                raise EdgekitError(
                    f"{root}: {rel} is a symlink", "a signed bundle holds regular files only"
                )
            if stat.S_ISDIR(st.st_mode):
                continue
            if not stat.S_ISREG(st.st_mode):
                raise EdgekitError(
                    f"{root}: {rel} is not a regular file", "remove it from the bundle"
                )
            if rel == SIG_NAME:
                continue
            if "\n" in rel:
                raise EdgekitError(f"{root}: a file name holds a newline", "rename it")
            out.append(FileEntry(rel, _sha256_file(p), st.st_size))
            if len(out) > MAX_FILES:
                raise EdgekitError(f"{root}: more than {MAX_FILES} files", "is it really a bundle?")
    if not out:
        raise EdgekitError(f"{root}: empty folder", "pass the folder `edgekit convert` wrote")
    return sorted(out, key=lambda e: e.path)


def canonical(entries: list[FileEntry]) -> bytes:
    """The signed bytes (see the module docstring)."""
    lines = "".join(
        f"{e.sha256} {e.size} {e.path}\n" for e in sorted(entries, key=lambda e: e.path)
    )
    return HEADER + lines.encode("utf-8")


def bundle_digest(bundle: str | os.PathLike) -> str:
    """sha256 (hex) of the bundle's canonical manifest."""
    return hashlib.sha256(canonical(bundle_files(bundle))).hexdigest()


def model_digest(path: str | os.PathLike) -> str:
    """The digest of what serve loads: a bundle's :func:`bundle_digest`, a file's sha256."""
    p = Path(path)
    return bundle_digest(p) if p.is_dir() else _sha256_file(p)


# -- sign / verify -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Signed:
    bundle: Path
    digest: str  # sha256 hex of the canonical manifest
    files: int
    fingerprint: str  # of the signing key


def sign(bundle: str | os.PathLike, keyfile: str | os.PathLike) -> Signed:
    """Write ``bundle/edgekit.sig`` (atomically; an old one is replaced). ``bundle`` must be a
    bundle (its ``edgekit.json`` there): any folder was signed, a dataset or a system folder
    included, and got an edgekit.sig written into it."""
    from edgekit.manifest import MANIFEST_NAME

    root = Path(bundle)
    if root.is_dir() and not (root / MANIFEST_NAME).is_file():
        raise EdgekitError(f"{root}: not an edgekit bundle (no {MANIFEST_NAME}); nothing signed",
                           "pass the folder `edgekit convert` wrote")  # fmt: skip
    key = load_private_key(keyfile)
    entries = bundle_files(bundle)
    body = canonical(entries)
    sig = {
        "format": FORMAT,
        "digest": hashlib.sha256(body).hexdigest(),
        "files": [[e.path, e.sha256, e.size] for e in entries],
        "public_key": public_line(key.public_key()),
        "signature": base64.b64encode(key.sign(body)).decode(),
    }
    from edgekit.atomic import write_text

    write_text(Path(bundle) / SIG_NAME, json.dumps(sig, indent=1) + "\n")
    return Signed(Path(bundle), sig["digest"], len(entries), fingerprint(key.public_key()))


def verify(bundle: str | os.PathLike, public_key: Any) -> Signed:
    """Check ``bundle`` against ``public_key`` (a key object or anything
    :func:`load_public_key` reads). Raises EdgekitError saying why it is refused: unsigned,
    changed since signing (naming the file), or signed by another key."""
    if not hasattr(public_key, "verify"):
        public_key = load_public_key(public_key)
    root = Path(bundle)
    sig_path = root / SIG_NAME
    if not sig_path.exists():
        raise EdgekitError(
            f"{root}: not signed (no {SIG_NAME})", "sign it: edgekit sign BUNDLE --key KEYFILE"
        )
    from edgekit.safeio import read_text

    try:
        sig = json.loads(read_text(sig_path, "signature", SIG_LIMIT))
        listed = [FileEntry(str(p), str(h), int(n)) for p, h, n in sig["files"]]
        signature = base64.b64decode(sig["signature"], validate=True)
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError) as e:
        raise EdgekitError(
            f"{sig_path}: unreadable signature file ({e})", "sign the bundle again"
        ) from None
    if sig.get("format") != FORMAT:
        raise EdgekitError(
            f"{sig_path}: unknown format {sig.get('format')!r}", "sign it with this edgekit"
        )
    actual = bundle_files(root)
    if listed != actual:
        raise EdgekitError(
            f"{root}: {_difference(listed, actual)} since it was signed",
            "sign it again or ship the signed original",
        )
    body = canonical(listed)
    from cryptography.exceptions import InvalidSignature

    try:
        public_key.verify(signature, body)
    except InvalidSignature:
        who = ": not signed by the trusted key, or edgekit.sig was altered"
        try:
            signer = load_public_key(str(sig.get("public_key", "")))
            if fingerprint(signer) != fingerprint(public_key):
                who = (
                    f" (signed by {fingerprint(signer)}, trusted key is {fingerprint(public_key)})"
                )
        except EdgekitError:
            pass
        raise EdgekitError(
            f"{root}: bad signature{who}",
            "sign it with the key whose .pub is in [fleet] public_key",
        ) from None
    return Signed(root, hashlib.sha256(body).hexdigest(), len(listed), fingerprint(public_key))


def _difference(listed: list[FileEntry], actual: list[FileEntry]) -> str:
    was = {e.path: e for e in listed}
    now = {e.path: e for e in actual}
    changed = [p for p in sorted(was.keys() & now.keys()) if was[p] != now[p]]
    if changed:
        return f"{changed[0]} changed"
    added = sorted(now.keys() - was.keys())
    if added:
        return f"{added[0]} was added"
    return f"{sorted(was.keys() - now.keys())[0]} was removed"
