"""Hot reload: a new bundle replaces serve's model without a restart and without a blind gap.

Triggers: SIGHUP (``systemctl reload edgekit``: the unit's ``ExecReload``), a change of the
configured model path (polled every ``[model] watch_s`` seconds: an atomic replacement, i.e. a
symlink swapped with ``ln -sfn new tmp && mv -T tmp model``, or a bundle renamed into place;
the stat signature of the path and of its ``edgekit.json`` is compared, which costs two
``stat`` calls) and the fleet agent (:mod:`edgekit.stream.fleet`), which asks for a given path.

A reload, in this thread, while the old model keeps serving:

1. resolve the path (a symlink is followed once: the version loaded is pinned), check the
   signature when ``[fleet] public_key`` is set (:func:`edgekit.signing.verify`) and compute
   the bundle's digest (``sha256``);
2. load the new model as serve runs models (a new worker process, or in-process);
3. check it: same task as the running model, one inference on the current frame (the last
   frame the pipeline saw; a black frame before the first), every number of the result finite;
4. switch between two frames: the pipeline holds :attr:`HotReload.lock` while it infers, so
   the switch waits for the frame in flight and the next frame goes to the new model; then the
   old model is closed (its worker stops) in the background.

The gap in results is therefore the check's share of the CPU plus the switch itself; in
practice frames keep flowing (measured in tests/stream/test_fleet.py).

A bundle that fails any step is closed, the old model keeps running, and one
``reload_failed`` event says why; success is one ``model_reloaded`` event with ``bundle``
(the path loaded) and ``sha256``.

Edge TPU: one process owns a device (:mod:`edgekit.backends.devicelock`), so while the running
model is on the Edge TPU a second worker cannot open it. Then the old worker is stopped first
(between two frames), the new one loaded and checked, and on failure the old bundle is loaded
again: the gap is one model load (about a second with a warm page cache), said in the event.

Steps 1-4 are :mod:`~.reload_swap`; the checks :mod:`~.reload_checks`; this module holds the
triggers, the watcher and the reload thread.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.stream.pipeline import FatalError
from edgekit.stream.reload_checks import (  # noqa: F401 - startup_config: serve's entry point
    Outcome,
    digest_or_empty,
    path_signature,
    startup_config,
)
from edgekit.stream.reload_swap import ModelSwap
from edgekit.stream.worker import Stopped

EventFn = Callable[[str, str, dict], None]


class HotReload(ModelSwap):
    """The pipeline's ``infer`` (wraps the :class:`~edgekit.stream.resilient.ResilientClassifier`)
    and the reloader (see module docstring).

    Args:
        config: the ServeConfig (model options, worker mode, [model] watch_s, [fleet] public_key).
        resilient: the running ResilientClassifier; its model is replaced on success.
        emit: event reporter (the pipeline's).
        load: ``config -> model`` building a model as serve does (serve.load_model).
        prepare_for: ``model -> capture prepare hook`` (serve._resizer), swapped with the model.
        capture: the CaptureThread whose ``prepare`` follows the model (None in tests).
        path: the bundle running now (default: ``config.model.path``).
        public_key: the trusted key (text or path); None accepts unsigned bundles.
        trigger: an event set from a signal handler (SIGHUP): reload the configured path.
    """

    def __init__(
        self,
        config,
        resilient,
        emit: EventFn,
        load: Callable[[Any], Any],
        prepare_for: Callable[[Any], Any] = lambda model: None,
        capture=None,
        path: str | None = None,
        public_key: str | None = None,
        trigger: threading.Event | None = None,
    ):
        self.config, self.resilient, self.emit = config, resilient, emit
        self.load, self.prepare_for, self.capture = load, prepare_for, capture
        self.public_key = public_key or None
        self.lock = threading.Lock()  # held by the pipeline during each inference
        self._reloading = threading.Lock()  # one reload at a time
        self._last: np.ndarray | None = None
        self._requests: list[tuple[str | None, str]] = []
        self._wake = trigger if trigger is not None else threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._retired: list[threading.Thread] = []
        self.watch_path = str(config.model.path)
        self.path = str(path or config.model.path)
        self.sha256 = digest_or_empty(self.path)
        # [cascade] classifier: built with the detector (one worker), so reloaded with it; its
        # path is watched too (a replaced classifier bundle is a reload of both)
        self.classifier_path = str(getattr(getattr(config, "cascade", None), "classifier", ""))
        self.classifier = self.classifier_path
        self.reloads = 0
        self._fatal = ""  # set when an Edge TPU reload could not bring any model back
        self._seen = self._signature()

    # -- the pipeline side ----------------------------------------------------------------------
    def __call__(self, rgb: np.ndarray):
        if self._fatal:
            raise FatalError(self._fatal)
        with self.lock:
            self._last = rgb
            return self.resilient(rgb)

    def info(self) -> dict:
        """What runs now (the status page's and /status' ``model``): the bundle, its digest,
        reloads, and a cascade's classifier (``[cascade]``'s, or the one a cascade bundle
        carries, whose files the bundle's digest covers)."""
        out = {"bundle": self.path, "sha256": self.sha256, "reloads": self.reloads}
        key = (self.path, self.classifier)
        if getattr(self, "_cascade_key", None) != key:  # once per version, not per request
            self._cascade_key, self._cascade = key, {}
            if self.classifier:
                self._cascade = {"classifier": self.classifier,
                                 "classifier_sha256": digest_or_empty(self.classifier)}  # fmt: skip
            else:
                from edgekit.detect.cascade_bundle import carried

                found = carried(self.path)
                if found is not None:
                    self._cascade = {"classifier": str(found[0]), "classifier_carried": True}
        out.update(self._cascade)
        return out

    # -- triggers -------------------------------------------------------------------------------
    def request(self, path: str | None = None, why: str = "SIGHUP") -> None:
        """Ask for a reload of ``path`` (default: the configured path) from any thread or a
        signal handler; returns at once (the reload thread does the work)."""
        self._requests.append((path, why))
        self._wake.set()

    def start(self) -> HotReload:
        self._thread = threading.Thread(target=self._run, name="edgekit-reload", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for t in self._retired:
            t.join(timeout)

    def _run(self) -> None:
        every = float(getattr(self.config.model, "watch_s", 0.0) or 0.0)
        while not self._stop.is_set():
            woke = self._wake.wait(every if every > 0 else None)
            self._wake.clear()
            if self._stop.is_set():
                return
            if woke and not self._requests:  # the trigger alone: SIGHUP
                self.reload(None, "SIGHUP")
            while self._requests:
                path, why = self._requests.pop(0)
                self.reload(path, why)
            if every > 0:
                self._poll()

    def _poll(self) -> None:
        with self._reloading:
            sig = self._signature()
            if sig is None or sig == self._seen:
                return
            time.sleep(min(0.5, self.config.model.watch_s))  # let a two-step swap finish
            if self._signature() != sig:
                return  # still changing: look again at the next poll
            first = self._seen[0] if self._seen else None
            changed = self.watch_path if sig[0] != first else self.classifier_path
            self._seen = sig
            self._reload_locked(None, f"{changed} was replaced", "")

    def _signature(self) -> tuple | None:
        """The watched paths' signatures (:func:`path_signature`): the bundle, and the
        ``[cascade]`` classifier; None while one is missing (mid-swap)."""
        sigs = [path_signature(p) for p in (self.watch_path, self.classifier_path) if p]
        return None if None in sigs else tuple(sigs)

    # -- the reload itself ----------------------------------------------------------------------
    def reload(
        self,
        path: str | None = None,
        why: str = "",
        expect_sha256: str = "",
        after: Callable[[Outcome], None] | None = None,
    ) -> Outcome:
        """Load, check and switch to ``path`` (default: the configured one); blocking. Emits
        ``model_reloaded`` or ``reload_failed`` and returns what happened. ``after(outcome)``
        runs before the next reload can start (the fleet agent records its state there)."""
        with self._reloading:
            outcome = self._reload_locked(path, why, expect_sha256)
            if after is not None:
                after(outcome)
            return outcome

    def retarget(self, watch_path: str) -> None:
        """Watch (and reload on SIGHUP) ``watch_path`` from now on, as it is now: call from
        ``after`` (the fleet agent points it at its ``current`` symlink)."""
        self.watch_path = str(watch_path)
        self._seen = self._signature()

    def _reload_locked(self, path: str | None, why: str, expect_sha256: str) -> Outcome:
        target = str(path or self.watch_path)
        if path is None:  # what is loaded now: the watcher must not reload it a second time
            self._seen = self._signature()
        try:
            return self._reload(target, why, expect_sha256)
        except Exception as e:  # EdgekitError, or a model that raised anything at all
            if isinstance(e, Stopped) or self._stop.is_set():  # serve stops meanwhile
                return Outcome(False, f"{target}: not loaded (serve is stopping)", target)
            msg = e.message if isinstance(e, EdgekitError) else f"{type(e).__name__}: {e}"
            outcome = Outcome(False, f"{target}: {msg}; the running model is kept", target)
            self.emit("reload_failed", outcome.message, {"bundle": target})
            return outcome
