"""Edge TPU device strings and enumeration (no hardware library needed).

libedgetpu names devices ``usb``, ``usb:N``, ``pci``, ``pci:N`` or ``:N`` (the Nth device of any
kind, in enumeration order). A USB Accelerator enumerates as ``1a6e:089a`` (Global Unichip) until
libedgetpu first opens it and uploads its firmware; it then re-enumerates as ``18d1:9302``
(Google). Both mean "a Coral is attached". PCIe/M.2 modules appear as ``/sys/class/apex/apex_N``
(and ``/dev/apex_N``) once the gasket/apex kernel driver is loaded.

Every path is taken relative to ``root`` so tests can build a fake sysfs tree.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import EdgekitError

# (idVendor, idProduct) -> firmware loaded?
USB_IDS = {("1a6e", "089a"): False, ("18d1", "9302"): True}
_DEVICE_RE = re.compile(r"^(usb|pci)?(?::(\d+))?$")


@dataclass(frozen=True)
class EdgeTpuDevice:
    """An attached Edge TPU. ``index`` counts within its ``type``; ``speed_mbps`` is the USB link
    speed from sysfs (480 = USB 2, 5000 = USB 3; None for PCIe or unknown); ``initialized`` is
    False for a USB stick still showing the 1a6e:089a boot id."""

    type: str
    path: str
    index: int
    speed_mbps: int | None = None
    initialized: bool | None = None

    @property
    def name(self) -> str:
        return f"{self.type}:{self.index}"


def parse_device(device: str) -> tuple[str | None, int | None]:
    """``"usb:1"`` -> ("usb", 1); ``":0"`` -> (None, 0); ``"pci"`` -> ("pci", None).

    Raises EdgekitError for anything libedgetpu would not understand.
    """
    m = _DEVICE_RE.match(device.strip().lower()) if device else None
    if not m or (m.group(1) is None and m.group(2) is None):
        raise EdgekitError(
            f"invalid device {device!r}",
            "use auto, cpu, usb, usb:N, pci, pci:N, or :N for the Nth Edge TPU of any kind",
        )
    return m.group(1), (int(m.group(2)) if m.group(2) is not None else None)


def select_device(devices: list[EdgeTpuDevice], device: str | None) -> EdgeTpuDevice | None:
    """The device a libedgetpu device string designates, or None if it is not attached.
    ``device`` None (or "auto") means the first one."""
    if device in (None, "", "auto"):
        return devices[0] if devices else None
    kind, index = parse_device(device)
    pool = [d for d in devices if kind is None or d.type == kind]
    i = 0 if index is None else index
    return pool[i] if i < len(pool) else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def list_usb(root: str | os.PathLike = "/") -> list[EdgeTpuDevice]:
    """Coral USB Accelerators under ``root``/sys/bus/usb/devices, sorted by sysfs name."""
    base = Path(root) / "sys/bus/usb/devices"
    found = []
    for dev in sorted(base.glob("*")) if base.is_dir() else []:
        ids = (_read(dev / "idVendor"), _read(dev / "idProduct"))
        if ids in USB_IDS:
            speed = _read(dev / "speed")
            try:
                mbps = int(float(speed)) if speed else None
            except ValueError:
                mbps = None
            found.append((dev, mbps, USB_IDS[ids]))  # type: ignore[index]
    return [
        EdgeTpuDevice("usb", f"/sys/bus/usb/devices/{dev.name}", i, mbps, init)
        for i, (dev, mbps, init) in enumerate(found)
    ]


def list_pci(root: str | os.PathLike = "/") -> list[EdgeTpuDevice]:
    """PCIe/M.2 Edge TPUs: /sys/class/apex/apex_N, else /dev/apex_N."""
    root = Path(root)
    names = sorted(p.name for p in (root / "sys/class/apex").glob("apex_*"))
    where = "/sys/class/apex"
    if not names:
        names = sorted(p.name for p in (root / "dev").glob("apex_*"))
        where = "/dev"
    return [EdgeTpuDevice("pci", f"{where}/{n}", i) for i, n in enumerate(names)]


def list_edge_tpus(root: str | os.PathLike = "/") -> list[EdgeTpuDevice] | None:
    """All Edge TPUs (USB first, then PCIe, as libedgetpu orders them), from sysfs.

    Returns None when ``root``/sys is not there at all (a container without sysfs): then nothing
    can be said and the caller should simply try libedgetpu.
    """
    if not (Path(root) / "sys").is_dir():
        return None
    return list_usb(root) + list_pci(root)
