"""The device side of `edgekit rollout`: serve listens under ``[fleet] topic`` on the ``[mqtt]``
broker, stores the bundles it is sent, hot-reloads them and says how it went.

Protocol and archive: :mod:`edgekit.stream.fleet_wire`. A deploy, in the agent's own thread
(the pipeline keeps serving): the archive (inline, or fetched from an http(s) URL with a size
cap and a timeout) is unpacked into ``<state_dir>/bundles/.incoming-*`` with hostile-archive
checks, its signature is verified against ``[fleet] public_key`` (required with a topic: over
the network only signed bundles are accepted), its digest must be the announced ``sha256``,
then it is renamed to ``bundles/<sha256>`` and hot-reloaded (:class:`~.reload.HotReload`:
loaded, checked on the current frame, switched between two frames). On success ``current``
(a symlink in the state folder) points at it, ``state.json`` records it and the bundle before
it (``previous``), and older bundles are deleted: a device keeps exactly the two it may need.
Any failure: the old model keeps running, one ``reload_failed`` event, status ``failed`` with
the reason. A restarted serve starts from ``current``. The state folder:
:mod:`edgekit.stream.fleet_store`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import queue
import re
import threading
import time
from typing import Any, Callable

from edgekit.errors import EdgekitError
from edgekit.stream import fleet_wire as wire
from edgekit.stream.fleet_store import BundleStore, state_dir

log = logging.getLogger("edgekit.stream")
SHA_RE = re.compile(r"[0-9a-f]{64}")
HEALTH_EVERY_S = 1.0


def startup_config(config):
    """With ``[fleet] topic``: a public key is required, and the bundle the fleet deployed last
    (``<state_dir>/current``) is the one serve starts with."""
    f = config.fleet
    wire.check_topic(f.topic)
    if f.device:
        wire.clean_device(f.device)
    if not f.public_key:
        raise EdgekitError(
            "[fleet] topic is set but [fleet] public_key is not",
            "devices accept only signed bundles over the network: "
            "`edgekit keygen KEY`, then public_key = the KEY.pub file",
        )
    current = state_dir(config) / "current"
    if current.exists():
        log.info("fleet: starting with the deployed bundle %s", os.path.realpath(current))
        model = dataclasses.replace(config.model, path=str(current))
        config = dataclasses.replace(config, model=model)
    return config


class FleetAgent:
    """The fleet client of one serve process (see module docstring).

    Args:
        config: the ServeConfig ([fleet], and [mqtt] for the broker and credentials).
        reloader: the running :class:`~edgekit.stream.reload.HotReload`.
        health: ``() -> (frames, seconds since the last result or None)``.
        emit: event reporter (refusals before a reload are ``reload_failed`` events too).
    """

    def __init__(self, config, reloader, health: Callable[[], tuple], emit):
        f, q = config.fleet, config.mqtt
        self.topic = wire.check_topic(f.topic)
        self.device = wire.clean_device(f.device) if f.device else wire.default_device()
        self.reloader, self.health, self.emit = reloader, health, emit
        self.max_bytes = int(f.max_bundle_mb * 1024 * 1024)
        self.fetch_timeout_s = f.fetch_timeout_s
        self.store = BundleStore(state_dir(config), reloader.public_key, self.max_bytes,
                                 reloader.path, reloader.sha256)  # fmt: skip
        self.dir, self.bundles = self.store.dir, self.store.bundles
        self._status: dict[str, Any] = {"state": "online"}
        self._commands: queue.Queue = queue.Queue(maxsize=8)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edgekit-fleet", daemon=True)
        self.client = wire.make_client(
            f"edgekit-fleet-{self.device}-{os.getpid()}",
            q.username,
            q.password,
            q.tls,
            q.ca_file,
        )
        self.client.will_set(
            self._topic("status"), wire.encode(self._status_doc("offline")), qos=1, retain=True
        )
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self._warned = False
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.host, self.port, self.keepalive = q.host, int(q.port), int(q.keepalive_s)

    # -- MQTT -----------------------------------------------------------------------------------
    def _topic(self, leaf: str) -> str:
        return wire.topic_of(self.topic, self.device, leaf)

    def start(self) -> FleetAgent:
        try:
            self.client.connect_async(self.host, self.port, keepalive=self.keepalive)
        except (OSError, ValueError) as e:
            raise EdgekitError(
                f"fleet: MQTT broker {self.host}:{self.port}: {e}", "check [mqtt] host/port"
            ) from None
        self.client.loop_start()
        self._thread.start()
        return self

    def on_result(self, result) -> None:  # a sink only to be closed with the others
        pass

    def on_event(self, event) -> None:
        pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
        try:
            if self.client.is_connected():
                info = self.client.publish(
                    self._topic("status"),
                    wire.encode(self._status_doc("offline")),
                    qos=1,
                    retain=True,
                )
                info.wait_for_publish(1.0)
        except (RuntimeError, ValueError):
            pass
        finally:
            self.client.disconnect()
            self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties=None):
        if reason_code.is_failure:
            log.warning("fleet: broker refused the connection (%s)", reason_code)
            return
        self._warned = False
        client.subscribe(self._topic("command"), qos=1)
        self._publish_status()  # presence: rollout learns the fleet from these retained docs

    def _on_connect_fail(self, client, userdata):
        if not self._warned:  # paho keeps retrying; say it once
            self._warned = True
            log.warning("fleet: cannot connect to the MQTT broker %s:%s (retrying)", self.host,
                        self.port)  # fmt: skip

    def _on_message(self, client, userdata, msg):
        try:
            self._commands.put_nowait(msg.payload)
        except queue.Full:
            self._set_status("failed", reason="busy: too many commands queued")

    def _status_doc(self, state: str, **extra) -> dict:
        return {
            "device": self.device,
            "state": state,
            "sha256": self.reloader.sha256,
            "bundle": self.reloader.path,
            "previous": self.store.state["previous"]["sha256"],
            "time": round(time.time(), 3),
            **extra,
        }

    def _set_status(self, state: str, **extra) -> None:
        self._status = {"state": state, **extra}
        self._publish_status()

    def _publish_status(self) -> None:
        s = dict(self._status)
        doc = self._status_doc(s.pop("state"), **s)
        self.client.publish(self._topic("status"), wire.encode(doc), qos=1, retain=True)

    # -- the agent's thread ---------------------------------------------------------------------
    def _run(self) -> None:
        next_health = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_health:
                next_health = now + HEALTH_EVERY_S
                frames, age = self.health()
                doc = {
                    "sha256": self.reloader.sha256,
                    "frames": frames,
                    "age_s": None if age is None else round(age, 3),
                }
                self.client.publish(self._topic("health"), wire.encode(doc), qos=0)
            try:
                payload = self._commands.get(timeout=max(0.05, next_health - time.monotonic()))
            except queue.Empty:
                continue
            try:
                self._handle(payload)
            except Exception as e:  # one bad command must never stop the agent
                log.warning("fleet: command failed: %s: %s", type(e).__name__, e)

    def _handle(self, payload: bytes) -> None:
        limit = int(self.max_bytes * wire.B64_OVERHEAD) + 64 * 1024
        try:
            msg = wire.decode(payload, limit)
        except EdgekitError as e:  # the id is near the start: say which rollout failed
            m = re.search(rb'"rollout":\s*"([0-9a-zA-Z_-]{1,64})"', payload[:256])
            self._refuse(m.group(1).decode() if m else "", f"fleet command refused: {e.message}")
            return
        rollout = str(msg.get("rollout", ""))[:64]
        sha = str(msg.get("sha256", ""))
        if not SHA_RE.fullmatch(sha):
            self._refuse(rollout, "fleet command refused: sha256 is not 64 hex digits")
            return
        action = msg.get("action")
        if action == "deploy":
            self._deploy(msg, rollout, sha)
        elif action == "rollback":
            self._rollback(rollout, sha)
        else:
            self._refuse(rollout, f"fleet command refused: unknown action {action!r}")

    def _refuse(self, rollout: str, message: str) -> None:
        self.emit("reload_failed", f"{message}; the running model is kept", {"rollout": rollout})
        self._set_status("failed", rollout=rollout, reason=message)

    def _deploy(self, msg: dict, rollout: str, sha: str) -> None:
        if sha == self.reloader.sha256:
            self._set_status("deployed", rollout=rollout, note="already running this bundle")
            return
        self._set_status("deploying", rollout=rollout, target=sha)
        try:
            path = self.store.store(self._archive(msg), sha)
        except EdgekitError as e:
            self._refuse(rollout, f"bundle {sha[:12]} refused: {e.message}")
            return
        except OSError as e:  # the state folder: disk full, read-only, removed
            self._refuse(rollout, f"bundle {sha[:12]} not stored in {self.bundles}: "
                         f"{e.strerror or e}")  # fmt: skip
            return
        self._reload(path, rollout, sha, f"rollout {rollout}")

    def _rollback(self, rollout: str, sha: str) -> None:
        if sha == self.reloader.sha256:
            self._set_status("deployed", rollout=rollout, action="rollback")
            return
        path = self.store.path_of(sha)
        if not os.path.isdir(path):
            self._refuse(rollout, f"rollback: bundle {sha[:12]} is not on this device")
            return
        self._reload(path, rollout, sha, f"rollback of rollout {rollout}", action="rollback")

    def _reload(self, path: str, rollout: str, sha: str, why: str, **extra) -> None:
        outcome = self.reloader.reload(path, why, expect_sha256=sha, after=self._record)
        if outcome.ok:
            self._set_status("deployed", rollout=rollout, **extra)
        else:
            self._set_status("failed", rollout=rollout, reason=outcome.message, **extra)
            self.store.collect()

    # -- bundles on disk ------------------------------------------------------------------------
    def _archive(self, msg: dict) -> bytes:
        if "archive" in msg:
            data = wire.unb64(msg["archive"], self.max_bytes)
        elif "url" in msg:
            data = self._fetch(str(msg["url"]), str(msg.get("archive_sha256", "")))
        else:
            raise EdgekitError("the command has neither an archive nor a url")
        if len(data) > self.max_bytes:
            raise EdgekitError(f"{len(data)} bytes is over [fleet] max_bundle_mb")
        return data

    def _fetch(self, url: str, want: str) -> bytes:
        from edgekit.stream.fleet_fetch import fetch

        data = fetch(url, self.max_bytes, self.fetch_timeout_s)
        if hashlib.sha256(data).hexdigest() != want:
            raise EdgekitError(f"{url}: the download's sha256 is not the announced one")
        return data

    def _record(self, outcome) -> None:
        """After a successful reload (under the reloader's lock): state, ``current``, cleanup.
        The new model runs whatever happens here; a state that cannot be saved is an event."""
        if not outcome.ok:
            return
        try:
            link = self.store.save(outcome.bundle, outcome.sha256)
            self.reloader.retarget(str(link))
            self.store.collect()
        except (EdgekitError, OSError) as e:
            msg = e.message if isinstance(e, EdgekitError) else (e.strerror or str(e))
            self.emit("fleet_state_not_saved", f"fleet state in {self.dir} not saved ({msg}): "
                      "after a restart serve may start with an older bundle", {})  # fmt: skip
