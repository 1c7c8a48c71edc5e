"""One process per Edge TPU: the per-device lock, between real processes.

The Edge TPU itself is the fake stack of runtime_fakes (the boundary that cannot exist here);
the processes, the lock files and the CLI are real."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edgekit.backends import devicelock
from edgekit.classify import Classifier
from tests.edgetpu_standin import edgetpu_standins  # noqa: F401 - the fixture

from .runtime_fakes import USB3, FakeStack

ROOT = Path(__file__).resolve().parents[2]

# A second edgekit process that opens the (fake) usb:0 and keeps it until its stdin closes.
HOLDER = textwrap.dedent("""
    import sys
    from edgekit import backends
    from edgekit.backends import devicelock
    from edgekit.classify import Classifier
    from tests.runtime.runtime_fakes import USB3, FakeStack

    backends.register_backend("edgetpu", backends.EdgeTpuBackend(FakeStack([USB3])))
    devicelock.set_owner(__import__("os").getpid(), "edgekit serve")
    clf = Classifier(sys.argv[1], device="usb:0")
    print("holding", clf.runner.device, flush=True)
    sys.stdin.read()
""")

# The CLI of a process whose libedgetpu is the fake stack.
CLI = textwrap.dedent("""
    from edgekit import backends
    from tests.runtime.runtime_fakes import USB3, FakeStack

    backends.register_backend("edgetpu", backends.EdgeTpuBackend(FakeStack([USB3])))
    from edgekit.cli import run
    run()
