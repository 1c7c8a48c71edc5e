"""Ed25519 keys for signed bundles (:mod:`edgekit.signing`): text files, the private key in
OpenSSH's format (``-----BEGIN OPENSSH PRIVATE KEY-----``, unencrypted, mode 0600 from its
first byte; ``ssh-keygen -t ed25519`` keys work too, PEM/PKCS8 is also read), the public key
as one OpenSSH line (``ssh-ed25519 AAAA... comment``), a PEM block or the raw 32 bytes in
base64. Fingerprints are OpenSSH's. The crypto is the ``cryptography`` package's Ed25519,
imported only when a key is used."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError

KEY_LIMIT = 64 * 1024  # a key file is a few hundred bytes


def _crypto():
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise EdgekitError(
            "signed bundles need the Python package 'cryptography', which is not installed",
            "pip install 'edgekit[device]' (or 'cryptography>=42')",
        ) from None
    return serialization, ed25519


def fingerprint(public_key: Any) -> str:
    """``SHA256:<base64>`` of the key's OpenSSH wire blob: what ``ssh-keygen -l`` prints."""
    serialization, _ = _crypto()
    line = public_key.public_bytes(serialization.Encoding.OpenSSH,
                                   serialization.PublicFormat.OpenSSH)  # fmt: skip
    blob = base64.b64decode(line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def public_line(public_key: Any, comment: str = "edgekit") -> str:
    serialization, _ = _crypto()
    text = public_key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return f"{text.decode()} {comment}".strip()


def keygen(keyfile: str | os.PathLike, force: bool = False) -> tuple[Path, Path, str]:
    """Write a new Ed25519 key pair: ``keyfile`` (private, mode 0600) and ``keyfile.pub``.
    Returns (private path, public path, fingerprint). An existing key is never replaced unless
    ``force`` (a lost private key cannot sign updates for devices that trust it)."""
    serialization, ed25519 = _crypto()
    priv, pub = Path(keyfile), Path(f"{keyfile}.pub")
    for p in (priv, pub):
        if (p.exists() or p.is_symlink()) and not force:
            raise EdgekitError(
                f"{p}: already exists", "choose another name (or --force to replace that key)"
            )
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    _write_private(priv, pem)
    from edgekit.atomic import write_text

    write_text(pub, public_line(key.public_key()) + "\n")
    return priv, pub, fingerprint(key.public_key())


def _write_private(path: Path, data: bytes) -> None:
    """Atomic, and 0600 from the first byte (never briefly readable by others)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:
        raise EdgekitError(
            f"{path}: cannot write the key ({e.strerror or e})", "choose another path"
        ) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_private_key(keyfile: str | os.PathLike):
    """An Ed25519 private key from an OpenSSH or PEM file (unencrypted)."""
    serialization, ed25519 = _crypto()
    from edgekit.safeio import read_bytes

    data = read_bytes(keyfile, "key", KEY_LIMIT)
    if data.lstrip().startswith((b"ssh-ed25519 ", b"-----BEGIN PUBLIC KEY")):
        raise EdgekitError(f"{keyfile}: a public key, which cannot sign",
                           "pass the private key `edgekit keygen` wrote beside it "
                           "(KEYFILE, not KEYFILE.pub)")  # fmt: skip
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            key = serialization.load_ssh_private_key(data, password=None)
        else:
            key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise EdgekitError(
            f"{keyfile}: the key is encrypted", "use an unencrypted key (edgekit keygen)"
        ) from None
    except ValueError as e:
        # cryptography's text ends in an FAQ URL and a parser state: keep its first sentence
        why = str(e).split(". See ")[0].strip() or type(e).__name__
        raise EdgekitError(
            f"{keyfile}: not a private key ({why})", "create one with `edgekit keygen KEYFILE`"
        ) from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise EdgekitError(
            f"{keyfile}: not an Ed25519 key", "create one with `edgekit keygen KEYFILE`"
        )
    return key


def load_public_key(text_or_path: str | os.PathLike):
    """An Ed25519 public key from its text (``ssh-ed25519 AAAA...``, a PEM block, or the raw
    32 bytes in base64) or from a file holding that text."""
    serialization, ed25519 = _crypto()
    text = str(text_or_path).strip()
    where = "public key"
    if not text.startswith(("ssh-ed25519 ", "-----BEGIN")) and not looks_like_raw_key(text):
        from edgekit.safeio import read_text

        where = text
        try:
            text = read_text(text, "public key", KEY_LIMIT).strip()
        except EdgekitError as e:
            raise EdgekitError(
                f"{e.message}", "give the .pub file written by `edgekit keygen` or its text"
            ) from None
    if "PRIVATE KEY-----" in text:
        raise EdgekitError(f"{where}: a private key, not the public one (keep it secret)",
                           "give the .pub file `edgekit keygen` wrote beside it")  # fmt: skip
    try:
        if text.startswith("ssh-"):
            key = serialization.load_ssh_public_key(" ".join(text.split()[:2]).encode())
        elif text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (ValueError, TypeError, UnicodeError) as e:
        raise EdgekitError(
            f"{where}: not a public key ({e})", "give the .pub file written by `edgekit keygen`"
        ) from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise EdgekitError(
            f"{where}: not an Ed25519 public key", "give the .pub file written by `edgekit keygen`"
        )
    return key


def looks_like_raw_key(text: str) -> bool:
    """Whether ``text`` is 32 bytes in base64 (a raw Ed25519 public key), not a path."""
    try:
        return len(base64.b64decode(text, validate=True)) == 32
    except (ValueError, TypeError):
        return False
