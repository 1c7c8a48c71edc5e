"""What a Coral USB Accelerator's link and the Pi's power say, and the fix for each finding.

Data plus small pure functions; the reading of sysfs, the kernel log and the firmware lives in
:mod:`edgekit.backends.linkstate`. Evidence for every rule is in docs/DESIGN.md ("Link health").

* USB link speed (sysfs ``speed``, Mb/s): 5000 is USB 3 (SuperSpeed); 480 is USB 2 high speed,
  where every inference moves its tensors (and any parameters that do not fit the 8 MB on-chip
  cache) over a link ten times slower.
* Kernel log lines about the device's port (``usb 2-1: ...``): ``reset SuperSpeed USB device
  number 3 using xhci_hcd`` is a link reset (a brown-out, a bad cable or hub, a wedged device);
  ``USB disconnect, device number 3`` is the device leaving the bus.
* ``power/control``: ``auto`` lets the kernel autosuspend the device when idle; ``on`` keeps it
  powered. The Coral is exempted by setup-pi.sh's udev rule.
* The Raspberry Pi firmware's ``get_throttled`` word: bits 0-3 describe now, bits 16-19 the same
  conditions since boot (sticky until reboot). The ``raspberrypi-hwmon`` driver exposes bit 0
  as ``in0_lcrit_alarm`` of the hwmon device named ``rpi_volt``.
* Invoke latency drift: the median inference time now against the median of the first minute;
  the Edge TPU's time per inference is fixed by the model, so a rise means the link or the host
  got slower (USB 2 fallback after a reset, thermal throttling, CPU contention).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

USB3_MBPS = 5000
# get_throttled bit -> meaning (Raspberry Pi documentation, "get_throttled").
THROTTLED_BITS = {
    0: "under-voltage detected",
    1: "ARM frequency capped",
    2: "currently throttled",
    3: "soft temperature limit active",
    16: "under-voltage has occurred",
    17: "ARM frequency capping has occurred",
    18: "throttling has occurred",
    19: "soft temperature limit has occurred",
}
NOW_MASK, SINCE_BOOT_MASK = 0x0000F, 0xF0000
UNDERVOLTAGE_NOW, UNDERVOLTAGE_SINCE_BOOT = 1 << 0, 1 << 16
# drift ratio (median now / median of the first minute) above which latency counts as drifted
DRIFT_WARN = 1.5
BASELINE_S = 60.0

# Kernel log records: "usb 2-1: reset SuperSpeed USB device number 3 using xhci_hcd",
# "usb 2-1: USB disconnect, device number 3", "usb 2-1: new SuperSpeed USB device number 4 ...".
_RESET_RE = re.compile(r"\busb (\d+-[\d.]+): reset (\S+(?: \S+)?) USB device number (\d+)")
_DISCONNECT_RE = re.compile(r"\busb (\d+-[\d.]+): USB disconnect, device number (\d+)")
# Raspberry Pi kernels: "Under-voltage detected! (0x00050005)" (firmware driver, older) or
# "hwmon hwmon1: Undervoltage detected!" (raspberrypi-hwmon).
_UNDERVOLT_RE = re.compile(r"Under-?voltage detected!", re.IGNORECASE)


@dataclass(frozen=True)
class KernelEvents:
    """What the kernel log since boot says about one USB port."""

    resets: int = 0
    disconnects: int = 0
    undervoltage: int = 0  # lines, for the whole machine
    last_reset: str | None = None  # the last reset line, as logged


def parse_kernel_log(lines, port: str | None) -> KernelEvents:
    """Count resets and disconnects of ``port`` (sysfs name such as ``2-1``) and under-voltage
    lines. ``lines`` are messages (a /dev/kmsg record's text after ``;``, or journal text)."""
    resets = disconnects = under = 0
    last = None
    for line in lines:
        m = _RESET_RE.search(line)
        if m and m.group(1) == port:
            resets += 1
            last = line[m.start():].strip()
            continue
        m = _DISCONNECT_RE.search(line)
        if m and m.group(1) == port:
            disconnects += 1
            continue
        if _UNDERVOLT_RE.search(line):
            under += 1
    return KernelEvents(resets, disconnects, under, last)


def kmsg_text(record: str) -> str:
    """The message of a /dev/kmsg record ``"6,1234,5678,-;usb 2-1: ..."`` (other text as is)."""
    head, sep, text = record.partition(";")
    if sep and head.count(",") >= 2 and head.split(",", 1)[0].isdigit():
        return text
    return record


def decode_throttled(value: int) -> dict:
    """``{"now": [...], "since_boot": [...]}`` meanings of the set bits of a get_throttled word."""
    return {
        "now": [THROTTLED_BITS[b] for b in range(4) if value & (1 << b)],
        "since_boot": [THROTTLED_BITS[b] for b in range(16, 20) if value & (1 << b)],
    }


def parse_throttled(text: str) -> int | None:
    """``"throttled=0x50005"`` (vcgencmd) or ``"50005"``/``"0x50005"`` (sysfs) -> int."""
    s = text.strip().rpartition("=")[2].strip()
    try:
        return int(s, 16)
    except ValueError:
        return None


def drift_ratio(baseline_ms: float | None, recent_ms: float | None) -> float | None:
    """Recent median inference time over the first minute's; None until both exist."""
    if not baseline_ms or recent_ms is None or baseline_ms <= 0:
        return None
    return round(recent_ms / baseline_ms, 3)


@dataclass(frozen=True)
class Finding:
    """One thing wrong (or fine) with a device's link or the Pi's power, with its fix.
    ``code``: usb2_link, resets, disconnects, autosuspend, undervoltage_now,
    undervoltage_since_boot, throttled, latency_drift; ``severity``: warn | fail."""

    code: str
    severity: str
    detail: str
    fix: str

    def to_dict(self) -> dict:
        return {"code": self.code, "severity": self.severity, "detail": self.detail,
                "fix": self.fix}  # fmt: skip


POWER_FIX = (
    "use the official 5 V 3 A (Pi 4) / 5 A (Pi 5) supply and a short, thick USB-C cable; put the "
    "Coral (up to 900 mA) on a powered USB 3 hub"
)
FIXES = {
    "usb2_link": "plug the Coral into a USB 3 (blue) port, directly or through a powered USB 3 "
    "hub, with the supplied USB 3 cable",
    "resets": "the link resets: use the supplied (or a short USB 3) cable, a blue port or a "
    "powered USB 3 hub, and check the power supply (under-voltage resets the Coral first)",
    "disconnects": "the Coral left the bus: reseat the cable, avoid unpowered hubs, check power",
    "autosuspend": "sudo bash scripts/setup-pi.sh (its udev rule sets power/control=on for "
    "1a6e:089a and 18d1:9302), then replug the Coral; or now: echo on | sudo tee "
    "/sys/bus/usb/devices/PORT/power/control",
    "undervoltage_now": POWER_FIX,
    "undervoltage_since_boot": POWER_FIX,
    "throttled": "cool the Pi (heatsink, fan, case airflow) and check the power supply",
    "latency_drift": "compare with `edgekit bench`; look for the findings above (USB 2 link after "
    "a reset, throttling); replug the Coral",
}


def link_findings(
    speed_mbps: int | None,
    autosuspend: str | None,
    kernel: KernelEvents | None,
    drift: float | None = None,
) -> list[Finding]:
    """Findings for one USB Edge TPU (empty: all fine or nothing known)."""
    out = []
    if speed_mbps is not None and speed_mbps < USB3_MBPS:
        out.append(Finding("usb2_link", "warn", f"USB 2 link ({speed_mbps} Mb/s, not 5000): "
                           "inference is several times slower", FIXES["usb2_link"]))  # fmt: skip
    if kernel is not None and kernel.resets:
        out.append(Finding("resets", "warn", f"{kernel.resets} USB reset(s) since boot "
                           f"(last: {kernel.last_reset})", FIXES["resets"]))  # fmt: skip
    if kernel is not None and kernel.disconnects:
        out.append(Finding("disconnects", "warn", f"{kernel.disconnects} disconnect(s) since "
                           "boot", FIXES["disconnects"]))  # fmt: skip
    if autosuspend == "auto":
        out.append(Finding("autosuspend", "warn", "USB autosuspend is on (power/control=auto): "
                           "the kernel may suspend the Coral between frames",
                           FIXES["autosuspend"]))  # fmt: skip
    if drift is not None and drift >= DRIFT_WARN:
        out.append(Finding("latency_drift", "warn", f"inference is {drift:.2f}x slower than in "
                           "the first minute", FIXES["latency_drift"]))  # fmt: skip
    return out


def power_findings(throttled: int | None, hwmon_alarm: bool | None) -> list[Finding]:
    """Findings for the Pi's supply and clocks (get_throttled word and/or the hwmon alarm)."""
    out = []
    now = throttled is not None and bool(throttled & UNDERVOLTAGE_NOW)
    if now or hwmon_alarm:
        out.append(Finding("undervoltage_now", "fail", "under-voltage NOW: the Pi's supply "
                           "sags; USB devices brown out and reset",
                           FIXES["undervoltage_now"]))  # fmt: skip
    elif throttled is not None and throttled & UNDERVOLTAGE_SINCE_BOOT:
        out.append(Finding("undervoltage_since_boot", "warn", "under-voltage has occurred "
                           "since boot", FIXES["undervoltage_since_boot"]))  # fmt: skip
    if throttled is not None:
        other = [m for b, m in THROTTLED_BITS.items()
                 if b not in (0, 16) and throttled & (1 << b)]  # fmt: skip
        if other:
            out.append(Finding("throttled", "warn", f"get_throttled=0x{throttled:x}: "
                               + ", ".join(other), FIXES["throttled"]))  # fmt: skip
    return out
