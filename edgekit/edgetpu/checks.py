"""`edgekit doctor`'s Edge TPU stack checks: the libedgetpu/interpreter pair against the stack
table, the USB device nodes (permission, who holds them) and the child-process probe that loads
the delegate and runs a tiny compiled model.

Every path is read below ``root`` (tests build fake /sys, /dev, /proc, /etc and dpkg trees);
nothing here loads libedgetpu in this process: :func:`edgekit.backends.probe.probe` does it in a
child.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from edgekit.backends.devices import EdgeTpuDevice
from edgekit.doctor import FAIL, LIB_DIRS, OK, WARN, Check, _dpkg_installed, _groups
from edgekit.edgetpu import stack

SETUP_FIX = (
    "sudo bash scripts/setup-pi.sh (installs the pair `edgekit stack` names and replaces the "
    "library)"
)


def _first_interpreter(providers: dict[str, str | None]) -> tuple[str, str] | None:
    for name in ("ai_edge_litert", "tflite_runtime", "tensorflow"):
        if providers.get(name):
            return name, str(providers[name])
    return None


def check_pair(root: Path, providers: dict[str, str | None]) -> Check:
    """The installed libedgetpu package and the interpreter edgekit will use, by TF version."""
    pkgs = _dpkg_installed(root)
    interp = _first_interpreter(providers)
    if not pkgs or interp is None:
        return Check(
            "stack",
            WARN,
            "cannot pair: " + ("no libedgetpu package" if not pkgs else "no interpreter"),
            "see `edgekit stack`",
        )
    pkg, version = sorted(pkgs.items())[0]
    lib_tf = stack.libedgetpu_tf(version)
    interp_tf = stack.interpreter_tf(*interp)
    who = (
        f"{pkg} {version} (TF {lib_tf or '?'}) with {interp[0]} {interp[1]} (TF {interp_tf or '?'})"
    )
    status, why = stack.pair_status(lib_tf, interp_tf)
    if status == "match":
        return Check("stack", OK, f"{who}: {why}")
    if status == "crash":
        return Check("stack", FAIL, f"{who}: {why}", SETUP_FIX)
    return Check(
        "stack",
        WARN,
        f"{who}: not a known pair ({why}); the probe below decides",
        "`edgekit stack` names a proven pair; scripts/setup-pi.sh installs it",
    )


def usb_node(root: Path, device: EdgeTpuDevice) -> str | None:
    """/dev/bus/usb/BBB/DDD of a USB device, from its sysfs busnum/devnum."""
    base = root / device.path.lstrip("/")
    try:
        bus = int((base / "busnum").read_text().strip())
        dev = int((base / "devnum").read_text().strip())
    except (OSError, ValueError):
        return None
    return f"/dev/bus/usb/{bus:03d}/{dev:03d}"


def device_node(root: Path, device: EdgeTpuDevice) -> str | None:
    if device.type == "usb":
        return usb_node(root, device)
    return "/dev/" + device.path.rsplit("/", 1)[-1]  # apex_N


def check_node(root: Path, device: EdgeTpuDevice, uid: int, gids: list[int]) -> Check:
    """Can this user open the device node read-write?"""
    name = f"access {device.name}"
    node = device_node(root, device)
    if node is None:
        return Check(name, WARN, "device node unknown (no busnum/devnum in sysfs)")
    try:
        st = os.stat(root / node.lstrip("/"))
    except OSError:
        return Check(name, FAIL, f"{node} does not exist", "unplug and replug the Coral")
    groups = {gid: n for n, (gid, _) in _groups(root).items()}
    mode = stat.filemode(st.st_mode)
    owner = f"{mode} uid {st.st_uid} group {groups.get(st.st_gid, st.st_gid)}"
    m = st.st_mode
    can = (
        uid == 0
        or (st.st_uid == uid and m & 0o600 == 0o600)
        or (st.st_gid in gids and m & 0o060 == 0o060)
        or m & 0o006 == 0o006
    )
    if can:
        return Check(name, OK, f"{node} ({owner}): read-write for you")
    return Check(
        name,
        FAIL,
        f"{node} ({owner}): you cannot open it read-write",
        "install the udev rule (it comes with libedgetpu; scripts/setup-pi.sh) and join "
        "plugdev, then replug the Coral",
    )


def holders(root: Path, node: str) -> tuple[list[tuple[int, str]], int]:
    """([(pid, command line)] of processes with ``node`` open, number of /proc/PID/fd we could
    not read)."""
    found, hidden = [], 0
    proc = root / "proc"
    for d in sorted(proc.iterdir(), key=lambda p: p.name) if proc.is_dir() else []:
        if not d.name.isdigit():
            continue
        try:
            fds = list((d / "fd").iterdir())
        except OSError:
            hidden += 1
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target == node:
                try:
                    raw = (d / "cmdline").read_bytes()
                    cmd = raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()
                except OSError:
                    cmd = "?"
                found.append((int(d.name), cmd[:80] or "?"))
                break
    return found, hidden


def check_holders(root: Path, device: EdgeTpuDevice) -> tuple[Check, bool]:
    """(check, free). One process owns one Edge TPU: a second one that opens it kills the first
    ("USB transfer error 5")."""
    name = f"users {device.name}"
    # edgekit's own lock first: /proc of the service's user is often unreadable, its lock file
    # (edgekit.backends.devicelock) is not.
    from edgekit.backends import devicelock

    owner = devicelock.holder(devicelock.lock_key(device.name, device.path))
    if owner is not None:
        pid = f"PID {owner.pid}" if owner.pid is not None else "another process"
        return Check(
            name,
            WARN,
            f"{device.name} is in use by {pid} ({owner.command or '?'}; lock {owner.path})",
            "stop that process to use the Coral here (a second process opening it makes "
            "libedgetpu abort the first)",
        ), False
    node = device_node(root, device)
    if node is None:
        return Check(name, WARN, "device node unknown: cannot tell who uses it"), True
    found, hidden = holders(root, node)
    note = f" ({hidden} processes not readable: run doctor as root to see them)" if hidden else ""
    if not found:
        return Check(name, OK, f"{node} is free{note}"), True
    who = "; ".join(f"PID {pid} ({cmd})" for pid, cmd in found)
    return Check(
        name,
        WARN,
        f"{node} is in use by {who}",
        "stop that process to use the Coral here (a second process opening it makes "
        "libedgetpu abort both)",
    ), False


def probe_library(root: Path, explicit: str | None) -> str | None:
    """The libedgetpu file the probe loads: $EDGEKIT_LIBEDGETPU/--libedgetpu, else the one found
    under ``root`` (as check_libedgetpu looks), else what the dynamic loader would load."""
    from edgekit.backends.probe import ENV, resolve_library

    chosen = explicit or os.environ.get(ENV)
    if chosen:
        return chosen
    for d in LIB_DIRS:
        if (root / d / "libedgetpu.so.1").exists():
            return str(root / d / "libedgetpu.so.1")
    if str(root) == "/":
        found = resolve_library()
        return str(found) if found else None
    return None


def check_probe(
    library: str | None,
    device: str | None,
    timeout: float,
    need_runtime: int | None = None,
    library_only: bool = False,
) -> list[Check]:
    """Load the delegate and run the shipped compiled model in a child (see backends/probe)."""
    from edgekit.backends.probe import probe

    if library is None:
        return [Check("probe", FAIL, "no libedgetpu.so.1 to load", SETUP_FIX)]
    v = probe(library, device, timeout, model="-" if library_only else None)
    out = []
    if v.version:
        out.append(Check("libedgetpu runtime", OK, f"{v.version} (runtime {v.runtime})"))
    if need_runtime is not None and v.runtime is not None and v.runtime < need_runtime:
        out.append(
            Check(
                "model runtime",
                FAIL,
                f"the model needs Edge TPU runtime "
                f"{need_runtime}, this libedgetpu is runtime {v.runtime}",
                "install the pair `edgekit stack` names, or recompile the model with "
                f"edgetpu_compiler -m {v.runtime}",
            )
        )
    elif need_runtime is not None and v.runtime is not None:
        out.append(
            Check(
                "model runtime",
                OK,
                f"the model needs runtime {need_runtime}; libedgetpu has {v.runtime}",
            )
        )
    if library_only and v.ok:
        return out
    status = OK if v.ok else FAIL
    out.append(
        Check("library load" if library_only else "probe", status, v.detail, "" if v.ok else v.fix)
    )
    return out
