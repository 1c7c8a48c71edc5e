#!/usr/bin/env python3
"""Soak test: serve a looping video for N minutes while injecting faults, then check that
nothing crashed, memory did not grow, and every injected fault was reported.

The pipeline runs in this process exactly as ``edgekit serve`` runs it (``serve.run`` with the
JSON-lines sink writing to /dev/null and the HTTP sink on a free port, polled once a second).
Faults are injected at the two boundaries (the fault injectors of tests/stream/stream_faults.py):

* camera lost (the source raises SourceLost, then fails to reopen twice),
* corrupt frame (FrameDecodeError),
* Edge TPU unplugged for a few seconds (fake libedgetpu backend: invoke raises RuntimeError, new
  interpreters fail) -> CPU fallback -> Edge TPU restored,
* transient Edge TPU error (one failed invoke) -> reopen.

    python scripts/soak.py [--minutes 10] [--fault-every 10] [--json]

Exit status 0 when all checks pass. Memory is RSS from /proc/self/status, measured after a
warm-up (first 10% of the run, at least 20 s) and at the end.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORAL = ROOT / "tests" / "data" / "coral"
sys.path.insert(0, str(ROOT / "tests" / "stream"))
sys.path.insert(0, str(ROOT / "scripts"))


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--fault-every", type=float, default=10.0, help="seconds between faults")
    ap.add_argument("--max-growth-mib", type=float, default=5.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from bench_pipeline import make_video
    from stream_faults import FlakySource, installed_fake_tpu

    from edgekit.classify import Classifier
    from edgekit.stream import serve
    from edgekit.stream.config import from_dict
    from edgekit.stream.sinks import CallbackSink
    from edgekit.stream.sources import OpenCVSource

    duration = args.minutes * 60.0
    warmup = max(20.0, duration * 0.1)
    events: collections.Counter[str] = collections.Counter()
    injected: collections.Counter[str] = collections.Counter()
    results = [0]
    with tempfile.TemporaryDirectory() as tmp, installed_fake_tpu() as tpu, \
            open(os.devnull, "w") as devnull:  # fmt: skip
        video = make_video(Path(tmp) / "soak.avi", 120)
        clf = Classifier(CORAL / "mobilenet_v1_0.25_128_quant_edgetpu.tflite",
                         labels=CORAL / "imagenet_labels.txt", device="auto", top_k=3)  # fmt: skip
        assert clf.runner.backend == "edgetpu"
        source = FlakySource(OpenCVSource(str(video), loop=True), reopen_failures=2)
        # Played at 30 fps with newest-frame-wins drops, like a camera (realtime pacing).
        source.live, source.fps = False, 30.0
        cfg = from_dict({
            "source": {"realtime": True, "backoff_s": 0.2, "backoff_max_s": 2.0},
            "model": {"tpu_retry_s": 2.0},
            "http": {"enabled": True, "listen": "127.0.0.1:0"},
        })  # fmt: skip
        stop = threading.Event()
        started: dict = {}
        outcome: dict = {}

        def count(r):
            results[0] += 1

        def run():
            try:
                outcome["stats"] = serve.run(
                    cfg, stop=stop, stdout=devnull, classifier=clf, source=source,
                    extra_sinks=[CallbackSink(count, lambda e: events.update([e.kind]))],
                    on_start=started.update,
                )  # fmt: skip
            except BaseException as e:  # a crash is what this script looks for
                outcome["crash"] = f"{type(e).__name__}: {e}"

        worker = threading.Thread(target=run, name="soak-serve")
        t0 = time.monotonic()
        worker.start()
        rss_start = None
        rss_series: list[float] = []  # every 10 s, to tell a plateau from a leak
        next_fault, fault_no, http_errors = t0 + args.fault_every, 0, 0
        kinds = ("camera", "corrupt", "tpu_unplug", "tpu_transient")
        while time.monotonic() - t0 < duration and worker.is_alive():
            time.sleep(1.0)
            now = time.monotonic()
            if rss_start is None and now - t0 >= warmup:
                rss_start = rss_mib()
            if int(now - t0) % 10 == 0:
                rss_series.append(round(rss_mib(), 1))
            if "http" in started:
                try:
                    urllib.request.urlopen(started["http"] + "latest", timeout=5).read()
                except OSError:
                    http_errors += 1
            if now >= next_fault:
                kind = kinds[fault_no % len(kinds)]
                fault_no += 1
                next_fault = now + args.fault_every
                injected[kind] += 1
                if kind == "camera":
                    source.lose_at.add(source.reads + 1)
                elif kind == "corrupt":
                    source.corrupt_at.add(source.reads + 1)
                elif kind == "tpu_unplug":
                    tpu.plugged = False
                    threading.Timer(min(4.0, args.fault_every / 2), setattr,
                                    (tpu, "plugged", True)).start()  # fmt: skip
                else:
                    tpu.fail_invokes = 1
        time.sleep(min(5.0, args.fault_every / 2))  # let the last fault be reported
        rss_end = rss_mib()
        stop.set()
        worker.join(10)
    stats = outcome.get("stats", {})
    expected = {
        "camera": ("source_reconnected", injected["camera"]),
        "corrupt": ("decode_error", injected["corrupt"]),
        "tpu_unplug": ("cpu_fallback", injected["tpu_unplug"]),
        "tpu_transient": ("backend_reopened", injected["tpu_transient"]),
    }
    reported = {k: {"injected": n, "event": ev, "reported": events[ev]}
                for k, (ev, n) in expected.items()}  # fmt: skip
    growth = rss_end - (rss_start if rss_start is not None else rss_end)
    checks = {
        "no_crash": "crash" not in outcome and not worker.is_alive(),
        "every_fault_reported": all(v["reported"] >= v["injected"] for v in reported.values()),
        "tpu_restored_each_time": events["tpu_restored"] >= injected["tpu_unplug"],
        "memory_growth_ok": growth <= args.max_growth_mib,
        "results_flowing": results[0] > 0,
    }
    report = {
        "minutes": args.minutes, "results": results[0], "faults": reported,
        "events": dict(events), "rss_start_mib": round(rss_start or float("nan"), 1),
        "rss_end_mib": round(rss_end, 1), "rss_growth_mib": round(growth, 2),
        "rss_every_10s_mib": rss_series,
        "http_errors": http_errors, "crash": outcome.get("crash"),
        "final_backend": stats.get("backend"), "dropped": stats.get("dropped"),
        "fps": stats.get("fps"), "latency_ms": stats.get("latency_ms"),
        "checks": checks, "ok": all(checks.values()),
    }  # fmt: skip
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"soak {args.minutes:g} min: {results[0]} results, crash: {report['crash']}")
        for k, v in reported.items():
            print(f"  {k:14s} injected {v['injected']:3d}  reported ({v['event']}) "
                  f"{v['reported']:3d}")  # fmt: skip
        print(f"  RSS {report['rss_start_mib']} -> {report['rss_end_mib']} MiB "
              f"(growth {report['rss_growth_mib']} MiB), dropped {report['dropped']}, "
              f"http errors {http_errors}")  # fmt: skip
        print(f"  RSS every 10 s: {rss_series}")
        print("  checks: " + ", ".join(f"{k}={'ok' if v else 'FAIL'}" for k, v in checks.items()))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
