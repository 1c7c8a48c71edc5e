"""`edgekit doctor`: the checks a user debugging a Coral on a Pi needs, each ok / warn / fail with
the fix. Every file path is read relative to ``root`` (tests build fake sysfs/dev/etc trees);
nothing here loads libedgetpu, opens a device or imports TensorFlow.
"""

from __future__ import annotations

import importlib
import os
import platform
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from edgekit.backends.devices import list_edge_tpus
from edgekit.backends.providers import installed_providers

OK, WARN, FAIL = "ok", "warn", "fail"
LIB_DIRS = (
    "usr/lib/aarch64-linux-gnu",
    "usr/lib/arm-linux-gnueabihf",
    "usr/lib/x86_64-linux-gnu",
    "usr/lib",
    "usr/local/lib",
    "lib/aarch64-linux-gnu",
    "lib/x86_64-linux-gnu",
    "lib",
)
APT_FIX = (
    "sudo bash scripts/setup-pi.sh: it installs the libedgetpu built for your interpreter "
    "(`edgekit stack` names it; Google's own package crashes in current interpreters)"
)


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def check_python(version: str | None = None) -> Check:
    v = version or platform.python_version()
    major, minor = (int(x) for x in v.split(".")[:2])
    if (major, minor) < (3, 9):
        return Check("python", FAIL, f"Python {v}", "edgekit needs Python >= 3.9")
    note = ""
    if (major, minor) > (3, 9):
        note = " (Google's pycoral needs <= 3.9: edgekit uses the libedgetpu delegate instead)"
    return Check("python", OK, f"Python {v}{note}")


def check_interpreter(providers: dict[str, str | None] | None = None) -> Check:
    found = providers if providers is not None else installed_providers()
    for name in ("ai_edge_litert", "tflite_runtime"):
        if found.get(name):
            return Check("interpreter", OK, f"{name} {found[name]}")
    if found.get("tensorflow"):
        return Check(
            "interpreter",
            WARN,
            f"only tensorflow {found['tensorflow']} (slow to load)",
            "pip install ai-edge-litert",
        )
    return Check(
        "interpreter", FAIL, "no TFLite interpreter installed", "pip install ai-edge-litert"
    )


def check_pycoral(import_module: Callable = importlib.import_module) -> Check:
    """Google's pycoral is optional (the delegate is used without it); PyPI's ``pycoral`` is an
    unrelated project that only shadows the name."""
    try:
        import_module("pycoral")
    except Exception:
        return Check("pycoral", OK, "not installed (not needed: edgekit loads the delegate)")
    try:
        mod = import_module("pycoral.utils.edgetpu")
        ok = hasattr(mod, "make_interpreter")
    except Exception:
        ok = False
    if ok:
        return Check("pycoral", OK, "Google's pycoral (used for the Edge TPU)")
    return Check(
        "pycoral",
        WARN,
        "a `pycoral` that is not Google's (the unrelated PyPI package)",
        "pip uninstall pycoral (Google's comes from Coral's repository, Python <= 3.9)",
    )


def _dpkg_installed(root: Path) -> dict[str, str]:
    """{package: version} of installed libedgetpu1-* packages from /var/lib/dpkg/status."""
    try:
        text = (root / "var/lib/dpkg/status").read_text(errors="replace")
    except OSError:
        return {}
    out = {}
    for block in text.split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", block, re.M))
        name = fields.get("Package", "")
        if name.startswith("libedgetpu1-") and "install ok installed" in fields.get("Status", ""):
            out[name] = fields.get("Version", "?")
    return out


def check_libedgetpu(root: Path) -> Check:
    libs = [
        str(Path("/") / d / "libedgetpu.so.1")
        for d in LIB_DIRS
        if (root / d / "libedgetpu.so.1").exists()
    ]
    pkgs = _dpkg_installed(root)
    if not libs and not pkgs:
        return Check("libedgetpu", FAIL, "libedgetpu.so.1 not found", APT_FIX)
    flavour = ", ".join(f"{k} {v}" for k, v in sorted(pkgs.items())) or "not from a package"
    detail = f"{libs[0] if libs else 'library file not found'} ({flavour})"
    if not libs:
        return Check(
            "libedgetpu",
            FAIL,
            detail,
            "reinstall: sudo apt-get install --reinstall "
            + (next(iter(pkgs)) if pkgs else "libedgetpu1-std"),
        )
    if "libedgetpu1-max" in pkgs:
        return Check(
            "libedgetpu",
            WARN,
            detail + ": maximum clock, runs hot",
            "keep the Coral at <= 25 C ambient, or install libedgetpu1-std",
        )
    return Check("libedgetpu", OK, detail)


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


