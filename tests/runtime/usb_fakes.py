"""A fake USB tree for the Coral (sysfs device, usbfs node, kernel log) and a fake kernel that
answers USBDEVFS_RESET on it: the boundary that cannot exist here.

What it reproduces (docs/DESIGN.md, "Link health" and "Self-healing"):
- a USB Accelerator at sysfs port ``2-1`` with ``idVendor``/``idProduct``, ``speed`` (Mb/s),
  ``busnum``/``devnum`` and ``power/control``; its usbfs node ``/dev/bus/usb/BBB/DDD``;
- the kernel log as ``/dev/kmsg`` records (``"6,seq,usec,-;usb 2-1: ..."``);
- ``ioctl(fd, USBDEVFS_RESET, 0)`` on the node: the kernel resets the port and logs
  ``usb 2-1: reset SuperSpeed USB device number N using xhci_hcd``; the Coral loses its firmware
  and re-enumerates as 1a6e:089a with the next device number (a new node); the wedge clears.
  libedgetpu (the stand-in, ``EDGETPU_STANDIN_SYSFS``) turns it into 18d1:9302 when it opens it.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from edgekit.backends.usbreset import USBDEVFS_RESET


def make_coral(root: Path, port="2-1", ids=("18d1", "9302"), speed=5000, busnum=2, devnum=3,
               control="on", kernel=()) -> Path:  # fmt: skip
    """A Coral under ``root`` (created if needed); returns its sysfs directory."""
    dev = root / "sys/bus/usb/devices" / port
    (dev / "power").mkdir(parents=True, exist_ok=True)
    (dev / "idVendor").write_text(ids[0] + "\n")
    (dev / "idProduct").write_text(ids[1] + "\n")
    (dev / "speed").write_text(f"{speed}\n")
    (dev / "busnum").write_text(f"{busnum}\n")
    (dev / "devnum").write_text(f"{devnum}\n")
    if control is not None:
        (dev / "power/control").write_text(control + "\n")
    node_of(root, dev).parent.mkdir(parents=True, exist_ok=True)
    node_of(root, dev).touch()
    (root / "dev").mkdir(exist_ok=True)
    kernel_log(root, *kernel)
    return dev


def node_of(root: Path, dev: Path) -> Path:
    bus = int((dev / "busnum").read_text())
    num = int((dev / "devnum").read_text())
    return root / f"dev/bus/usb/{bus:03d}/{num:03d}"


def kernel_log(root: Path, *messages: str) -> None:
    """Append kernel messages to the fake /dev/kmsg as records."""
    kmsg = root / "dev/kmsg"
    seq = len(kmsg.read_text().splitlines()) if kmsg.exists() else 0
    with open(kmsg, "a") as f:
        for i, m in enumerate(messages, seq):
            f.write(f"6,{i},{1000 * (i + 1)},-;{m}\n")


class FakeKernel:
    """``ioctl`` for :class:`edgekit.backends.usbreset.KernelUsbReset` (see module doc).
    ``wedge``: the stand-in's EDGETPU_STANDIN_WEDGE file, removed by a reset; ``comes_back``
    False: the device stays gone after the reset (a dead stick)."""

    def __init__(self, root: Path, port: str = "2-1", wedge: Path | None = None,
                 comes_back: bool = True):  # fmt: skip
        self.root, self.port, self.wedge, self.comes_back = root, port, wedge, comes_back
        self.resets: list[str] = []

    def __call__(self, fd: int, request: int, arg: int) -> int:
        if request != USBDEVFS_RESET:
            raise OSError(errno.ENOTTY, os.strerror(errno.ENOTTY))
        dev = self.root / "sys/bus/usb/devices" / self.port
        path = Path(os.readlink(f"/proc/self/fd/{fd}"))
        if not dev.is_dir() or path != node_of(self.root, dev):
            raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))
        num = int((dev / "devnum").read_text())
        self.resets.append(str(path))
        kernel_log(self.root, f"usb {self.port}: reset SuperSpeed USB device number {num} "
                   "using xhci_hcd")  # fmt: skip
        node_of(self.root, dev).unlink()
        if not self.comes_back:
            for f in dev.iterdir():
                if f.is_file():
                    f.unlink()
            return 0
        (dev / "idVendor").write_text("1a6e\n")
        (dev / "idProduct").write_text("089a\n")
        (dev / "devnum").write_text(f"{num + 1}\n")
        node_of(self.root, dev).touch()
        if self.wedge is not None and self.wedge.exists():
            self.wedge.unlink()
        return 0
