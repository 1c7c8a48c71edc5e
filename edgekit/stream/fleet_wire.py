"""What `edgekit rollout` and a serving device say to each other over MQTT, and the bundle
archive they pass: one module both sides import (see docs/DESIGN.md, "Fleet rollout").

Topics under the fleet topic ``T`` (``[fleet] topic``), per device ``D`` (``[fleet] device``):

* ``T/D/status``  retained JSON, the device's state: ``{"device", "state", "sha256", "bundle",
  "time", "rollout", "reason"}``; ``state`` is ``online`` (announced on connect), ``deploying``,
  ``deployed``, ``failed`` or ``offline`` (the MQTT last will, and a clean stop). ``sha256`` is
  always the bundle running now (:func:`edgekit.signing.bundle_digest`), ``previous`` the one
  before it (what a rollback returns to).
* ``T/D/health``  JSON every second, not retained: ``{"sha256", "frames", "age_s"}`` (results
  so far, seconds since the last one): rollout's "results flowing".
* ``T/D/command`` JSON, QoS 1, not retained: ``{"action": "deploy", "rollout", "sha256",
  "archive": base64}`` (the bundle itself) or ``{"action": "deploy", "rollout", "sha256",
  "url", "archive_sha256", "size"}`` (the device fetches it: http(s) only, size-capped); or
  ``{"action": "rollback", "rollout", "sha256"}`` (back to that bundle, kept on disk).

The archive is a gzip'ed tar of the bundle's regular files, deterministic (sorted, mtime 0,
owner 0). :func:`unpack` is written for hostile input: only regular files and folders, relative
paths without ``..``, a member count and a total size cap, written below a fresh folder.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import json
import os
import posixpath
import socket
import tarfile
import zlib
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError

MAX_MEMBERS = 1000
# Commands are JSON with the archive in base64: 4/3 of the archive, plus the header.
B64_OVERHEAD = 4 / 3


def topic_of(topic: str, device: str, leaf: str) -> str:
    return f"{topic.rstrip('/')}/{device}/{leaf}"


def default_device() -> str:
    """This device's name in the fleet: the hostname, as an MQTT topic level."""
    return clean_device(socket.gethostname())


def clean_device(name: str) -> str:
    name = name.strip()
    if not name or any(c in name for c in "/+#\0") or len(name) > 128:
        raise EdgekitError(
            f"[fleet] device = {name!r}: not usable as an MQTT topic level",
            "use letters, digits, '-', '_' or '.'",
        )
    return name


def check_topic(topic: str) -> str:
    t = topic.strip().rstrip("/")
    if not t or "+" in t or "#" in t or "\0" in t:
        raise EdgekitError(
            f"fleet topic {topic!r}: not a plain MQTT topic",
            "use e.g. edgekit/fleet (no + or # wildcards)",
        )
    return t


def make_client(
    client_id: str, username: str = "", password: str = "", tls: bool = False, ca_file: str = ""
):
    """A paho client (callback API 2) with the credentials and TLS of ``[mqtt]``."""
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        raise EdgekitError(
            "fleet rollouts need paho-mqtt, which is not installed",
            "pip install 'paho-mqtt>=2' (or edgekit[device])",
        ) from None
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    if username:
        client.username_pw_set(username, password or None)
    if tls or ca_file:
        use_tls(client, ca_file)
    return client


def use_tls(client, ca_file: str = "") -> None:
    """TLS with the broker's certificate and host name checked, against ``ca_file`` or the
    system's CA certificates."""
    import ssl

    from edgekit.errors import named
    from edgekit.safeio import require_regular

    if ca_file:  # OpenSSL opens it itself: a FIFO there hung serve and rollout at start
        with named("[mqtt] ca_file"):
            require_regular(ca_file, "CA certificate")
    try:
        client.tls_set(ca_certs=ca_file or None, cert_reqs=ssl.CERT_REQUIRED)
    except (OSError, ssl.SSLError, ValueError) as e:
        raise EdgekitError(
            f"MQTT TLS: cannot load the CA certificate {ca_file or ''} ({e})",
            "check [mqtt] ca_file (a PEM file)",
        ) from None


