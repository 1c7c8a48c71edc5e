"""How a hot reload happens (:mod:`edgekit.stream.reload`, steps 1-4): resolve and verify the
bundle, load the new model as serve does, check it on the last frame, switch between two frames
and retire the old model off the pipeline's thread; on the Edge TPU the old worker is stopped
first (one process per device) and brought back when the new bundle fails.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time

from edgekit.errors import EdgekitError
from edgekit.stream.reload_checks import Outcome, check_model, close_quietly, digest_or_empty


class ModelSwap:
    """The loading and switching half of :class:`~edgekit.stream.reload.HotReload`, which
    owns the state it uses: ``config``, ``resilient``, ``load``, ``emit``, ``capture``,
    ``prepare_for``, ``public_key``, ``lock`` (held by the pipeline per frame), the running
    ``path`` / ``sha256`` / ``classifier`` / ``classifier_path``, ``reloads``, the last frame
    (``_last``), ``_fatal`` and the retiring threads (``_retired``)."""

    def _reload(self, target: str, why: str, expect: str) -> Outcome:
        real = os.path.realpath(target)  # pin the version: a later swap is a later reload
        if not os.path.exists(real):
            raise EdgekitError("no such bundle or model file")
        if self.public_key is not None:
            if not os.path.isdir(real):
                raise EdgekitError("[fleet] public_key is set: only signed bundles are accepted")
            from edgekit import signing

            digest = signing.verify(real, self.public_key).digest
        else:
            digest = digest_or_empty(real)
        if expect and digest != expect:
            raise EdgekitError(f"sha256 {digest[:12]} is not the expected {expect[:12]}")
        clf = self._classifier_version()
        current = self.resilient.classifier
        on_tpu = str(getattr(getattr(current, "runner", None), "backend", "")) == "edgetpu"
        cfg = self._config_for(real, clf)
        if on_tpu:
            return self._reload_exclusive(cfg, real, digest, why, clf)
        t0 = time.monotonic()
        model = self.load(cfg)
        try:
            check_model(model, current, self._last)
        except BaseException:
            close_quietly(model)
            raise
        load_s = time.monotonic() - t0
        with self.lock:  # between two frames
            old = self._switch(model, real, digest, clf)
        self._retire(old)
        return self._done(real, digest, why, load_s, "")

    def _reload_exclusive(self, cfg, real: str, digest: str, why: str, clf: str) -> Outcome:
        """The Edge TPU case (see module docstring): stop the old worker first."""
        t0 = time.monotonic()
        with self.lock:  # the pipeline waits here: no frame goes to a closed model
            old = self.resilient.classifier
            close_quietly(old)
            try:
                model = self.load(cfg)
                check_model(model, old, self._last)
            except BaseException as e:
                if "model" in locals():
                    close_quietly(model)
                try:
                    restored = self.load(self._config_for(self.path, self.classifier))
                except Exception as again:  # the device is gone too: serve must restart
                    self._fatal = f"reload failed ({e}) and the previous model too ({again})"
                    raise EdgekitError(self._fatal) from None
                self.resilient.replace(restored)
                self._set_prepare(restored)
                raise EdgekitError(f"{e}; the previous model was loaded again") from None
            self._switch(model, real, digest, clf)
        gap = f" (Edge TPU: results paused {time.monotonic() - t0:.1f} s for the load)"
        return self._done(real, digest, why, time.monotonic() - t0, gap)

    def _classifier_version(self) -> str:
        """The ``[cascade]`` classifier to load with the detector, pinned (a symlink followed
        once) and, with ``[fleet] public_key``, verified like the bundle; '' without one."""
        if not self.classifier_path:
            return ""
        real = os.path.realpath(self.classifier_path)
        if not os.path.exists(real):
            raise EdgekitError(f"[cascade] classifier {self.classifier_path}: no such bundle")
        if self.public_key is not None:
            from edgekit import signing

            signing.verify(real, self.public_key)  # raises: "<path>: not signed" etc.
        return real

    def _config_for(self, path: str, classifier: str):
        """serve's config with ``[model] path`` (and the ``[cascade]`` classifier) replaced."""
        cfg = dataclasses.replace(
            self.config, model=dataclasses.replace(self.config.model, path=path)
        )
        if classifier:
            cfg = dataclasses.replace(
                cfg, cascade=dataclasses.replace(cfg.cascade, classifier=classifier)
            )
        return cfg

    def _done(self, real: str, digest: str, why: str, load_s: float, note: str) -> Outcome:
        self.reloads += 1
        because = f" ({why})" if why else ""
        details = {"bundle": real, "sha256": digest, "load_s": round(load_s, 3)}
        clf = ""
        if self.classifier:  # [cascade]: the classifier loaded with it
            details["classifier"] = self.classifier
            details["classifier_sha256"] = digest_or_empty(self.classifier)
            clf = f", classifier {self.classifier}"
        msg = f"model reloaded from {real}{clf}{because}, sha256 {digest[:12]}{note}"
        self.emit("model_reloaded", msg, details)
        return Outcome(True, msg, real, digest)

    def _switch(self, model, real: str, digest: str, clf: str = ""):
        """Under :attr:`lock`: the next frame goes to ``model``. Returns the old model."""
        old = self.resilient.classifier
        if hasattr(model, "on_event"):  # a worker process reports crashes and restarts
            model.on_event = self.emit
        self.resilient.replace(model)
        self._set_prepare(model)
        self.path, self.sha256 = real, digest
        self.classifier = clf or self.classifier
        return old

    def _set_prepare(self, model) -> None:
        if self.capture is not None:
            self.capture.prepare = self.prepare_for(model)

    def _retire(self, old) -> None:
        """Close the old model off the pipeline's thread (a worker takes up to 2 s to stop)."""
        t = threading.Thread(target=close_quietly, args=(old,), name="edgekit-retire", daemon=True)
        t.start()
        self._retired = [x for x in self._retired if x.is_alive()] + [t]
