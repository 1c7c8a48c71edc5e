#!/usr/bin/env python3
"""Compiled segments over two Edge TPUs: chained (one frame at a time, what edgekit did before)
vs pipelined (segment K on device K, N + 1 frames in flight), measured side by side in one run.

The devices are stand-in libedgetpu libraries (tests/edgetpu_standin, built with cc) whose
invoke sleeps ``--segment-ms`` per segment (the device's time: no CPU used, as a USB transfer),
two fake Corals in a fake sysfs; the model is a small Keras model cut into two segments and
passed through the stand-in compiler (tests/runtime/segment_models.py: each segment one
edgetpu-custom-op, so both take the same time). Rounds alternate, medians are reported:

  bare    in this process: the chain's ``invoke()`` one frame after the other, vs the
          pipelined interpreter invoked from N + 1 threads (``edgekit bench``'s measurement)
  serve   through serve's real pipeline (capture slot, worker process, reorder, sinks) on
          decoded frames from memory: today's worker with the chain (one frame at a time)
          vs what serve now runs for a segment set (one worker, N + 1 frames in flight)

``pipelined_vs_chained`` (serve; goal >= 1.8 for two equal segments: the ideal is 2, frames/s
~ 1 / max(segment) instead of 1 / sum) and ``bare_pipelined_vs_chained``; the machine's load
average is printed with them (a busy 2-core machine delays the threads that feed the devices).

    python scripts/bench_segments.py [--segment-ms 10] [--frames 120] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def measure(args, tmp: Path) -> dict:
    import numpy as np
    from bench_pipeline import memory_source, pipeline_rate

    from edgekit import backends
    from edgekit.backends.edgetpu import SystemStack
    from edgekit.backends.segment_pipeline import measure_pipelined
    from edgekit.stream.pool import DevicePool
    from edgekit.stream.worker import ModelProcess
    from tests.edgetpu_standin import build
    from tests.runtime.runtime_fakes import make_sysfs
    from tests.runtime.segment_models import make_segments, standin_chained, standin_segments

    lib = build(tmp / "standin" / "works")
    root = make_sysfs(tmp / "root", usb=[("2-1", "18d1", "9302", 5000),
                                         ("2-2", "18d1", "9302", 5000)])  # fmt: skip
    os.environ.update({"EDGEKIT_LIBEDGETPU": str(lib), "EDGETPU_STANDIN_DEVICES": "2",
                       "EDGETPU_STANDIN_INVOKE_MS": str(args.segment_ms),
                       "XDG_CACHE_HOME": str(tmp / "cache"),
                       "EDGEKIT_LOCK_DIR": str(tmp / "locks")})  # fmt: skip
    with contextlib.redirect_stdout(sys.stderr):  # the converter's chatter; stdout is --json
        seg = str(make_segments(tmp / "model", compiled=True, twin=False)[0])
    backends.register_backend("edgetpu", backends.EdgeTpuBackend(SystemStack(root=root)))
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(8)]
    pipelined = functools.partial(standin_segments, seg, str(root))
    chained = functools.partial(standin_chained, seg, str(root))
    n = args.frames
    rates: dict[str, list[float]] = {k: [] for k in ("bare_chained", "bare_pipelined",
                                                      "serve_chained", "serve_pipelined")}

    def serve_rate(make) -> float:
        model = make()  # one process holds both Corals: each set-up closes before the next
        try:
            return pipeline_rate(model, memory_source(frames), n)[0]
        finally:
            model.close()

    for _ in range(args.rounds):  # alternating, so that neighbours' load hits all alike
        m = pipelined()
        r = m.runner
        x = np.zeros(r.input_shape, r.input_dtype)
        r.run(x)
        t0 = time.perf_counter()
        for _ in range(n):
            r.run(x)
        rates["bare_chained"].append(n / (time.perf_counter() - t0))
        rates["bare_pipelined"].append(measure_pipelined(r, n, x)["fps"])
        m.close()  # releases both devices for the workers
        rates["serve_chained"].append(serve_rate(lambda: ModelProcess(chained)))
        rates["serve_pipelined"].append(serve_rate(lambda: DevicePool(pipelined, [None],
                                                                      depth=3)))  # fmt: skip
    med = {k: statistics.median(v) for k, v in rates.items()}
    ideal = 1000.0 / args.segment_ms
    return {
        "segments": 2, "segment_ms": args.segment_ms, "frames": n, "rounds": args.rounds,
        **{f"{k}_fps": round(v, 2) for k, v in med.items()},
        "pipelined_vs_chained": round(med["serve_pipelined"] / med["serve_chained"], 3),
        "bare_pipelined_vs_chained": round(med["bare_pipelined"] / med["bare_chained"], 3),
        "serve_pipelined_vs_ideal": round(med["serve_pipelined"] / ideal, 3),
        "all": {k: [round(x, 2) for x in v] for k, v in rates.items()},
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--segment-ms", type=float, default=10.0,
                    help="each segment's invoke time on its stand-in Edge TPU")  # fmt: skip
    ap.add_argument("--frames", type=int, default=120, help="frames per measurement")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.segment_ms <= 0 or args.frames < 2 or args.rounds < 1:
        ap.error("--segment-ms must be > 0, --frames >= 2, --rounds >= 1")
    with tempfile.TemporaryDirectory() as tmp:
        report = measure(args, Path(tmp))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    r = report
    print(f"two segments of {r['segment_ms']} ms on two stand-in Edge TPUs "
          f"(ideal pipelined: {1000.0 / r['segment_ms']:.1f} fps):")  # fmt: skip
    print(f"  bare:  chained {r['bare_chained_fps']} fps, pipelined {r['bare_pipelined_fps']} "
          f"fps = {r['bare_pipelined_vs_chained']:.3f}x")  # fmt: skip
    print(f"  serve: chained {r['serve_chained_fps']} fps, pipelined {r['serve_pipelined_fps']} "
          f"fps = {r['pipelined_vs_chained']:.3f}x (goal >= 1.8)")  # fmt: skip
    print(f"  load average {r['load_average']} on {r['cpus']} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
