"""Read a Coral's USB link state and the Pi's power flags (no hardware library needed).

Every path is taken relative to ``root`` (tests build fake sysfs, devfs and kernel-log trees);
what the values mean, and the fix for each finding, is :mod:`edgekit.edgetpu.link`.

* ``/sys/bus/usb/devices/<port>/``: ``speed`` (Mb/s), ``power/control`` (``on`` | ``auto``),
  ``busnum``/``devnum`` (the ``/dev/bus/usb/BBB/DDD`` node), ``idVendor``/``idProduct``.
* the kernel log since boot: ``/dev/kmsg`` (read non-blocking, record by record, from the oldest
  record still in the ring buffer), else ``journalctl -k -b`` (only on the real root: the
  service user reads it through the systemd-journal/adm group), else unknown.
* the firmware's ``get_throttled`` word: the legacy sysfs attribute
  ``/sys/devices/platform/soc/soc:firmware/get_throttled``, else ``vcgencmd get_throttled``
  (real root only; needs the video group), and the ``rpi_volt`` hwmon's ``in0_lcrit_alarm``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from edgekit.backends.devices import EdgeTpuDevice, list_edge_tpus
from edgekit.edgetpu import link

MAX_KMSG_RECORDS = 50_000  # the ring buffer holds far fewer; a guard against a fake endless file
THROTTLED_SYSFS = "sys/devices/platform/soc/soc:firmware/get_throttled"


@dataclass(frozen=True)
class LinkState:
    """One USB Edge TPU's link. ``kernel`` is None when the kernel log could not be read."""

    device: str  # "usb:0"
    port: str  # sysfs name, e.g. "2-1"
    ids: str  # "18d1:9302" (firmware loaded) or "1a6e:089a"
    speed_mbps: int | None
    autosuspend: str | None  # "on" | "auto" | None (unknown)
    node: str | None  # /dev/bus/usb/BBB/DDD
    kernel: link.KernelEvents | None

    def to_dict(self) -> dict:
        out = asdict(self)
        out["kernel"] = None if self.kernel is None else asdict(self.kernel)
        return out


@dataclass(frozen=True)
class PowerState:
    """The Pi's power flags. ``throttled`` None: no firmware word readable (not a Pi, or no
    permission); ``hwmon_alarm`` None: no ``rpi_volt`` hwmon."""

    throttled: int | None = None
    source: str | None = None  # where the word came from
    hwmon_alarm: bool | None = None

    def to_dict(self) -> dict:
        out = asdict(self)
        if self.throttled is not None:
            out["throttled_hex"] = f"0x{self.throttled:x}"
            out.update(link.decode_throttled(self.throttled))
        return out


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def usb_node(root: str | os.PathLike, sysfs_path: str) -> str | None:
    """/dev/bus/usb/BBB/DDD of a USB device, from its sysfs busnum/devnum."""
    base = Path(root) / sysfs_path.lstrip("/")
    try:
        bus, dev = int(_read(base / "busnum") or ""), int(_read(base / "devnum") or "")
    except ValueError:
        return None
    return f"/dev/bus/usb/{bus:03d}/{dev:03d}"


def read_kernel_log(root: str | os.PathLike = "/", run=subprocess.run) -> list[str] | None:
    """Kernel log messages since boot (oldest first), or None when none can be read."""
    path = Path(root) / "dev/kmsg"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        fd = None
    if fd is not None:
        chunks, pending = [], b""
        try:
            for _ in range(MAX_KMSG_RECORDS):
                try:
                    data = os.read(fd, 8192)  # /dev/kmsg: one record per read
                except BlockingIOError:  # no more records
                    break
                except BrokenPipeError:  # a record was overwritten while we read: go on
                    continue
                except OSError:
                    break
                if not data:  # end of a regular file (a fake kernel log)
                    break
                pending += data
                *done, pending = pending.split(b"\n")
                chunks += done
        finally:
            os.close(fd)
        if pending:
            chunks.append(pending)
        return [link.kmsg_text(c.decode("utf-8", "replace")) for c in chunks if c]
    if str(Path(root).resolve()) != "/" or shutil.which("journalctl") is None:
        return None
    try:
        out = run(["journalctl", "-k", "-b", "-o", "cat", "--no-pager", "-q"],
                  capture_output=True, text=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.splitlines() if out.returncode == 0 and out.stdout else None


def read_link(root: str | os.PathLike, device: EdgeTpuDevice,
              kernel_lines: list[str] | None) -> LinkState:  # fmt: skip
    base = Path(root) / device.path.lstrip("/")
    port = device.path.rsplit("/", 1)[-1]
    control = _read(base / "power/control")
    ids = f"{_read(base / 'idVendor') or '?'}:{_read(base / 'idProduct') or '?'}"
    kernel = None if kernel_lines is None else link.parse_kernel_log(kernel_lines, port)
    return LinkState(device.name, port, ids, device.speed_mbps,
                     control if control in ("on", "auto") else None,
                     usb_node(root, device.path), kernel)  # fmt: skip


def _hwmon_alarm(root: Path) -> bool | None:
    for d in sorted((root / "sys/class/hwmon").glob("hwmon*")):
        if _read(d / "name") == "rpi_volt":
            v = _read(d / "in0_lcrit_alarm")
            return None if v is None else v.strip() == "1"
    return None


def read_power(root: str | os.PathLike = "/", run=subprocess.run) -> PowerState:
    root = Path(root)
    alarm = _hwmon_alarm(root)
    text = _read(root / THROTTLED_SYSFS)
    if text is not None and link.parse_throttled(text) is not None:
        return PowerState(link.parse_throttled(text), "sysfs get_throttled", alarm)
    exe = shutil.which("vcgencmd") if str(root.resolve()) == "/" else None
    if exe:
        try:
            out = run([exe, "get_throttled"], capture_output=True, text=True, timeout=5)
            value = link.parse_throttled(out.stdout) if out.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            value = None
        if value is not None:
            return PowerState(value, "vcgencmd get_throttled", alarm)
    return PowerState(None, "hwmon rpi_volt" if alarm is not None else None, alarm)


def read_links(root: str | os.PathLike = "/") -> list[LinkState]:
    """The link of every USB Edge TPU under ``root`` (empty without sysfs or devices)."""
    usb = [d for d in list_edge_tpus(root) or [] if d.type == "usb"]
    if not usb:
        return []
    lines = read_kernel_log(root)
    return [read_link(root, d, lines) for d in usb]
