"""``edgekit serve --check``: everything serve needs, checked without serving.

The config (parsed and validated by the caller), the model and its labels (loaded the way serve
loads them, so an Edge TPU model is opened through the same child-process path), and the source
(a file or folder exists and is readable, a camera device node exists, picamera2 imports). URLs
and the MQTT broker are not contacted: they may legitimately be down at install time, and serve
reconnects to them. ``install-service.sh`` runs this before it enables the service, so a service
that cannot start is never installed as one that restarts in a loop.
"""

from __future__ import annotations

import errno
import os
import re
import socket

from edgekit.errors import EdgekitError, named
from edgekit.stream.config import ServeConfig

_DEVICE = re.compile(r"^(?:/dev/video)?(\d+)$")


def check(config: ServeConfig) -> str:
    """Raise EdgekitError for the first problem; return a one-line summary when all is well."""
    from edgekit.stream.reload import startup_config

    config = startup_config(config)  # [fleet]: the key, the topic, the bundle's signature
    source = check_source(config)
    model = check_model(config)
    http = check_http(config.http.listen) if config.http.enabled else "off"
    q = config.mqtt
    mqtt = f"{q.host}:{q.port} (not contacted)" if q.enabled else "off"
    if q.enabled and (q.tls or q.ca_file):
        check_ca_file(q.ca_file)
    return f"model {model}; source {source}; http {http}; mqtt {mqtt}"


def check_model(config: ServeConfig) -> str:
    from edgekit.stream.serve import load_model

    model = load_model(config)
    try:
        runner = getattr(model, "runner", None)
        backend = getattr(runner, "backend", None) or getattr(model, "backend", None) or "?"
        task = getattr(model, "task", "classify")
        return f"{config.model.path} ({task}, {backend})" + _cascade(config)
    finally:
        close = getattr(model, "close", None)
        if close is not None:
            close()


def _cascade(config: ServeConfig) -> str:
    """' + classifier PATH' ([cascade]'s, or the one a cascade bundle carries), or ''."""
    from edgekit.detect.cascade_bundle import choose

    c = config.cascade
    pick = choose(config.model.path, c.classifier or None)
    if pick is None:
        return ""
    return f" + classifier {pick.classifier}" + (" (carried by the bundle)" if pick.carried else "")


def check_source(config: ServeConfig) -> str:
    from edgekit.stream.sources import open_source

    s = config.source
    uri = str(s.uri).strip()
    m = _DEVICE.match(uri)
    if m:
        node = f"/dev/video{m.group(1)}"
        if not os.path.exists(node):
            raise EdgekitError(
                f"camera {node} not found",
                "plug the camera in or set [source] uri (`ls /dev/video*` lists cameras)",
            )
        return node
    if uri.lower().startswith("picamera2"):
        try:
            import picamera2  # noqa: F401
        except ImportError as e:
            raise EdgekitError(
                f"[source] uri = {uri!r} needs picamera2, which does not import here ({e})",
                "sudo apt install python3-picamera2 and a venv with --system-site-packages",
            ) from None
        return uri
    if "://" in uri:
        open_source(uri, loop=s.loop, width=s.width, height=s.height, fps=s.fps)
        return f"{uri} (not contacted)"
    if os.path.exists(uri) and not (os.path.isfile(uri) or os.path.isdir(uri)):
        raise EdgekitError(f"[source] uri {uri}: not a regular file or folder", "check the path")
    source = open_source(uri, loop=s.loop, width=s.width, height=s.height, fps=s.fps)
    if getattr(source, "kind", None) == "file":
        # decode its first frame as serve does at startup: a truncated or non-video file
        # passed --check and then failed as a service (install-service.sh trusts --check)
        try:
            source.open()
        finally:
            source.close()
    return uri


def check_http(listen: str) -> str:
    """``[http] listen`` bound and released, as serve's server binds it (IPv6 by the host's
    form): an address that is not this machine's, a name that does not resolve or a port the
    service user may not open is refused, where serve would fail at every start (and systemd
    restart it in a loop). A port in use passes, said: it is usually this very service."""
    from edgekit.stream.http_server import parse_listen

    host, port = parse_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as socketserver does
            s.bind((host, port))
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            return f"{listen} (in use now: by this service?)"
        why = e.strerror or str(e)
        hint = ("use an address of this machine, e.g. 127.0.0.1:8080 or 0.0.0.0:8080"
                if e.errno != errno.EACCES else "use a port above 1023, e.g. 8080")  # fmt: skip
        raise EdgekitError(f"HTTP address {listen}: cannot listen there ({why})", hint) from None
    return listen


def check_ca_file(ca_file: str) -> None:
    """``[mqtt] ca_file`` (or the system's CA certificates) loaded as serve will load it: a file
    that is no PEM certificate passed --check and stopped serve at start."""
    import ssl

    from edgekit.safeio import require_regular

    if ca_file:  # OpenSSL opens it itself: a FIFO there hung --check and serve
        with named("[mqtt] ca_file"):
            require_regular(ca_file, "CA certificate")
    try:
        ssl.create_default_context(cafile=ca_file or None)
    except (OSError, ssl.SSLError, ValueError) as e:
        raise EdgekitError(
            f"MQTT TLS: cannot load the CA certificate {ca_file or ''} ({e})",
            "check [mqtt] ca_file (a PEM file)",
        ) from None
