"""H of scripts/bench_pipeline.py: serve's one-device worker on a DETECTOR and a CASCADE
(detector + classifier on the crops, one device) against bare invoke, on the stand-in
libedgetpu whose invoke sleeps ``--device-ms`` (the device is the bottleneck).

The detector is tests/detect's tiny anchor-free model (built by TensorFlow in a subprocess)
through the edgetpu_compiler stand-in with every real op left on the CPU: its one custom op
(computing nothing, as the stand-in does) takes the device's ``--device-ms`` per invoke, and the
CPU ops find the real coloured squares of each frame, so the cascade has real crops to classify
(two squares per frame, ``max_crops`` 2: two invokes of Coral's MobileNet v1 0.25 128 per
frame). Frames are 640x480 (serve does not resize for a detector: its preprocessing, letterbox
to the input, runs in the worker).

Bare: the invokes alone, back to back (detector; detector + 2 crops for the cascade). Serve:
``serve.start_workers`` as ``[model] device = "usb"`` builds it (a pool of one, two frames in
flight) with the model's stages (edgekit.stream.worker_stages), and the same model without them
(``one_at_a_time``: every detector and cascade before, one request at a time in the worker).
"""

from __future__ import annotations

import functools
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORAL = ROOT / "tests" / "data" / "coral"
CROPS = 2


def compiled_detector(tmp: Path) -> Path:
    """The tiny detector and its compiled twin (see the module docstring)."""
    out = tmp / "tiny"
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FAKE_EDGETPU_MODE": "partial",
           "FAKE_EDGETPU_CPU_OP": "AVERAGE_POOL_2D"}  # fmt: skip
    for cmd in ([sys.executable, str(ROOT / "tests" / "detect" / "make_tiny_detectors.py"),
                 str(out)],
                [sys.executable, str(ROOT / "tests" / "convert" / "fake_edgetpu_compiler"),
                 "-o", str(out), str(out / "anchor_free.tflite")]):  # fmt: skip
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
        if p.returncode != 0:
            raise RuntimeError(f"{Path(cmd[1]).name}: {p.stderr[-2000:]}")
    return out / "anchor_free_edgetpu.tflite"


def squares(n: int) -> list:
    """``n`` 640x480 frames, each with a red and a green 160-px square (the tiny detector's
    classes) in different cells of its 4 x 4 grid (letterboxed: 8 input pixels are 160 frame
    pixels, rows from y = 80), on a noisy dark background."""
    import numpy as np

    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        img = rng.integers(0, 40, (480, 640, 3), dtype=np.uint8)
        for channel, (row, col) in enumerate(((i % 2, i % 4), ((i + 1) % 2, (i + 2) % 4))):
            y, x = 80 + 160 * row, 160 * col
            cell = img[y : y + 160, x : x + 160]
            cell[...] = 0
            cell[..., channel] = 255
        out.append(img)
    return out


def invoke_rate(interpreters: list, n: int) -> float:
    """Frames/s of ``n`` frames of back-to-back invokes of ``interpreters`` (one each)."""
    for interp in interpreters:
        interp.invoke()
    t0 = time.perf_counter()
    for _ in range(n):
        for interp in interpreters:
            interp.invoke()
    return n / (time.perf_counter() - t0)


def detector_and_cascade(ms: float, n: int, rounds: int, tmp: Path, root: Path) -> dict:
    """Rates and ratios (see the module docstring); ``root``: the stand-in's fake sysfs
    (bench_pipeline.standin_corals)."""
    from bench_pipeline import measure_serve

    from edgekit.stream import serve
    from edgekit.stream.config import from_dict
    from tests.stream.worker_models import Unstaged, standin_cascade, standin_detector

    det_path = str(compiled_detector(tmp))
    clf_path = str(CORAL / "mobilenet_v1_0.25_128_quant_edgetpu.tflite")
    det_kw = dict(decoder="edgekit-anchor-free", labels={0: "red", 1: "green", 2: "blue"})
    detector = functools.partial(standin_detector, det_path, str(root), **det_kw)
    cascade = functools.partial(standin_cascade, det_path, clf_path, str(root),
                                max_crops=CROPS, **det_kw)  # fmt: skip
    cfg = from_dict({"model": {"path": det_path, "device": "usb"}})
    frames = squares(8)
    runs: dict[str, list[float]] = {k: [] for k in (
        "detector_bare", "detector_serve", "detector_one_at_a_time",
        "cascade_bare", "cascade_serve", "cascade_one_at_a_time")}  # fmt: skip
    for _ in range(rounds):  # alternating, so that neighbours' load hits all alike
        casc = cascade(device="usb:0")
        try:
            crops = {casc.run(f).crops for f in frames}
            if crops != {CROPS}:
                raise RuntimeError(f"the stand-in cascade classified {crops} crops, not {CROPS}")
            det_i = casc.detector.runner.interpreter
            clf_i = casc.classifier.runner.interpreter
            runs["detector_bare"].append(invoke_rate([det_i], n))
            runs["cascade_bare"].append(invoke_rate([det_i] + [clf_i] * CROPS, n))
        finally:
            casc.close()  # releases usb:0 for the workers
        for name, factory in (("detector", detector), ("cascade", cascade)):
            staged = functools.partial(serve.start_workers, factory, cfg)
            unstaged = functools.partial(serve.start_workers,
                                         functools.partial(Unstaged, factory), cfg)
            measure_serve(staged, frames, runs[f"{name}_serve"], n)
            measure_serve(unstaged, frames, runs[f"{name}_one_at_a_time"], n)
    med = {k: statistics.median(v) for k, v in runs.items()}
    out: dict = {"device_ms": ms, "frame": [640, 480], "detector": Path(det_path).name,
                 "cascade_crops": CROPS}  # fmt: skip
    for name in ("detector", "cascade"):
        bare = med[f"{name}_bare"]
        out[f"{name}_bare_fps"] = round(bare, 2)
        out[f"serve_one_device_{name}_fps"] = round(med[f"{name}_serve"], 2)
        out[f"serve_one_device_{name}_vs_bare"] = round(med[f"{name}_serve"] / bare, 3)
        out[f"{name}_one_at_a_time_vs_bare"] = round(med[f"{name}_one_at_a_time"] / bare, 3)
    out["all"] = {k: [round(x, 2) for x in v] for k, v in runs.items()}
    return out


def print_staged(m: dict) -> None:
    print(f"  {m['device_ms']} ms stand-in Edge TPU, serve's one-device worker on 640x480 "
          f"frames: detector {m['serve_one_device_detector_vs_bare']:.3f}x bare (one request "
          f"at a time: {m['detector_one_at_a_time_vs_bare']:.3f}x), cascade with "
          f"{m['cascade_crops']} crops {m['serve_one_device_cascade_vs_bare']:.3f}x bare "
          f"({m['cascade_one_at_a_time_vs_bare']:.3f}x); goal >= 0.95")  # fmt: skip
