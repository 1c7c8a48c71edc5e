"""Link health: the knowledge (edgekit.edgetpu.link), the reading of a fake sysfs/devfs/kernel
log (edgekit.backends.linkstate) and what `edgekit doctor` says about it, with the fix."""

from __future__ import annotations

import json
import subprocess

from edgekit.backends.linkstate import read_kernel_log, read_links, read_power
from edgekit.edgetpu import link
from tests.tty import EDGEKIT, run_in_pty

from .usb_fakes import kernel_log, make_coral

RESET = "usb 2-1: reset SuperSpeed USB device number 3 using xhci_hcd"


def troubled_pi(root):
    """A Pi whose Coral reset twice (and another port once), is on a USB 2 link, may be
    autosuspended, and whose supply sags now (get_throttled 0x50005, hwmon alarm)."""
    make_coral(root, speed=480, control="auto", kernel=[
        "usb 2-1: new SuperSpeed USB device number 3 using xhci_hcd",
        RESET, "usb 1-1.2: reset high-speed USB device number 4 using xhci_hcd",
        "hwmon hwmon1: Undervoltage detected!", RESET,
        "usb 2-1: USB disconnect, device number 3",
    ])  # fmt: skip
    fw = root / "sys/devices/platform/soc/soc:firmware"
    fw.mkdir(parents=True)
    (fw / "get_throttled").write_text("50005\n")
    hw = root / "sys/class/hwmon/hwmon1"
    hw.mkdir(parents=True)
    (hw / "name").write_text("rpi_volt\n")
    (hw / "in0_lcrit_alarm").write_text("1\n")
    return root


def test_throttled_bits_mean_what_the_firmware_documents():
    d = link.decode_throttled(0x50005)
    assert d["now"] == ["under-voltage detected", "currently throttled"]
    assert d["since_boot"] == ["under-voltage has occurred", "throttling has occurred"]
    assert link.decode_throttled(0) == {"now": [], "since_boot": []}
    assert link.parse_throttled("throttled=0x50005\n") == 0x50005
    assert link.parse_throttled("80008") == 0x80008 and link.parse_throttled("n/a") is None
    codes = [f.code for f in link.power_findings(0x50000, None)]
    assert codes == ["undervoltage_since_boot", "throttled"]
    assert [f.code for f in link.power_findings(0, True)] == ["undervoltage_now"]


def test_kernel_log_counts_only_the_corals_port():
    lines = [link.kmsg_text(f"6,{i},0,-;{m}") for i, m in enumerate(
        [RESET, "usb 2-10: reset SuperSpeed USB device number 7 using xhci_hcd", RESET,
         "usb 2-1: USB disconnect, device number 3", "Under-voltage detected! (0x00050005)"])]
    k = link.parse_kernel_log(lines, "2-1")
    assert (k.resets, k.disconnects, k.undervoltage) == (2, 1, 1)
    assert k.last_reset == RESET
    assert link.parse_kernel_log(lines, "2-10").resets == 1
    assert link.kmsg_text("plain journal text; with a semicolon") == (
        "plain journal text; with a semicolon")


def test_latency_drift_against_the_first_minute():
    assert link.drift_ratio(5.0, 9.0) == 1.8 and link.drift_ratio(None, 9.0) is None
    found = link.link_findings(5000, "on", link.KernelEvents(), drift=1.8)
    assert [f.code for f in found] == ["latency_drift"] and "bench" in found[0].fix
    assert link.link_findings(5000, "on", link.KernelEvents(), drift=1.2) == []


def test_reading_a_troubled_pi(tmp_path):
    root = troubled_pi(tmp_path)
    (s,) = read_links(root)
    assert (s.device, s.port, s.ids, s.speed_mbps, s.autosuspend) == (
        "usb:0", "2-1", "18d1:9302", 480, "auto")
    assert s.node == "/dev/bus/usb/002/003"
    assert (s.kernel.resets, s.kernel.disconnects, s.kernel.undervoltage) == (2, 1, 1)
    p = read_power(root)
    assert (p.throttled, p.source, p.hwmon_alarm) == (0x50005, "sysfs get_throttled", True)
    assert p.to_dict()["throttled_hex"] == "0x50005"
    # no kernel log readable: unknown, not zero
    (root / "dev/kmsg").unlink()
    assert read_kernel_log(root) is None and read_links(root)[0].kernel is None


def test_doctor_names_each_finding_and_its_fix(tmp_path):
    root = troubled_pi(tmp_path / "root")
    out = subprocess.run([*EDGEKIT, "doctor", "--no-probe", "--json", "--root", str(root)],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    checks = json.loads(out.stdout)["checks"]
    by = {}
    for c in checks:
        by.setdefault(c["name"], []).append(c)
    assert out.returncode == 1  # under-voltage now is a failure
    resets = next(c for c in by["link usb:0"] if "USB reset(s)" in c["detail"])
    assert resets["status"] == "warn" and resets["detail"].startswith("2 USB reset(s) since boot")
    assert RESET in resets["detail"] and "cable" in resets["fix"]
    auto = next(c for c in by["link usb:0"] if "autosuspend" in c["detail"])
    assert "power/control=on" in auto["fix"] and "setup-pi.sh" in auto["fix"]
    assert any(c["detail"] == "1 disconnect(s) since boot" for c in by["link usb:0"])
    power = {c["detail"].split(":")[0]: c for c in by["power"]}
    assert power["under-voltage NOW"]["status"] == "fail"
    assert "supply" in power["under-voltage NOW"]["fix"]
    assert any(c["detail"].startswith("get_throttled=0x50005: currently throttled, throttling "
                                      "has occurred") for c in by["power"])  # fmt: skip
    assert next(c for c in by["edgetpu usb:0"])["status"] == "warn"  # USB 2, as before
    # the same on a terminal, with each fix on its own line
    code, text = run_in_pty([*EDGEKIT, "doctor", "--no-probe", "--root", str(root)], timeout=120)
    assert code == 1 and "[FAIL] power: under-voltage NOW" in text
    assert "[WARN] link usb:0: 2 USB reset(s) since boot" in text and "fix: the link resets" in text


def test_doctor_on_a_healthy_link(tmp_path):
    root = tmp_path / "root"
    make_coral(root, kernel=["usb 2-1: new SuperSpeed USB device number 3 using xhci_hcd"])
    fw = root / "sys/devices/platform/soc/soc:firmware"
    fw.mkdir(parents=True)
    (fw / "get_throttled").write_text("0\n")
    out = subprocess.run([*EDGEKIT, "doctor", "--no-probe", "--json", "--root", str(root)],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    checks = {c["name"]: c for c in json.loads(out.stdout)["checks"]}
    assert checks["link usb:0"]["status"] == "ok"
    assert checks["link usb:0"]["detail"] == (
        "2-1: no USB resets or disconnects since boot, autosuspend on")
    assert checks["power"] == {"name": "power", "status": "ok", "fix": "",
                               "detail": "no under-voltage or throttling (sysfs get_throttled: "
                               "get_throttled=0x0)"}  # fmt: skip
    # later, the kernel logs a reset: the next doctor run says so
    kernel_log(root, RESET)
    out = subprocess.run([*EDGEKIT, "doctor", "--no-probe", "--json", "--root", str(root)],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    checks = {c["name"]: c for c in json.loads(out.stdout)["checks"]}
    assert checks["link usb:0"]["status"] == "warn"
    assert checks["link usb:0"]["detail"].startswith("1 USB reset(s)")