def pack(bundle: str | os.PathLike) -> bytes:
    """The bundle's files as a deterministic tar.gz (``edgekit.sig`` included)."""
    from edgekit.signing import SIG_NAME, bundle_files

    root = Path(bundle)
    names = [e.path for e in bundle_files(root)] + [SIG_NAME]
    buf = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name in sorted(names):
            path = root / name
            if not path.is_file():
                continue
            info = tarfile.TarInfo(name)
            info.size = path.stat().st_size
            info.mode, info.mtime, info.uid, info.gid = 0o644, 0, 0, 0
            with open(path, "rb") as f:
                tar.addfile(info, f)
    return buf.getvalue()


def unpack(data: bytes, dest: Path, max_bytes: int) -> None:
    """Extract the archive ``data`` into the new folder ``dest`` (must not exist). Refuses
    (EdgekitError) absolute paths, ``..``, links, devices, FIFOs, more than MAX_MEMBERS members
    and more than ``max_bytes`` unpacked; ``dest`` is removed on any error."""
    import shutil

    dest.mkdir(parents=True)
    try:
        _unpack(data, dest, max_bytes)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def _unpack(data: bytes, dest: Path, max_bytes: int) -> None:
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for count, m in enumerate(_members(tar), 1):
                if count > MAX_MEMBERS:
                    raise EdgekitError(f"archive has more than {MAX_MEMBERS} files")
                name = _safe_name(m.name)
                if m.isdir():
                    (dest / name).mkdir(parents=True, exist_ok=True)
                    continue
                if not m.isfile():
                    raise EdgekitError(f"archive member {m.name!r} is not a regular file")
                total += m.size
                if total > max_bytes:
                    raise EdgekitError(f"archive unpacks to more than {max_bytes} bytes")
                out = dest / name
                out.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(m)
                # O_EXCL + O_NOFOLLOW: a duplicate name cannot overwrite or follow anything
                fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
                with os.fdopen(fd, "wb") as f:
                    left = m.size
                    while left > 0:
                        block = src.read(min(left, 1 << 20))
                        if not block:
                            raise EdgekitError(f"archive member {m.name!r} is truncated")
                        f.write(block)
                        left -= len(block)
                    f.flush()
                    os.fsync(f.fileno())
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile, zlib.error) as e:
        raise EdgekitError(f"not a readable bundle archive ({e})") from None


def _members(tar: tarfile.TarFile):
    """Members one by one (``getmembers`` would read a hostile archive's whole index first)."""
    while True:
        m = tar.next()
        if m is None:
            return
        yield m


def _safe_name(name: str) -> str:
    norm = posixpath.normpath(name)
    if (
        not name
        or name.startswith("/")
        or "\\" in name
        or "\0" in name
        or norm == ".."
        or norm.startswith("../")
        or norm == "."
    ):
        raise EdgekitError(f"archive member {name!r}: unsafe path")
    return norm


def encode(message: dict) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def decode(payload: bytes, limit: int) -> dict[str, Any]:
    """A JSON object from ``payload`` (at most ``limit`` bytes), else EdgekitError."""
    if len(payload) > limit:
        raise EdgekitError(
            f"the message ({len(payload)} bytes) is over the {limit}-byte limit "
            "([fleet] max_bundle_mb)"
        )
    try:
        msg = json.loads(payload)
    except (ValueError, RecursionError):
        raise EdgekitError("message is not JSON") from None
    if not isinstance(msg, dict):
        raise EdgekitError("message is not a JSON object")
    return msg


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: Any, limit: int) -> bytes:
    if not isinstance(text, str):
        raise EdgekitError("the archive is not a base64 string")
    if len(text) > limit * B64_OVERHEAD + 4:
        raise EdgekitError(
            f"the archive (~{len(text) * 3 // 4} bytes) is over the "
            f"{limit}-byte limit ([fleet] max_bundle_mb)"
        )
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise EdgekitError("archive is not valid base64") from None
