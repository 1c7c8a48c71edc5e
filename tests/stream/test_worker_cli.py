"""`edgekit serve` as users run it, on a Coral that segfaults: the real CLI, the real worker
process, the real interpreter loading a stand-in libedgetpu (tests/edgetpu_standin) that dies
by SIGSEGV inside invoke() after N frames, and a fake sysfs showing one Coral on USB 3 (bind-
mounted over /sys/bus in a private mount namespace: the one boundary that cannot exist here)."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.edgetpu_standin import edgetpu_standins  # noqa: F401 - the fixture
from tests.runtime.runtime_fakes import make_sysfs

from .conftest import edgekit_cmd
from .stream_faults import compiled_model

ROOT = Path(__file__).resolve().parents[2]
MOUNT = 'mount --bind "$0/sys/bus" /sys/bus && exec "$@"'


def can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    p = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs none /mnt"],
                       capture_output=True, timeout=30)  # fmt: skip
    return p.returncode == 0


pytestmark = pytest.mark.skipif(
    not can_unshare(), reason="needs a private mount namespace (unshare -m) to fake sysfs"
)


@pytest.fixture
def on_coral(tmp_path, edgetpu_standins):  # noqa: F811 - the fixture
    """on_coral(args, mode="works", **standin_env) -> (argv, env): `edgekit ARGS` on a machine
    with one Coral on USB 3 whose libedgetpu is the ``mode`` stand-in."""
    root = make_sysfs(tmp_path / "root", usb=[("2-1", "18d1", "9302", 5000)])

    def cmd(args, mode="works", **standin_env):
        env = {**os.environ, "EDGEKIT_LIBEDGETPU": str(edgetpu_standins[mode]),
               "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1"}  # fmt: skip
        env.update({f"EDGETPU_STANDIN_{k}": str(v) for k, v in standin_env.items()})
        return ["unshare", "-m", "sh", "-c", MOUNT, str(root), *edgekit_cmd(), *args], env

    return cmd


def serve_args(coral_dir, labels_path, video, *extra) -> list[str]:
    return ["serve", "--model", str(compiled_model(coral_dir)), "--labels", str(labels_path),
            "--source", str(video), "--device", "usb", "-k", "2", *extra]  # fmt: skip


def segments(pid: int) -> list[str]:
    return glob.glob(f"/dev/shm/edgekit-{pid}-*")


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "X"


def test_serve_keeps_producing_results_after_its_worker_segfaults(
    on_coral, coral_dir, labels_path, video_avi
):
    argv, env = on_coral(serve_args(coral_dir, labels_path, video_avi), CRASH_AFTER=10)
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env, cwd=ROOT)  # fmt: skip
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    results = [x for x in lines if "frame" in x and "event" not in x]
    events = [x for x in lines if "event" in x]
    crashed = [e for e in events if e["event"] == "worker_crashed"]
    assert len(crashed) == 3 and all("killed by SIGSEGV" in e["message"] for e in crashed)
    assert [e["event"] for e in events].count("worker_restarted") == 3
    # 40 frames, one lost with each worker; results keep coming after every restart
    assert [r["frame"] for r in results] == [i for i in range(1, 41) if i not in (11, 22, 33)]
    assert "Traceback" not in err
    assert all(line.startswith(("Warning: ", "Info: ")) for line in err.splitlines()), err
    assert err.count("Warning: worker_crashed: inference worker killed by SIGSEGV") == 3
    assert segments(p.pid) == []


def test_second_process_stop_and_no_leftovers(on_coral, coral_dir, labels_path, video_avi):
    """While serve owns the Coral, classify and a second serve are refused with one line;
    SIGTERM then stops serve and its worker cleanly: exit 0, no traceback, shared memory
    unlinked, no process left."""
    argv, env = on_coral(serve_args(coral_dir, labels_path, video_avi, "--loop"))
    serve = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env, cwd=ROOT)  # fmt: skip
    try:
        first = json.loads(serve.stdout.readline())
        assert first["frame"] == 1, first
        workers = children(serve.pid)
        assert workers and segments(serve.pid)

        photo = str(coral_dir / "cat.bmp")
        argv2, env2 = on_coral(["classify", str(compiled_model(coral_dir)), photo, "-d", "usb"])
        p = subprocess.run(argv2, capture_output=True, text=True, timeout=120, env=env2)
        assert p.returncode == 1
        assert p.stderr.splitlines()[-1].startswith(
            f"Error: usb:0 is in use by PID {serve.pid} (edgekit serve); "
        ), p.stderr
        assert "Traceback" not in p.stderr
        # a second serve too (its worker is refused the device; serve says so and exits 1)
        p = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
        assert p.returncode == 1 and p.stdout == ""
        assert p.stderr.splitlines()[-1].startswith(
            f"Error: usb:0 is in use by PID {serve.pid} (edgekit serve); "
        ), p.stderr
        assert "Traceback" not in p.stderr

        serve.send_signal(signal.SIGTERM)
        out, err = serve.communicate(timeout=30)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.communicate()
    assert serve.returncode == 0, err
    assert "Traceback" not in err
    assert segments(serve.pid) == []
    deadline = time.monotonic() + 10
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(w) for w in workers)


def test_ctrl_c_in_a_terminal_stops_serve_and_worker_quietly(on_coral, coral_dir, labels_path,
                                                             video_avi):  # fmt: skip
    # Ctrl-C signals the whole foreground process group: serve, its worker, the resource tracker
    argv, env = on_coral(serve_args(coral_dir, labels_path, video_avi, "--loop"))
    serve = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env, cwd=ROOT, start_new_session=True)  # fmt: skip
    try:
        assert json.loads(serve.stdout.readline())["frame"] == 1
        os.killpg(serve.pid, signal.SIGINT)
        out, err = serve.communicate(timeout=30)
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.communicate()
    assert serve.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert segments(serve.pid) == []


def processes_with(text: str) -> list[int]:
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if text in d.joinpath("cmdline").read_bytes().decode("utf-8", "replace"):
                    found.append(int(d.name))
            except OSError:
                pass
    return [p for p in found if alive(p)]


def test_sigterm_while_the_edgetpu_open_hangs(on_coral, coral_dir, labels_path, video_avi,
                                              edgetpu_standins, tmp_path):  # noqa: F811  # fmt: skip
    """libedgetpu hangs while the worker opens the Coral (inside the Edge TPU probe, a child of
    the worker): SIGTERM still stops serve at once, exit 0, and takes the hung processes along."""
    log = tmp_path / "standin.log"
    argv, env = on_coral(serve_args(coral_dir, labels_path, video_avi), mode="hang", LOG=log)
    serve = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env, cwd=ROOT)  # fmt: skip
    hung = str(edgetpu_standins["hang"])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (log.exists() and "prepare" in log.read_text()):
            time.sleep(0.2)
        assert "prepare" in log.read_text(), "the probe never reached the hanging Prepare"
        assert processes_with(hung)
        t0 = time.monotonic()
        serve.send_signal(signal.SIGTERM)
        out, err = serve.communicate(timeout=30)
        took = time.monotonic() - t0
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.communicate()
    assert serve.returncode == 0, err
    assert took < 5 and out == "" and "Traceback" not in err
    deadline = time.monotonic() + 5
    while processes_with(hung) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_with(hung) == []


def test_serve_spreads_frames_over_every_coral(tmp_path, edgetpu_standins, coral_dir,  # noqa: F811
                                               labels_path, video_avi):  # fmt: skip
    """`--device usb:*` on a machine with two Corals: one worker per Coral (both invoke many
    frames), every frame delivered in frame order."""
    root = make_sysfs(tmp_path / "root2", usb=[("2-1", "18d1", "9302", 5000),
                                               ("2-2", "18d1", "9302", 5000)])  # fmt: skip
    log = tmp_path / "standin.log"
    env = {**os.environ, "EDGEKIT_LIBEDGETPU": str(edgetpu_standins["works"]),
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "EDGETPU_STANDIN_DEVICES": "2",
           "EDGETPU_STANDIN_INVOKE_MS": "10", "EDGETPU_STANDIN_LOG": str(log)}  # fmt: skip
    args = serve_args(coral_dir, labels_path, video_avi)
    args[args.index("--device") + 1] = "usb:*"
    p = subprocess.run(["unshare", "-m", "sh", "-c", MOUNT, str(root), *edgekit_cmd(), *args],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)  # fmt: skip
    assert p.returncode == 0, p.stderr
    lines = [json.loads(line) for line in p.stdout.splitlines()]
    assert [x["frame"] for x in lines if "event" not in x] == list(range(1, 41))
    invokes: dict[str, int] = {}
    for line in log.read_text().splitlines():
        pid, what = line.split()
        if what == "invoke":
            invokes[pid] = invokes.get(pid, 0) + 1
    busy = [n for n in invokes.values() if n >= 5]  # the workers (probe children invoke once)
    assert len(busy) == 2 and sum(busy) >= 40, invokes
    assert "Traceback" not in p.stderr
