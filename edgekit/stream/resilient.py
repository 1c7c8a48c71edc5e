"""Keeps a :class:`~edgekit.classify.Classifier` running through Edge TPU faults.

When a Coral USB Accelerator is unplugged, browns out on a weak Pi USB port or its driver
wedges, libedgetpu makes ``Interpreter.invoke()`` raise ``RuntimeError`` (and every later
invoke fails too): the interpreter must be rebuilt, which only works once the device has
re-enumerated on the bus. So after a failed inference this wrapper reopens the model a few
times with short waits; if the Edge TPU does not come back it either stops the service
(``on_tpu_failure = "fail"``, systemd restarts it) or continues on the CPU interpreter,
loudly (``"cpu"``): an ERROR log line, a ``cpu_fallback`` event, ``degraded`` in ``/latest``,
``/healthz`` and ``/metrics``, and ``DEGRADED`` in the systemd status; while degraded it tries
the Edge TPU again every ``tpu_retry_s`` seconds. With a ``healer``
(:class:`edgekit.stream.healing.Healer`) a device that stays unopenable is reset in the
background meanwhile, and the Edge TPU is reopened as soon as the reset is proven; with
``"fail"`` one reset is tried (frames meanwhile are counted as dropped) before giving up.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from edgekit.stream.pipeline import FatalError, SkipFrame


class ResilientClassifier:
    """Callable ``rgb -> record`` for :class:`~edgekit.stream.pipeline.Pipeline`.

    Args:
        classifier: object with ``run(rgb)`` (a task model: Classifier or Detector) or
            ``classify(rgb)``, ``reopen(device=None)`` and ``runner``
            (``.backend`` "cpu" | "edgetpu", ``.device``).
        emit: ``(kind, message, details)`` event reporter.
        on_tpu_failure: "cpu" or "fail".
        tpu_retry_s: while degraded, try the Edge TPU again this often (0 = never).
        reopen_attempts: reopen tries before giving up on the current backend.
        max_consecutive: failed inferences in a row (even with successful reopens) after
            which the backend counts as dead.
    """

    def __init__(
        self,
        classifier,
        emit: Callable[[str, str, dict], None],
        on_tpu_failure: str = "cpu",
        tpu_retry_s: float = 60.0,
        reopen_attempts: int = 3,
        max_consecutive: int = 5,
        wait: Callable[[float], None] = time.sleep,
        healer=None,
    ):
        self.classifier, self.emit = classifier, emit
        self.on_tpu_failure, self.tpu_retry_s = on_tpu_failure, tpu_retry_s
        self.reopen_attempts, self.max_consecutive = reopen_attempts, max_consecutive
        self.wait = wait
        self.healer = healer
        self.degraded = False
        self._tpu_seen = False  # this model ran on the Edge TPU at least once
        self._seen_on = classifier
        self.requested = str(getattr(classifier, "device", "auto") or "auto")
        self.failures = 0
        self._consecutive = 0
        self._last_tpu_try = time.monotonic()

    def replace(self, classifier) -> None:
        """Serve ``classifier`` from the next frame on (a hot reload: edgekit.stream.reload),
        with a clean slate: not degraded, no failures in a row."""
        self.classifier = classifier
        self.degraded = False
        self.requested = str(getattr(classifier, "device", "auto") or "auto")
        self._consecutive = 0
        self._last_tpu_try = time.monotonic()

    def _infer(self, rgb: np.ndarray):
        # A task model (edgekit.tasks: Classifier or Detector) has run(); older callers
        # hand in anything with classify().
        run = getattr(self.classifier, "run", None)
        return run(rgb) if run is not None else self.classifier.classify(rgb)

    @property
    def backend(self) -> str:
        return str(getattr(self.classifier.runner, "backend", "?"))

    @property
    def device(self) -> str:
        return str(getattr(self.classifier.runner, "device", "?"))

    def info(self) -> dict:
        status = getattr(self.classifier, "pool_status", None)
        if status is not None:  # edgekit.stream.pool.DevicePool: its devices' own wrappers
            out = status()
        else:
            out = {"backend": self.backend, "device": self.device, "degraded": self.degraded}
        if hasattr(self.classifier, "restarts"):  # edgekit.stream.worker.ModelProcess
            c = self.classifier
            out["worker"] = {"pid": c.info.get("pid"), "restarts": c.restarts}
        if self.healer is not None:
            out["healing"] = self.healer.info()
        return out

    def __call__(self, rgb: np.ndarray):
        self.maybe_restore()
        try:
            out = self._infer(rgb)
        except (SkipFrame, FatalError):  # a worker process crash, already handled
            raise
        except Exception as e:  # RuntimeError from invoke (libedgetpu), or anything else
            self._recover(e)
            raise SkipFrame(str(e)) from None
        self.succeeded()
        return out

    # The steps of __call__, for callers that run the model themselves (edgekit.stream.pool:
    # frames in flight): maybe_restore() before a frame, succeeded() after a good one,
    # recover(err) after a failed one (reopens, falls back; raises FatalError when it cannot).
    def maybe_restore(self) -> None:
        retry_due = time.monotonic() - self._last_tpu_try >= self.tpu_retry_s
        healed = self.degraded and self.healer is not None and self.healer.take_recovered()
        if healed or (self.degraded and self.tpu_retry_s > 0 and retry_due):
            self._try_restore()

    def succeeded(self) -> None:
        self._consecutive = 0
        if self.classifier is not self._seen_on:  # a hot reload swapped the model
            self._seen_on, self._tpu_seen = self.classifier, False
        if not self.degraded:
            backend = self.backend
            if backend == "edgetpu":
                self._tpu_seen = True
            elif self._tpu_seen and backend == "cpu":
                # A worker restarted (after a crash) while the Coral was away, and device
                # "auto" opened the CPU: the same fallback, said and retried like any other.
                if self.on_tpu_failure == "fail":
                    raise FatalError("the restarted inference worker found no Edge TPU")
                self._degrade("the restarted inference worker found no Edge TPU")

    def recover(self, err: Exception) -> None:
        self._recover(err)

    def _recover(self, err: Exception) -> None:
        was = self.backend
        self.failures += 1
        self._consecutive += 1
        self.emit(
            "inference_error",
            f"{was} inference failed: {type(err).__name__}: {err}",
            {"backend": was, "count": self.failures},
        )
        last: Exception = err
        if self._consecutive <= self.max_consecutive:
            for attempt in range(1, self.reopen_attempts + 1):
                try:
                    self.classifier.reopen()
                except (FatalError, SkipFrame):  # SkipFrame: the worker is being closed (a
                    raise  # hot reload switching models) or restarted: not a failed reopen
                except Exception as e:
                    last = e
                    self.wait(0.25 * 2**attempt)  # give the USB device time to re-enumerate
                    continue
                if was == "edgetpu" and self.backend != "edgetpu":
                    last = RuntimeError("the Edge TPU is gone (reopen chose the CPU)")
                    break
                self.emit("backend_reopened", f"{self.backend} reopened after a failure",
                          {"backend": self.backend, "attempt": attempt})  # fmt: skip
                return
        if was == "edgetpu" and self.on_tpu_failure == "fail" and self._heal_in_place(last):
            return
        if was == "edgetpu" and self.on_tpu_failure == "cpu":
            try:
                self.classifier.reopen(device="cpu")
            except SkipFrame:
                raise
            except Exception as e:
                raise FatalError(
                    f"Edge TPU failed ({last}) and the CPU fallback too ({e})"
                ) from None
            self._degrade(str(last))
            return
        raise FatalError(f"{was} inference failed and could not be reopened: {last}")

    def _degrade(self, why: str) -> None:
        self.degraded = True
        self._consecutive = 0
        self._last_tpu_try = time.monotonic()
        retry = f"every {self.tpu_retry_s:g} s" if self.tpu_retry_s > 0 else "never"
        self.emit(
            "cpu_fallback",
            f"EDGE TPU FAILED ({why}); CONTINUING ON THE CPU, much slower. Check the Coral "
            f"USB cable and power; edgekit retries the Edge TPU: {retry}",
            {"backend": "cpu", "error": why},
        )
        if self.healer is not None:
            self.healer.request(why)

    def _heal_in_place(self, err: Exception) -> bool:
        """One blocking reset (no CPU to carry the frames meanwhile: they are counted as
        dropped); True when the Edge TPU works again."""
        if self.healer is None or not self.healer.heal(str(err)):
            return False
        try:
            self.classifier.reopen(device=self.requested)
        except (FatalError, SkipFrame):
            raise
        except Exception:
            return False
        self._consecutive = 0
        return self.backend == "edgetpu"

    def _try_restore(self) -> None:
        self._last_tpu_try = time.monotonic()
        try:
            self.classifier.reopen(device=self.requested)
        except SkipFrame:
            raise
        except Exception as e:
            self.emit("tpu_still_failing", f"Edge TPU still unavailable: {e}", {})
            self.classifier.reopen(device="cpu")
            if self.healer is not None:
                self.healer.request(str(e))
            return
        if self.backend == "edgetpu":
            self.degraded = False
            self.emit("tpu_restored", "Edge TPU back; leaving the CPU fallback", {})
        else:  # "auto" found no Edge TPU: it opened the CPU, which is where we are anyway
            self.emit("tpu_still_failing", "Edge TPU still unavailable", {})
