"""Self-healing: reset a wedged Edge TPU, wait for it, prove it, and let serve resume on it.

serve already survives a failed Edge TPU: the worker restarts, reopens, and falls back to the
CPU (:mod:`edgekit.stream.resilient`). A Coral whose USB link wedged does not come back by
itself, though: every reopen fails until someone unplugs it. When a restarted worker still
cannot open or invoke the device, :class:`Healer` (in a thread of its own, while the CPU
fallback keeps producing results) resets it through :mod:`edgekit.backends.usbreset`, waits for
it to re-enumerate on its port (1a6e:089a, then 18d1:9302 once libedgetpu uploads the firmware),
proves it with the child-process probe (:func:`edgekit.backends.probe.probe`), and then tells
ResilientClassifier to leave the CPU. Each step is an event (log, JSON lines, status page,
/metrics, MQTT): ``device_reset_started``, ``device_reset`` (how), ``device_reenumerated``,
``device_recovered`` (probe passed), ``device_reset_failed`` (which step and why),
``device_reset_limited`` (the budget is spent).

Bounded: at most ``max_per_hour`` resets in any hour, and a doubling pause between attempts
(``backoff_s``, reset by a success). A device that is not on the bus is not reset (nothing to
reset: it was unplugged, the periodic Edge TPU retry sees it when it returns).
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Callable

from edgekit.backends.devices import list_usb, select_device
from edgekit.backends.linkstate import usb_node
from edgekit.backends.usbreset import KernelUsbReset, UsbResetter, wait_for_port
from edgekit.errors import EdgekitError

EventFn = Callable[[str, str, dict], None]
HOUR_S = 3600.0


def _probe(device: str, timeout: float):
    from edgekit.backends.probe import probe

    return probe(device=device, timeout=timeout)


class Healer:
    """Resets the Edge TPU ``requested`` (a libedgetpu device string) when asked; see module.

    Args:
        emit: ``(kind, message, details)`` event reporter.
        requested: the serve config's device ("auto", "usb", "usb:1"...); PCIe is not reset.
        root: where sysfs and devfs live (tests: a fake tree).
        resetter: the hardware boundary (default :class:`KernelUsbReset` on ``root``).
        probe: ``(device, timeout) -> Verdict``, the proof that the device works again.
    """

    def __init__(self, emit: EventFn, requested: str = "auto", root="/",
                 resetter: UsbResetter | None = None, max_per_hour: int = 3,
                 backoff_s: float = 30.0, reenumerate_timeout_s: float = 20.0,
                 probe_timeout_s: float = 30.0, probe: Callable = _probe):  # fmt: skip
        self.emit, self.requested, self.root = emit, requested, root
        self.resetter = resetter or KernelUsbReset(root)
        self.max_per_hour, self.backoff_s = int(max_per_hour), float(backoff_s)
        self.reenumerate_timeout_s, self.probe_timeout_s = reenumerate_timeout_s, probe_timeout_s
        self.probe = probe
        self.resets: collections.deque[float] = collections.deque()  # times, within the hour
        self.attempts = self.recovered = self.failed = 0
        self.state = "idle"  # idle | resetting | recovered | failed | limited
        self._next_ok = 0.0
        self._wait = self.backoff_s
        self._thread: threading.Thread | None = None
        self._healed = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def info(self) -> dict:
        with self._lock:
            return {"state": self.state, "attempts": self.attempts, "recovered": self.recovered,
                    "failed": self.failed, "resets_last_hour": len(self.resets),
                    "max_per_hour": self.max_per_hour}  # fmt: skip

    @property
    def busy(self) -> bool:
        t = self._thread
        return t is not None and t.is_alive()

    def request(self, why: str) -> bool:
        """Start a reset in the background if the budget allows; True if one started."""
        with self._lock:
            if self.busy or self._stop.is_set():
                return False
            now = time.monotonic()
            while self.resets and now - self.resets[0] > HOUR_S:
                self.resets.popleft()
            if now < self._next_ok:
                return False
            if len(self.resets) >= self.max_per_hour:
                if self.state != "limited":
                    self.state = "limited"
                    self.emit("device_reset_limited", f"not resetting the Edge TPU again: "
                              f"{len(self.resets)} resets within the last hour (max "
                              f"{self.max_per_hour}); replug it or check cable and power",
                              {"resets_last_hour": len(self.resets)})  # fmt: skip
                return False
            self._thread = threading.Thread(target=self.heal, args=(why,), daemon=True,
                                            name="edgekit-heal")  # fmt: skip
            self._thread.start()
            return True

    def take_recovered(self) -> bool:
        """True once after a reset that the probe proved (ResilientClassifier then reopens)."""
        if self._healed.is_set():
            self._healed.clear()
            return True
        return False

    def close(self, timeout: float = 2.0) -> None:
        self._stop.set()
        t = self._thread
        if t is not None:
            t.join(timeout)

    def heal(self, why: str) -> bool:
        """Reset, wait, probe (blocking). True when the device works again."""
        try:
            devices = list_usb(self.root)
            dev = select_device(devices, None if self.requested in ("", "auto") else
                                self.requested) if not self.requested.startswith("pci") else None
        except EdgekitError:
            dev = None
        if dev is None:
            self.emit("device_reset_failed", "Edge TPU not on the USB bus: nothing to reset "
                      "(unplugged?); retrying it periodically", {"step": "find"})  # fmt: skip
            self._pause(count=False)
            return False
        port, before = dev.path.rsplit("/", 1)[-1], usb_node(self.root, dev.path)
        with self._lock:
            self.attempts += 1
            self.resets.append(time.monotonic())
            self.state = "resetting"
        details = {"device": dev.name, "port": port, "node": before, "attempt": self.attempts}
        self.emit("device_reset_started", f"Edge TPU {dev.name} ({port}) is wedged ({why}); "
                  "resetting it, results continue on the CPU meanwhile", details)  # fmt: skip
        t0 = time.monotonic()
        try:
            how = self.resetter.reset(dev)
        except EdgekitError as e:
            return self._fail("reset", f"{e.message}", details, hint=e.hint)
        self.emit("device_reset", f"Edge TPU {dev.name} reset ({how})", {**details, "how": how})
        back = wait_for_port(self.root, port, before, self.reenumerate_timeout_s, self._stop)
        if back is None:
            return self._fail("reenumerate", f"Edge TPU did not come back on {port} within "
                              f"{self.reenumerate_timeout_s:g} s after the reset", details)
        ids = "18d1:9302" if back.initialized else "1a6e:089a"
        node = usb_node(self.root, back.path)
        self.emit("device_reenumerated", f"Edge TPU back on {port} as {ids} ({node})",
                  {**details, "ids": ids, "node": node})  # fmt: skip
        v = self.probe(back.name, self.probe_timeout_s)
        if not v.ok:
            return self._fail("probe", f"the probe failed after the reset: {v.detail}", details)
        with self._lock:
            self.recovered += 1
            self.state = "recovered"
            # the pause restarts at its first step, but is kept: a device that fails again at
            # once (a reset that did not help) must not be reset in a tight loop
            self._wait = self.backoff_s
            self._next_ok = time.monotonic() + self.backoff_s
        self.emit("device_recovered", f"Edge TPU {back.name} works again after the reset "
                  f"({time.monotonic() - t0:.1f} s); leaving the CPU",
                  {**details, "seconds": round(time.monotonic() - t0, 3)})  # fmt: skip
        self._healed.set()
        return True

    def _fail(self, step: str, message: str, details: dict, hint: str | None = None) -> bool:
        with self._lock:
            self.failed += 1
            self.state = "failed"
        wait = self._pause(count=True)
        tail = f"; next try in {wait:g} s at the earliest" + (f" ({hint})" if hint else "")
        self.emit("device_reset_failed", message + tail, {**details, "step": step})
        return False

    def _pause(self, count: bool) -> float:
        with self._lock:
            wait = self._wait
            self._next_ok = time.monotonic() + wait
            if count:
                self._wait = min(self._wait * 2, HOUR_S)
            return wait