""")


@pytest.fixture
def compiled(coral_dir) -> Path:
    return coral_dir / "mobilenet_v1_0.25_128_quant_edgetpu.tflite"


@pytest.fixture
def holder(compiled):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(compiled)], cwd=ROOT, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    line = proc.stdout.readline()
    assert line.strip() == "holding usb:0", proc.stderr.read()
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
    proc.stdout.close()
    proc.stderr.close()
    proc.stdin.close()


def test_second_process_gets_one_line_naming_the_owner(holder, compiled, use_stack):
    use_stack(FakeStack([USB3]))
    with pytest.raises(devicelock.DeviceBusy) as e:
        Classifier(compiled, device="usb:0")
    assert e.value.message == f"usb:0 is in use by PID {holder.pid} (edgekit serve)"
    assert "--device cpu" in str(e.value)
    # "auto" with the Coral attached but owned: the same error, not a silent CPU run
    with pytest.raises(devicelock.DeviceBusy):
        Classifier(compiled, device="auto")


def test_cli_commands_refuse_a_device_in_use(holder, compiled, coral_dir):
    photo = str(coral_dir / "cat.bmp")
    for args in (["classify", str(compiled), photo, "--device", "usb"],
                 ["bench", str(compiled), "--device", "usb:0", "--runs", "3"]):  # fmt: skip
        p = subprocess.run([sys.executable, "-c", CLI, *args], cwd=ROOT, capture_output=True,
                           text=True, timeout=120)  # fmt: skip
        assert p.returncode == 1, p.stderr
        assert p.stderr.splitlines() == [
            f"Error: usb:0 is in use by PID {holder.pid} (edgekit serve); one process per Edge "
            "TPU (a second one would crash the first): stop that one (sudo systemctl stop "
            "edgekit, if it is the service), use another Coral, or pass --device cpu"
        ]
        assert p.stdout == ""


def test_lock_of_a_killed_process_is_taken_over(holder, compiled, use_stack):
    holder.send_signal(signal.SIGKILL)  # no chance to clean up, like a segfault
    holder.wait(10)
    lock_file = Path(os.environ["EDGEKIT_LOCK_DIR"]) / "usb-2-1.lock"
    assert lock_file.read_text().split("\n")[0] == str(holder.pid)  # left behind
    use_stack(FakeStack([USB3]))
    clf = Classifier(compiled, device="usb:0")
    assert lock_file.read_text().split("\n")[0] == str(os.getpid())
    assert devicelock.holder("usb-2-1").pid == os.getpid()
    clf.close()
    assert devicelock.holder("usb-2-1") is None
    assert lock_file.read_text() == ""


def test_reopen_in_the_same_process_and_release_on_close(compiled, use_stack):
    use_stack(FakeStack([USB3]))
    clf = Classifier(compiled, device="usb:0")
    clf.reopen()  # closes (releases) before it opens again: no self-deadlock
    assert devicelock.holder("usb-2-1").pid == os.getpid()
    clf.close()
    again = Classifier(compiled, device="usb:0")
    again.close()


def test_one_process_may_open_its_own_edgetpu_twice(compiled, use_stack):
    # libedgetpu shares one Edge TPU between the interpreters of one process: so does the lock
    use_stack(FakeStack([USB3]))
    a = Classifier(compiled, device="usb:0")
    b = Classifier(compiled, device=":0")
    a.close()
    assert devicelock.holder("usb-2-1").pid == os.getpid()  # b still holds it
    b.close()
    assert devicelock.holder("usb-2-1") is None


def test_failed_open_releases_the_lock(compiled, use_stack):
    use_stack(FakeStack([USB3], model_runtime=14, runtime=13))
    with pytest.raises(Exception, match="runtime 14"):
        Classifier(compiled, device="usb:0")
    assert devicelock.holder("usb-2-1") is None


def test_keys_and_directories(tmp_path, monkeypatch):
    assert devicelock.lock_key("usb:0", "/sys/bus/usb/devices/2-1") == "usb-2-1"
    assert devicelock.lock_key("usb:1") == "usb-1"
    assert devicelock.lock_key("pci:0", "/sys/class/apex/apex_0") == "pci-apex_0"
    assert devicelock.lock_key("edgetpu") == "edgetpu-0"
    monkeypatch.delenv("EDGEKIT_LOCK_DIR")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert devicelock.lock_dirs() == [
        Path("/run/edgekit"),
        tmp_path / "edgekit",
        Path("/tmp/edgekit-locks"),
    ]
    monkeypatch.setenv("EDGEKIT_LOCK_DIR", str(tmp_path / "mine"))
    with devicelock.acquire("usb:3") as lock:
        assert lock.path == tmp_path / "mine" / "usb-3.lock"
        assert oct(lock.path.stat().st_mode & 0o777) == oct(0o644)


def test_unusable_lock_directory_is_one_clear_error(tmp_path, monkeypatch):
    not_dir = tmp_path / "file"
    not_dir.write_text("x")
    monkeypatch.setenv("EDGEKIT_LOCK_DIR", str(not_dir))
    with pytest.raises(devicelock.EdgekitError, match="EDGEKIT_LOCK_DIR"):
        devicelock.acquire("usb:0")
    fifo_dir = tmp_path / "d"
    fifo_dir.mkdir()
    os.mkfifo(fifo_dir / "usb-0.lock")  # never blocks on a FIFO where the lock file should be
    monkeypatch.setenv("EDGEKIT_LOCK_DIR", str(fifo_dir))
    with pytest.raises(devicelock.EdgekitError, match="not a regular file"):
        devicelock.acquire("usb:0")


def test_doctor_names_the_owner_and_does_not_probe_a_device_in_use(
    holder,
    tmp_path,
    edgetpu_standins,  # noqa: F811
):
    # The owner runs as another user (the service): /proc/PID/fd is unreadable, its lock is not
    from .test_doctor_stack import checks, pi_with

    got = checks(pi_with(tmp_path, edgetpu_standins["works"]), probe=True)
    c = got["users usb:0"]
    assert c.status == "warn"
    assert c.detail.startswith(f"usb:0 is in use by PID {holder.pid} (edgekit serve; lock ")
    assert got["probe"].status == "warn" and "in use" in got["probe"].detail


def test_doctor_probe_holds_the_lock(tmp_path, edgetpu_standins, monkeypatch):  # noqa: F811
    from edgekit.edgetpu import checks as doctor_edgetpu

    from .test_doctor_stack import checks, pi_with

    seen = []
    real = doctor_edgetpu.check_probe

    def spy(*a, **k):
        seen.append(devicelock.holder("usb-2-1"))
        return real(*a, **k)

    monkeypatch.setattr(doctor_edgetpu, "check_probe", spy)
    got = checks(pi_with(tmp_path, edgetpu_standins["works"]), probe=True)
    assert got["probe"].status == "ok", got["probe"]
    assert seen[0].pid == os.getpid()  # held while the probe child opened the device
    assert devicelock.holder("usb-2-1") is None  # and released after
