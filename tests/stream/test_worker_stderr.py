"""serve's worker writes its stderr into a pipe serve reads (edgekit.stream.worker_stderr):
every line reaches serve's stderr except LiteRT's XNNPACK banner, and the last lines of a
worker that crashes are out before serve reports the crash. On the real worker and the real
interpreter with the stand-in libedgetpu (tests/edgetpu_standin) that prints libedgetpu's
"USB transfer error 5" fatal line and aborts mid-stream, on a compiled model with a CPU op
(the banner's case)."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from edgekit.stream.pipeline import SkipFrame
from edgekit.stream.worker import ModelProcess
from edgekit.stream.worker_stderr import BANNER, StderrRelay
from tests.edgetpu_standin import build, compiler
from tests.runtime.runtime_fakes import make_sysfs
from tests.stream.worker_models import standin_classifier

ROOT = Path(__file__).resolve().parents[2]
CORAL = ROOT / "tests" / "data" / "coral"
FATAL = ("F :1155] HandleQueuedBulkIn failed: Deadline exceeded: USB transfer error 5 "
         "[LibUsbDataInCallback]")  # fmt: skip


@pytest.fixture
def cpu_op_model(tmp_path) -> Path:
    """Coral's MobileNet v1 0.25 128 through the compiler stand-in with its last op left on
    the CPU: LiteRT prints its XNNPACK banner when it opens on the Edge TPU path."""
    env = {**os.environ, "FAKE_EDGETPU_MODE": "partial"}
    subprocess.run([sys.executable, str(ROOT / "tests" / "convert" / "fake_edgetpu_compiler"),
                    "-o", str(tmp_path), str(CORAL / "mobilenet_v1_0.25_128_quant.tflite")],
                   check=True, capture_output=True, env=env, timeout=300)  # fmt: skip
    return tmp_path / "mobilenet_v1_0.25_128_quant_edgetpu.tflite"


def test_worker_stderr_is_forwarded_but_the_banner_and_a_crash_keeps_its_last_line(
    tmp_path, monkeypatch, capfd, cpu_op_model
):
    if compiler() is None:
        pytest.skip("no C compiler to build the libedgetpu stand-in")
    lib = build(tmp_path / "works", "works")
    root = make_sysfs(tmp_path / "root", usb=[("2-1", "18d1", "9302", 5000)])
    monkeypatch.setenv("EDGEKIT_LIBEDGETPU", str(lib))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("EDGETPU_STANDIN_ABORT_AFTER", "2")  # per process: each worker 2 frames
    err_at_event: list[str] = []

    def on_event(kind, message, details):
        if kind == "worker_crashed":
            err_at_event.append(capfd.readouterr().err)

    frame = np.zeros((128, 128, 3), np.uint8)
    worker = ModelProcess(functools.partial(standin_classifier, str(cpu_op_model), str(root)),
                          on_event=on_event, backoff_s=0.05)  # fmt: skip
    try:
        assert worker.info["backend"] == "edgetpu"
        worker.run(frame)
        worker.run(frame)
        with pytest.raises(SkipFrame, match="SIGABRT"):
            worker.run(frame)  # the stand-in's third invoke aborts; a new worker is started
        worker.run(frame)  # the new worker, which printed the banner when it opened too
    finally:
        worker.close()
    err = "".join(err_at_event) + capfd.readouterr().err
    # libedgetpu's last words were out before serve heard of the crash
    assert len(err_at_event) == 1 and FATAL + "\n" in err_at_event[0]
    assert err.count(FATAL) == 1
    assert BANNER.decode() not in err


def _relayed(chunks: list[bytes]) -> bytes:
    """What a StderrRelay forwards of ``chunks`` written into its pipe one by one."""
    r, w = os.pipe()
    out_r, out_w = os.pipe()
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.extend(iter(lambda: os.read(out_r, 65536),
                                                              b"")))  # fmt: skip
    reader.start()
    relay = StderrRelay(r, out_w).start()
    for c in chunks:
        os.write(w, c)
    os.close(w)
    assert relay.join(5.0)
    os.close(out_w)
    reader.join(5.0)
    os.close(out_r)
    return b"".join(got)


def test_the_relay_drops_exactly_the_banner_line_and_keeps_everything_else():
    banner = BANNER + b"\n"
    assert _relayed([b"I :1] open\n" + banner, b"INFO: Created TensorFlow Lite XNNPACK delegate",
                     b" for CPU.\nWarning: x\n", banner + b"INFO: Created TensorFlow Lite XNNPACK "
                     b"delegate for CPU. (and more)\n", b"F :1155] last words, no newline"]) == (
        b"I :1] open\nWarning: x\n"
        b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU. (and more)\n"
        b"F :1155] last words, no newline\n")  # fmt: skip
    # a child writing far more than a pipe holds, without newlines, is never blocked
    big = b"x" * 300_000
    assert _relayed([big]) == big + b"\n"
