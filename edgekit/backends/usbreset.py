"""Reset a wedged Coral USB Accelerator, and wait for it to come back (a hardware boundary).

Two ways, in order:

1. ``USBDEVFS_RESET`` on its usbfs node ``/dev/bus/usb/BBB/DDD`` (what the ``usbreset`` tool
   does: open the node for writing, ``ioctl(fd, USBDEVFS_RESET, 0)``). The kernel resets the
   port and re-enumerates the device; a Coral loses its firmware and comes back as 1a6e:089a
   until libedgetpu uploads it again (then 18d1:9302). Needs write access to the node: the udev
   rule of scripts/setup-pi.sh gives it to the plugdev group, which the service is in.
2. As root only, the last step: unbind and bind the device from the ``usb`` driver through
   ``/sys/bus/usb/drivers/usb/{unbind,bind}`` (the kernel re-probes it as if replugged).

Every path is relative to ``root``; tests replace the ``ioctl`` with a fake kernel that
re-enumerates a fake sysfs device.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Protocol

from edgekit.backends.devices import EdgeTpuDevice, list_usb
from edgekit.backends.linkstate import usb_node
from edgekit.errors import EdgekitError

USBDEVFS_RESET = 0x5514  # _IO('U', 20), linux/usbdevice_fs.h


class ResetError(EdgekitError):
    """The device could not be reset by any means this process has."""


class UsbResetter(Protocol):
    def reset(self, device: EdgeTpuDevice) -> str:
        """Reset ``device``; returns how ("USBDEVFS_RESET on /dev/bus/usb/002/003",
        "unbind/bind 2-1"). Raises ResetError."""
        ...


def _default_ioctl(fd: int, request: int, arg: int) -> int:
    import fcntl

    return fcntl.ioctl(fd, request, arg)


class KernelUsbReset:
    """The real reset (see module doc). ``ioctl`` and ``is_root`` are replaceable for tests;
    ``settle_s`` is the pause between unbind and bind."""

    def __init__(self, root: str | os.PathLike = "/", ioctl: Callable = _default_ioctl,
                 is_root: Callable[[], bool] | None = None, settle_s: float = 1.0):  # fmt: skip
        self.root = Path(root)
        self.ioctl = ioctl
        self.is_root = is_root or (lambda: hasattr(os, "geteuid") and os.geteuid() == 0)
        self.settle_s = settle_s

    def reset(self, device: EdgeTpuDevice) -> str:
        port = device.path.rsplit("/", 1)[-1]
        node = usb_node(self.root, device.path)
        why = "no busnum/devnum in sysfs"
        if node is not None:
            try:
                fd = os.open(self.root / node.lstrip("/"), os.O_WRONLY | os.O_CLOEXEC)
                try:
                    self.ioctl(fd, USBDEVFS_RESET, 0)
                finally:
                    os.close(fd)
                return f"USBDEVFS_RESET on {node}"
            except OSError as e:
                why = f"USBDEVFS_RESET on {node}: {e.strerror or e}"
        if self.is_root():
            drv = self.root / "sys/bus/usb/drivers/usb"
            try:
                (drv / "unbind").write_text(port)
                time.sleep(self.settle_s)
                (drv / "bind").write_text(port)
                return f"unbind/bind {port}"
            except OSError as e:
                why += f"; unbind/bind {port}: {e.strerror or e}"
        raise ResetError(
            f"cannot reset the Edge TPU {device.name} ({why})",
            "run sudo bash scripts/setup-pi.sh (its udev rule lets the plugdev group reset the "
            "Coral) and make sure the service user is in plugdev; or unplug and replug it",
        )


def wait_for_port(root: str | os.PathLike, port: str, before: str | None, timeout_s: float,
                  stop=None, poll_s: float = 0.2) -> EdgeTpuDevice | None:  # fmt: skip
    """The Coral at sysfs ``port`` once it is back on the bus after a reset (its node differs
    from ``before``, or it shows at all after a pause), or None after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    first_seen = None
    while True:
        dev = next((d for d in list_usb(root) if d.path.endswith("/" + port)), None)
        if dev is not None:
            node = usb_node(root, dev.path)
            now = time.monotonic()
            first_seen = first_seen or now
            # A new device number is a re-enumeration; the same one is accepted after a second
            # (usb_reset_device keeps the number when the descriptors did not change).
            if node != before or now - first_seen >= 1.0:
                return dev
        if time.monotonic() >= deadline:
            return None
        if stop is not None and stop.wait(poll_s):
            return None
        if stop is None:
            time.sleep(poll_s)
