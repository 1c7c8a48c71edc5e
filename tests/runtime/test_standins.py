"""The libedgetpu stand-ins themselves (tests/edgetpu_standin): each behaves as documented when a
real interpreter (ai_edge_litert) loads it, in a child process, on a real compiled model."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

CHILD = """
import sys
from ai_edge_litert.interpreter import Interpreter, load_delegate
delegate = load_delegate(sys.argv[1], {"device": "usb"})
it = Interpreter(model_path=sys.argv[2], experimental_delegates=[delegate])
it.allocate_tensors()
for _ in range(int(sys.argv[3])):
    it.invoke()
print("invoked", sys.argv[3])
"""


def run_child(lib, model, invokes=3, env=None, timeout=60):
    return subprocess.run([sys.executable, "-c", CHILD, str(lib), str(model), str(invokes)],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})  # fmt: skip


@pytest.fixture
def compiled(coral_dir):
    return coral_dir / "mobilenet_v1_0.25_128_quant_edgetpu.tflite"


def test_works_claims_the_custom_op_and_invokes(edgetpu_standins, compiled, tmp_path):
    log = tmp_path / "log"
    p = run_child(edgetpu_standins["works"], compiled, env={"EDGETPU_STANDIN_LOG": str(log)})
    assert p.returncode == 0 and "invoked 3" in p.stdout, p.stderr
    events = [line.split()[1] for line in log.read_text().splitlines()]
    assert events == ["create", "prepare", "invoke", "invoke", "invoke", "destroy"]


def test_without_a_delegate_the_compiled_model_cannot_run(compiled):
    # What makes the stand-in meaningful: the CPU alone refuses the compiled graph.
    code = ("import sys; from ai_edge_litert.interpreter import Interpreter\n"
            "Interpreter(model_path=sys.argv[1]).allocate_tensors()")  # fmt: skip
    p = subprocess.run([sys.executable, "-c", code, str(compiled)], capture_output=True,
                       text=True, timeout=60)  # fmt: skip
    assert p.returncode != 0 and "edgetpu-custom-op" in p.stderr


def test_uncompiled_model_runs_on_the_cpu_through_it(edgetpu_standins, coral_dir, tmp_path):
    log = tmp_path / "log"
    p = run_child(edgetpu_standins["works"], coral_dir / "mobilenet_v1_0.25_128_quant.tflite",
                  env={"EDGETPU_STANDIN_LOG": str(log)})  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "invoke" not in log.read_text()  # nothing claimed


@pytest.mark.parametrize("mode, rc, stderr", [
    ("null", 1, "Failed to load delegate"),
    ("segv", -signal.SIGSEGV, ""),
    ("abort", -signal.SIGABRT, "USB transfer error 5"),
])  # fmt: skip
def test_failing_modes(edgetpu_standins, compiled, mode, rc, stderr):
    p = run_child(edgetpu_standins[mode], compiled)
    assert p.returncode == rc and stderr in p.stderr, (p.returncode, p.stderr[-500:])


def test_hang_blocks(edgetpu_standins, compiled):
    with pytest.raises(subprocess.TimeoutExpired):
        run_child(edgetpu_standins["hang"], compiled, timeout=3)


def test_crash_after_n_invokes_counts_per_process(edgetpu_standins, compiled, tmp_path):
    log = tmp_path / "log"
    env = {"EDGETPU_STANDIN_CRASH_AFTER": "2", "EDGETPU_STANDIN_LOG": str(log)}
    for _ in range(2):  # a restarted process gets N invokes again
        p = run_child(edgetpu_standins["works"], compiled, invokes=5, env=env)
        assert p.returncode == -signal.SIGSEGV
    assert log.read_text().count("invoke") == 6


def test_c_api(edgetpu_standins):
    import ctypes

    class Device(ctypes.Structure):
        _fields_ = [("type", ctypes.c_int), ("path", ctypes.c_char_p)]

    # Loading the working stand-in in-process is safe: it only crashes when asked to.
    lib = ctypes.CDLL(str(edgetpu_standins["works"]))
    lib.edgetpu_version.restype = ctypes.c_char_p
    assert lib.edgetpu_version().decode().endswith("RuntimeVersion(14)")
    lib.edgetpu_list_devices.restype = ctypes.POINTER(Device)
    n = ctypes.c_size_t()
    devs = lib.edgetpu_list_devices(ctypes.byref(n))
    assert n.value == 1 and devs[0].type == 1 and devs[0].path == b"/sys/bus/usb/devices/2-1"
    old = ctypes.CDLL(str(edgetpu_standins["runtime13"]))
    old.edgetpu_version.restype = ctypes.c_char_p
    assert old.edgetpu_version().endswith(b"RuntimeVersion(13)")
