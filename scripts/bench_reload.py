#!/usr/bin/env python3
"""How long do results stop during a hot reload? Measured in one run, in-process and with the
worker process:

  serve (the library call, as `edgekit serve` runs it) on a video paced at 30 fps, the model
  reloaded ``--reloads`` times (alternating two copies of ``--model``, each reload blocking
  like the fleet agent's); for each reload, the largest gap between two consecutive results
  (capture timestamps) from just before the reload starts to just after it returns, beside the
  same statistic over a quiet stretch without reloads (the baseline, i.e. the frame interval
  plus scheduling noise). Reported: medians and maxima, the reload's own duration (load +
  check + switch), and gap / baseline.

    python scripts/bench_reload.py [--model tests/data/coral/mobilenet_v1_0.25_128_quant.tflite]
        [--reloads 6] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def largest_gap(stamps: list[float], start: float, end: float) -> float:
    inside = [t for t in stamps if start <= t <= end]
    # the last result before the window and the first after it bound the gap too
    before = [t for t in stamps if t < start][-1:]
    after = [t for t in stamps if t > end][:1]
    ts = before + inside + after
    return max((b - a for a, b in zip(ts, ts[1:])), default=float("nan"))


def run_mode(mode: str, bundles: list[Path], video: Path, reloads: int) -> dict:
    from edgekit.stream import serve
    from edgekit.stream.config import from_dict
    from edgekit.stream.sinks import CallbackSink

    stamps: list[float] = []
    started: dict = {}
    stop = threading.Event()
    cfg = from_dict({
        "model": {"path": str(bundles[0]), "device": "cpu", "top_k": 1, "watch_s": 0},
        "source": {"uri": str(video), "loop": True, "realtime": True},
        "output": {"json_lines": False}, "worker": {"mode": mode},
    })  # fmt: skip
    sink = CallbackSink(lambda r: stamps.append(r.timestamp))
    t = threading.Thread(target=serve.run, args=(cfg,), daemon=True,
                         kwargs={"stop": stop, "extra_sinks": [sink],
                                 "on_start": started.update})  # fmt: skip
    t.start()
    while len(stamps) < 30:
        time.sleep(0.1)
    quiet_start = time.time()
    time.sleep(3.0)
    baseline = largest_gap(stamps, quiet_start, time.time())
    gaps, durations = [], []
    for i in range(reloads):
        t0 = time.time()
        outcome = started["reload"].reload(str(bundles[(i + 1) % 2]), "bench")
        t1 = time.time()
        if not outcome.ok:
            raise SystemExit(f"reload failed: {outcome.message}")
        time.sleep(1.0)  # results after the switch
        gaps.append(largest_gap(stamps, t0, t1 + 0.5))
        durations.append(t1 - t0)
    stop.set()
    t.join(30)
    return {
        "mode": mode,
        "baseline_gap_ms": round(baseline * 1000, 1),
        "reload_gap_ms_median": round(statistics.median(gaps) * 1000, 1),
        "reload_gap_ms_max": round(max(gaps) * 1000, 1),
        "reload_s_median": round(statistics.median(durations), 3),
        "gap_over_baseline": round(statistics.median(gaps) / baseline, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(ROOT / "tests/data/coral/"
                                              "mobilenet_v1_0.25_128_quant.tflite"))  # fmt: skip
    ap.add_argument("--reloads", type=int, default=6)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "scripts"))
    import shutil

    from bench_pipeline import make_video

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        video = make_video(tmp / "v.avi", 90)
        # two copies of the model: each reload really loads, checks and switches a model
        bundles = [Path(shutil.copy(args.model, tmp / f"{v}.tflite")) for v in "ab"]
        rows = [run_mode(mode, bundles, video, args.reloads) for mode in ("inline", "process")]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'mode':8} {'baseline gap':>13} {'reload gap p50':>15} {'max':>8} "
          f"{'reload took':>12} {'gap/baseline':>13}")  # fmt: skip
    for r in rows:
        print(f"{r['mode']:8} {r['baseline_gap_ms']:>10.1f} ms"
              f" {r['reload_gap_ms_median']:>12.1f} ms {r['reload_gap_ms_max']:>5.1f} ms"
              f" {r['reload_s_median']:>10.3f} s {r['gap_over_baseline']:>12.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
