"""A device's fleet state folder (:mod:`edgekit.stream.fleet`): ``bundles/<sha256>`` (renamed
into place after verification), ``current`` (a symlink swapped with one rename: what serve
starts from and what SIGHUP reloads) and ``state.json`` (current and previous path + sha256,
written atomically). After each deploy everything but current and previous is deleted."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError
from edgekit.stream import fleet_wire as wire

STATE_NAME = "state.json"


def state_dir(config) -> Path:
    """``[fleet] state_dir``, else ``$STATE_DIRECTORY/fleet`` (systemd's StateDirectory=, i.e.
    /var/lib/edgekit), else ``$XDG_CACHE_HOME/edgekit/fleet`` (``~/.cache``)."""
    if config.fleet.state_dir:
        return Path(config.fleet.state_dir)
    sd = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    if sd:
        return Path(sd) / "fleet"
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "edgekit" / "fleet"


class BundleStore:
    """The bundles a device keeps (see module docstring). ``public_key``: the trusted key every
    stored bundle is verified against; ``max_bytes``: the unpacked size cap; ``path`` and
    ``sha256``: the bundle serve runs now (the state when ``state.json`` does not match it)."""

    def __init__(self, folder: Path, public_key: Any, max_bytes: int, path: str, sha256: str):
        self.dir, self.public_key, self.max_bytes = Path(folder), public_key, max_bytes
        self.bundles = self.dir / "bundles"
        try:
            self.bundles.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise EdgekitError(
                f"fleet state folder {self.dir}: {e.strerror or e}",
                "set [fleet] state_dir to a writable folder",
            ) from None
        self.state = self._load_state(path, sha256)

    def path_of(self, sha256: str) -> str:
        """Where the bundle ``sha256`` is (the previous one, or a stored one; may not exist)."""
        prev = self.state["previous"]
        return prev["path"] if prev["sha256"] == sha256 else str(self.bundles / sha256)

    def store(self, data: bytes, sha: str) -> str:
        """Unpack, verify, and keep as ``bundles/<sha>``; returns its path."""
        from edgekit import signing

        final = self.bundles / sha
        tmp = self.bundles / f".incoming-{uuid.uuid4().hex}"
        wire.unpack(data, tmp, self.max_bytes)
        try:
            digest = signing.verify(tmp, self.public_key).digest
            if digest != sha:
                raise EdgekitError(f"its sha256 is {digest[:12]}, not the announced one")
            if final.exists():
                shutil.rmtree(tmp)
                signing.verify(final, self.public_key)  # a copy kept from before
            else:
                os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return str(final)

    def _load_state(self, path: str, sha256: str) -> dict:
        empty = {"path": "", "sha256": ""}
        try:
            data = json.loads((self.dir / STATE_NAME).read_text())
            cur, prev = data["current"], data["previous"]
            if cur.get("sha256") == sha256:
                return {"current": cur, "previous": prev}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
        return {
            "current": {"path": path, "sha256": sha256},
            "previous": empty,
        }

    def save(self, bundle: str, sha256: str) -> Path:
        """After a successful reload of ``bundle``: ``state.json`` (atomically), the ``current``
        symlink swapped with one rename. Returns the ``current`` link."""
        from edgekit.atomic import write_text

        if sha256 != self.state["current"]["sha256"]:
            self.state = {
                "current": {"path": bundle, "sha256": sha256},
                "previous": self.state["current"],
            }
        write_text(self.dir / STATE_NAME, json.dumps(self.state, indent=1) + "\n")
        link = self.dir / "current"
        tmp = self.dir / f".current-{uuid.uuid4().hex}"
        os.symlink(bundle, tmp)
        os.replace(tmp, link)
        return link

    def collect(self) -> None:
        """Delete stored bundles other than current and previous (and stale incoming folders)."""
        keep = {
            os.path.realpath(self.state[k]["path"])
            for k in ("current", "previous")
            if self.state[k]["path"]
        }
        for p in self.bundles.iterdir():
            if os.path.realpath(p) not in keep:
                shutil.rmtree(p, ignore_errors=True)
