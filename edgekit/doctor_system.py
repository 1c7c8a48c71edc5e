"""``edgekit doctor``: the machine checks, every file read under ``root`` (tests build fake
sysfs/dev/etc trees): Edge TPUs and their USB link, link health and the Pi's power, the
plugdev group, the udev rule, cameras."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

from edgekit.backends.devices import list_edge_tpus
from edgekit.doctor_check import FAIL, OK, WARN, Check


def check_devices(root: Path) -> list[Check]:
    devices = list_edge_tpus(root)
    if devices is None:
        return [Check("edgetpu", WARN, "no /sys to look at (container?)", "run doctor on the host")]
    if not devices:
        return [
            Check(
                "edgetpu",
                FAIL,
                "no Edge TPU found (no USB 1a6e:089a / 18d1:9302, no apex)",
                "plug the Coral into a USB 3 (blue) port with the supplied cable; check "
                "`lsusb`; for PCIe/M.2 install gasket-dkms",
            )
        ]
    checks = []
    for d in devices:
        name = f"edgetpu {d.name}"
        detail = f"{d.path}" + (
            ""
            if d.initialized is not False
            else " (1a6e:089a: firmware not loaded yet; it loads on first use)"
        )
        if d.type != "usb" or d.speed_mbps is None:
            checks.append(Check(name, OK, detail))
        elif d.speed_mbps >= 5000:
            checks.append(Check(name, OK, f"{detail}, USB 3 link ({d.speed_mbps} Mb/s)"))
        else:
            checks.append(
                Check(
                    name,
                    WARN,
                    f"{detail}, USB 2 link ({d.speed_mbps} Mb/s): expect 100-200 ms per "
                    "inference instead of a few ms",
                    "plug it into a USB 3 (blue) port, directly or through a powered USB 3 hub",
                )
            )
    return checks


def check_link_health(root: Path) -> list[Check]:
    """Per USB Edge TPU: resets and disconnects since boot (kernel log), autosuspend; for the
    Pi: under-voltage and throttling (firmware flags). The USB speed is check_devices' (above).
    Each finding carries its fix (:mod:`edgekit.edgetpu.link`)."""
    from edgekit.backends.linkstate import read_links, read_power
    from edgekit.edgetpu import link

    checks = []
    for s in read_links(root):
        name = f"link {s.device}"
        found = link.link_findings(None, s.autosuspend, s.kernel)
        checks += [Check(name, f.severity, f.detail, f.fix) for f in found]
        if not found:
            resets = ("kernel log not readable: resets unknown (run doctor with sudo)"
                      if s.kernel is None else "no USB resets or disconnects since boot")
            checks.append(Check(name, OK, f"{s.port}: {resets}, autosuspend "
                                f"{s.autosuspend or 'unknown'}"))  # fmt: skip
    power = read_power(root)
    if power.throttled is None and power.hwmon_alarm is None:
        return checks  # not a Raspberry Pi, or its firmware flags are not readable
    found = link.power_findings(power.throttled, power.hwmon_alarm)
    checks += [Check("power", f.severity, f.detail, f.fix) for f in found]
    if not found:
        word = f"get_throttled=0x{power.throttled:x}" if power.throttled is not None else ""
        checks.append(Check("power", OK, f"no under-voltage or throttling ({power.source}"
                            f"{': ' + word if word else ''})"))  # fmt: skip
    return checks


def _groups(root: Path) -> dict[str, tuple[int, list[str]]]:
    out = {}
    try:
        for line in (root / "etc/group").read_text().splitlines():
            parts = line.split(":")
            if len(parts) >= 4:
                out[parts[0]] = (int(parts[2]), [u for u in parts[3].split(",") if u])
    except (OSError, ValueError):
        pass
    return out


def check_plugdev(root: Path, user: str, uid: int, gids: list[int]) -> Check:
    if uid == 0:
        return Check(
            "plugdev",
            OK,
            "running as root (the service runs as user edgekit: "
            "install-service.sh puts it in plugdev)",
        )
    groups = _groups(root)
    if "plugdev" not in groups:
        return Check(
            "plugdev",
            FAIL,
            "no plugdev group",
            f"sudo groupadd plugdev && sudo usermod -aG plugdev {user}, then log out and back in",
        )
    gid, members = groups["plugdev"]
    if gid in gids:
        return Check("plugdev", OK, f"{user} is in plugdev")
    if user in members:
        return Check(
            "plugdev",
            WARN,
            f"{user} was added to plugdev but this session predates it",
            "log out and back in (or reboot)",
        )
    return Check(
        "plugdev",
        FAIL,
        f"{user} is not in the plugdev group",
        f"sudo usermod -aG plugdev {user}, then log out and back in",
    )


def check_udev(root: Path, uid: int) -> Check:
    rules = sorted(
        list((root / "etc/udev/rules.d").glob("*edgetpu*"))
        + list((root / "lib/udev/rules.d").glob("60-libedgetpu1-*.rules"))
        + list((root / "usr/lib/udev/rules.d").glob("60-libedgetpu1-*.rules"))
    )
    if rules:
        return Check("udev rule", OK, "/" + str(rules[0].relative_to(root)))
    return Check(
        "udev rule",
        WARN if uid == 0 else FAIL,
        "no Edge TPU udev rule: only root can open the Coral",
        "sudo bash scripts/setup-pi.sh writes it (/etc/udev/rules.d/99-edgetpu-accelerator.rules)"
        ", then unplug and replug the Coral",
    )


def check_cameras(root: Path, import_module: Callable = importlib.import_module) -> Check:
    videos = sorted(p.name for p in (root / "dev").glob("video*"))
    try:
        import_module("picamera2")
        picam = "picamera2 importable"
    except Exception:  # absent, or libcamera missing (it never imports off Raspberry Pi OS)
        picam = "picamera2 not importable"
    detail = (", ".join("/dev/" + v for v in videos) or "no /dev/video*") + f"; {picam}"
    if videos or picam == "picamera2 importable":
        return Check("camera", OK, detail)
    return Check(
        "camera",
        WARN,
        detail,
        "connect a camera (Pi camera: sudo apt install "
        "python3-picamera2), or serve from a video file",
    )