def check_compiler(machine: str, path: str | None) -> Check:
    if machine.lower() not in ("x86_64", "amd64"):
        return Check("edgetpu_compiler", OK, f"not needed on {machine}: compile on an x86-64 host")
    exe = shutil.which("edgetpu_compiler", path=path)
    if not exe:
        return Check(
            "edgetpu_compiler",
            WARN,
            "not on PATH: `edgekit convert` writes CPU-only bundles until it is installed",
            "sudo bash scripts/setup-host.sh (installs edgetpu-compiler from Coral's apt "
            "repository)",
        )
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=20)
        version = (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        version = "version unknown"
    return Check("edgetpu_compiler", OK, f"{exe}: {version}")


def run_checks(
    root: str | os.PathLike = "/",
    *,
    user: str | None = None,
    uid: int | None = None,
    gids: list[int] | None = None,
    machine: str | None = None,
    path: str | None = None,
    import_module: Callable = importlib.import_module,
    providers: dict[str, str | None] | None = None,
    probe: bool = False,
    library: str | None = None,
    device: str | None = None,
    model: str | None = None,
    timeout: float = 30.0,
) -> list[Check]:
    """All checks in order. Arguments default to this process and machine; tests pass fakes.

    ``probe``: also load libedgetpu in a child process and run a tiny compiled model on the
    Edge TPU (``device``, default the first free one), with ``timeout`` seconds; ``library``
    overrides which libedgetpu; ``model`` is a bundle or compiled model whose required Edge TPU
    runtime is compared with the library's before anything loads it."""
    root = Path(root)
    if uid is None:
        uid = os.getuid() if hasattr(os, "getuid") else 1000
    if user is None:
        import getpass

        user = getpass.getuser()
    gids = gids if gids is not None else (os.getgroups() if hasattr(os, "getgroups") else [])
    from edgekit.edgetpu import checks as tpu

    found = providers if providers is not None else installed_providers()
    devices = list_edge_tpus(root)
    per_device, free = [], []
    for d in devices or []:
        per_device.append(tpu.check_node(root, d, uid, gids))
        held, is_free = tpu.check_holders(root, d)
        per_device.append(held)
        if is_free:
            free.append(d)
    checks = [
        check_python(),
        check_interpreter(found),
        check_pycoral(import_module),
        check_libedgetpu(root),
        tpu.check_pair(root, found),
        *check_devices(root),
        *per_device,
        *check_link_health(root),
        check_plugdev(root, user, uid, gids),
        check_udev(root, uid),
        check_cameras(root, import_module),
        check_compiler(machine or platform.machine(), path),
    ]
    if probe:
        checks += _probe_checks(root, tpu, devices, free, library, device, model, timeout)
    return checks


def _probe_checks(root, tpu, devices, free, library, device, model, timeout) -> list[Check]:
    need = None
    if model:
        from edgekit.backends.probe import required_runtime_of

        need = required_runtime_of(model)
    lib = tpu.probe_library(root, library)
    if devices is not None and not devices:
        # No device to run a model on: still load the library (in a child) for its version.
        out = tpu.check_probe(lib, None, timeout, need, library_only=True) if lib else []
        return out + [Check("probe", WARN, "skipped: no Edge TPU attached to run a model on",
                            "plug the Coral in and run doctor again")]  # fmt: skip
    if devices and not free:
        return [Check("probe", WARN, "skipped: every Edge TPU is in use (see above)",
                      "stop the process using it, then run doctor again")]  # fmt: skip
    target = device or (free[0].name if free else None)
    # The probe opens the device: hold its lock meanwhile, so that no edgekit process opens it
    # at the same moment (one of the two would abort).
    from edgekit.backends import devicelock
    from edgekit.backends.devices import select_device
    from edgekit.errors import EdgekitError

    chosen = select_device(devices, target) if devices else None
    try:
        lock = devicelock.acquire(chosen.name if chosen else (target or "edgetpu"),
                                  chosen.path if chosen else None)  # fmt: skip
    except EdgekitError as e:
        return [Check("probe", WARN, f"skipped: {e.message}", e.hint or "")]
    try:
        return tpu.check_probe(lib, target, timeout, need)
    finally:
        lock.release()


def report(checks: list[Check]) -> dict:
    return {"checks": [c.to_dict() for c in checks], "ok": all(c.status != FAIL for c in checks)}
