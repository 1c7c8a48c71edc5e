#!/usr/bin/env python3
"""Soak test: serve for a set time with Edge TPU faults injected, account for every frame, and
show that memory, file descriptors and shared memory stay flat.

serve runs in this process exactly as ``edgekit serve`` runs it (``serve.run``; JSON lines to
/dev/null, the HTTP sink on a free port polled every second), on a looping video played in real
time (a camera: newest frame wins, older ones are dropped and counted), with the model in its
worker process on an "Edge TPU": the stand-in libedgetpu (tests/edgetpu_standin, built with cc)
on a fake Coral (a fake sysfs/devfs/kernel-log tree, tests/runtime/usb_fakes.py). Faults:

* worker crash / hang: every worker's libedgetpu dies by SIGSEGV after ``--crash-every``
  invokes, or (every other worker) hangs in invoke() after as many (the watchdog kills it);
* device vanishes and returns: every ``--vanish-every`` s the Coral leaves the bus (sysfs device
  gone, transfers fail) for 4 s -> CPU fallback -> the periodic Edge TPU retry brings it back;
* device wedges: every ``--wedge-every`` s every transfer fails until a USB reset -> CPU
  fallback -> self-healing resets it (fake kernel: USBDEVFS_RESET re-enumerates it), probes it
  and resumes on the Edge TPU;
* hot reload: every ``--reload-every`` s (SIGHUP's path: the reload event);
* camera: every ``--camera-every`` s the camera is lost (two reopen attempts fail) and one
  frame is corrupt (tests/stream/stream_faults.py FlakySource);
* rollout: every ``--rollout-every`` s (when mosquitto is installed) ``edgekit rollout`` ships
  the other of two signed bundles to this serve over a real broker ([fleet]), alternately.

    python scripts/soak.py [--minutes 30] [--json] [--plot soak.png]

Checks (exit 0 when all pass): no crash; captured == processed + dropped + failed + unprocessed
exactly (Stats.accounting, once serve stopped); every fault reported and recovered from; RSS of
serve and of its worker, open fds (after a garbage collection) and /dev/shm flat after the
warm-up; no /dev/shm segment left.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORAL = ROOT / "tests" / "data" / "coral"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def _proc_rss_mib(pid) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def collect(procs: list, out: list[dict]) -> None:
    """Move finished rollout processes from ``procs`` to ``out`` (exit, JSON, stderr)."""
    for p in [p for p in procs if p.poll() is not None]:
        stdout, stderr = p.communicate()
        try:
            out.append({"exit": p.returncode, **json.loads(stdout)})
        except ValueError:
            out.append({"exit": p.returncode, "output": stdout[-2000:]})
        out[-1]["stderr"] = stderr[-2000:]
        procs.remove(p)


def start_broker(tmp: Path):
    """A mosquitto on a free port for the rollout, or None when it is not installed."""
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.path.exists(exe):
        return None
    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    import socket

    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    return None


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children() -> list[int]:
    me, out = os.getpid(), []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int(d.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1]) == me:
                    out.append(int(d.name))
            except (OSError, ValueError, IndexError):
                pass
    return out


def shm_segments() -> tuple[int, float]:
    segs = list(Path("/dev/shm").glob(f"edgekit-{os.getpid()}-*"))
    size = 0
    for s in segs:
        try:
            size += s.stat().st_size
        except OSError:
            pass
    return len(segs), size / 1024.0


def sample(t0: float, stats: dict) -> dict:
    # Collect garbage first: descriptors of replaced workers held by reference cycles are
    # freed by the collector (a 30-min run without this showed them as steps of 6 that fell
    # back once the collector ran); what survives a collection is a leak.
    import gc

    gc.collect()
    kids = children()
    n, kib = shm_segments()
    acc = stats.get("accounting", {})
    return {"t_s": round(time.monotonic() - t0, 1), "rss_mib": round(_proc_rss_mib("self"), 1),
            # the largest worker, not the sum: a reload or restart in flight at a sample has two
            # workers for a moment (a 90 s CI run failed on that), a leak grows one of them
            "worker_rss_mib": round(max((_proc_rss_mib(p) for p in kids), default=0.0), 1),
            "fds": len(os.listdir("/proc/self/fd")), "shm_segments": n, "shm_kib": round(kib, 1),
            "captured": acc.get("captured", 0), "processed": acc.get("processed", 0),
            "dropped": acc.get("dropped", 0), "failed": acc.get("failed", 0),
            "backend": stats.get("backend", "?"), "fps": stats.get("stats", {}).get("fps")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--crash-every", type=int, default=300, help="invokes per worker")
    ap.add_argument("--vanish-every", type=float, default=120.0, help="seconds")
    ap.add_argument("--wedge-every", type=float, default=180.0, help="seconds")
    ap.add_argument("--reload-every", type=float, default=150.0, help="seconds")
    ap.add_argument("--camera-every", type=float, default=90.0, help="seconds")
    ap.add_argument("--rollout-every", type=float, default=300.0,
                    help="seconds (0: no rollout; needs mosquitto)")  # fmt: skip
    ap.add_argument("--max-growth-mib", type=float, default=8.0)
    # A hot reload or a restart in flight at a sample holds a second worker's pipe, sentinel and
    # frame slot for a moment: short runs need room for that, long runs keep the default.
    ap.add_argument("--max-fd-growth", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--plot", metavar="PNG", help="RSS, fds, /dev/shm and fps over time")
    ap.add_argument("--report", metavar="JSON", help="also write the JSON report to this file")
    ap.add_argument("--verbose", action="store_true", help="serve's log lines on stderr")
    args = ap.parse_args(argv)
    import faulthandler
    import signal

    faulthandler.register(signal.SIGUSR1)  # kill -USR1 <pid>: every thread's stack on stderr
    if not args.verbose:  # the events are in the report's timeline; the workers' notices stay
        import logging

        logging.getLogger("edgekit.stream").setLevel(logging.CRITICAL)
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        print("soak: needs a C compiler for the stand-in libedgetpu (apt-get install gcc)")
        return 2
    with tempfile.TemporaryDirectory(prefix="edgekit-soak-") as tmp:
        return run(args, Path(tmp))


def run(args, tmp: Path) -> int:
    from bench_pipeline import make_video

    from tests.edgetpu_standin import build
    from tests.runtime.usb_fakes import FakeKernel, make_coral
    from tests.stream.stream_faults import FlakySource
    from tests.stream.worker_models import standin_classifier

    lib = build(tmp / "standin", "works")
    root = tmp / "root"
    dev = make_coral(root)
    wedge = tmp / "wedged"
    # EDGEKIT_LOCK_DIR: the device lock of this fake Coral (port 2-1) is this run's alone
    os.environ.update({"LD_LIBRARY_PATH": str(lib.parent), "XDG_CACHE_HOME": str(tmp / "cache"),
                       "EDGEKIT_LOCK_DIR": str(tmp / "locks"),
                       "EDGETPU_STANDIN_WEDGE": str(wedge), "EDGETPU_STANDIN_SYSFS": str(dev),
                       "EDGETPU_STANDIN_DEVFS": str(root / "dev/bus/usb"),
                       "EDGETPU_STANDIN_CRASH_AFTER": str(args.crash_every)})  # fmt: skip

    import functools

    from edgekit import signing
    from edgekit.backends.usbreset import KernelUsbReset
    from edgekit.stream import serve
    from edgekit.stream.config import from_dict
    from edgekit.stream.sinks import CallbackSink
    from edgekit.stream.sources import OpenCVSource
    from tests.stream.bundles import make_bundle

    key, pub, _ = signing.keygen(tmp / "fleet")
    bundles = [make_bundle(tmp / v, v, edgetpu=True) for v in "ab"]  # signed, Edge TPU + CPU
    for b in bundles:
        signing.sign(b, key)
    broker = start_broker(tmp) if args.rollout_every > 0 else None
    fleet = {"fleet": {"topic": "soak", "device": "pi", "public_key": str(pub),
                       "state_dir": str(tmp / "fleet-state")},
             "mqtt": {"enabled": True, "host": "127.0.0.1", "port": broker[1]}} if broker else {}
    cfg = from_dict({
        **fleet,
        "model": {"path": str(bundles[0]), "device": "usb", "tpu_retry_s": 3.0},
        "source": {"realtime": True, "loop": True},
        "http": {"enabled": True, "listen": f"127.0.0.1:{free_port()}"},
        "worker": {"hang_timeout_s": 2.0, "max_restarts": 1000, "restart_window_s": 60.0},
        "health": {"check_every_s": 5.0, "max_resets_per_hour": 60, "reset_backoff_s": 1.0,
                   "reenumerate_timeout_s": 10.0},
    })  # fmt: skip

    def load(c=cfg):  # what serve runs for the device (serve.start_workers), on the stand-in
        factory = functools.partial(standin_classifier, c.model.path, str(root), top_k=3)
        return serve.start_workers(factory, c, backoff_s=0.05, backoff_max_s=1.0)

    events: collections.Counter[str] = collections.Counter()
    injected: collections.Counter[str] = collections.Counter()
    mode = {"hang": False}

    timeline: list[tuple[float, str]] = []
    fault_kinds = ("worker_", "device_", "cpu_fallback", "tpu_", "model_reloaded", "reload_failed")

    gap = [0.0, 0.0]  # last result (monotonic s), longest time between two results

    def on_result(r):
        now = time.monotonic()
        if gap[0]:
            gap[1] = max(gap[1], now - gap[0])
        gap[0] = now

    workers_back = [0, 0]  # crashes/hangs not yet followed by a new worker, new workers

    def on_event(e):
        events[e.kind] += 1
        if e.kind.startswith(fault_kinds):
            timeline.append((round(time.monotonic() - t0, 1), e.kind))
        # A crashed worker is replaced by its restart, or by a hot reload's new worker when the
        # reload closed the pool during the restart (the frames kept running meanwhile).
        if e.kind == "worker_restarted" or (e.kind == "model_reloaded" and workers_back[0]):
            n = 1 if e.kind == "worker_restarted" else workers_back[0]
            workers_back[0] = max(0, workers_back[0] - n)
            workers_back[1] += n
        if e.kind in ("worker_crashed", "worker_hung"):  # the next worker fails the other way
            workers_back[0] += 1
            mode["hang"] = not mode["hang"]
            key_on, key_off = (("HANG", "CRASH") if mode["hang"] else ("CRASH", "HANG"))
            os.environ[f"EDGETPU_STANDIN_{key_on}_AFTER"] = str(args.crash_every)
            os.environ.pop(f"EDGETPU_STANDIN_{key_off}_AFTER", None)

    video = make_video(tmp / "soak.avi", 120)
    source = FlakySource(OpenCVSource(str(video), loop=True), reopen_failures=2)
    source.live, source.fps = False, 30.0  # played at 30 fps, newest frame wins: a camera
    worker = load()
    stop, reload_event, started, outcome = threading.Event(), threading.Event(), {}, {}
    kernel = FakeKernel(root, wedge=wedge)

    def on_start(info):
        started.update(info)
        if info.get("reload") is not None:
            info["reload"].load = load  # reloads build the same stand-in worker

    def serve_thread():
        try:
            with open(os.devnull, "w") as devnull:
                outcome["stats"] = serve.run(
                    cfg, stop=stop, stdout=devnull, classifier=worker,
                    source=source, on_start=on_start,
                    extra_sinks=[CallbackSink(on_result, on_event)], reload=reload_event,
                    root=str(root), resetter=KernelUsbReset(root, ioctl=kernel,
                                                           is_root=lambda: False))  # fmt: skip
        except BaseException as e:  # a crash is what this script looks for
            outcome["crash"] = f"{type(e).__name__}: {e}"

    t0 = time.monotonic()
    duration = args.minutes * 60.0
    warmup = min(60.0, max(15.0, duration * 0.1))
    t0 = time.monotonic()
    th = threading.Thread(target=serve_thread, name="soak-serve")
    th.start()
    series: list[dict] = []
    http_errors = 0
    due = {"vanish": args.vanish_every, "wedge": args.wedge_every, "reload": args.reload_every}
    if broker:
        due["rollout"] = args.rollout_every
    rollouts: list = []
    rollout_out: list[dict] = []
    restore_at = None
    last: dict = {}
    pending = None  # (kind, time injected, results then, event marking recovery, its count)
    stall = [0, 0.0, False]  # results, when they last changed, reported
    camera_due = args.camera_every
    recoveries: dict[str, list[float]] = {k: [] for k in due}
    # after the set time, a fault still being recovered from gets up to 45 s more
    while th.is_alive() and (time.monotonic() - t0 < duration
                             or (pending is not None and time.monotonic() - t0 < duration + 45)):
        time.sleep(1.0)
        now = time.monotonic() - t0
        if "http" in started:
            try:
                with urllib.request.urlopen(started["http"] + "latest", timeout=5) as r:
                    last = json.loads(r.read())
            except OSError:
                http_errors += 1
        if int(now) % 5 == 0:
            series.append(sample(t0, {**last, "accounting": last.get("stats", {}).get(
                "accounting", {})}))  # fmt: skip
        if restore_at is not None and now >= restore_at:  # the Coral is plugged back in
            (tmp / "unplugged").rename(dev)
            wedge.unlink(missing_ok=True)
            restore_at = None
        if now >= camera_due and now < duration - 10:  # independent of the device faults
            camera_due = now + args.camera_every
            injected["camera"] += 1
            source.lose_at.add(source.reads + 1)
            source.corrupt_at.add(source.reads + 30)
            timeline.append((round(now, 1), "INJECT camera loss + corrupt frame"))
        collect(rollouts, rollout_out)  # a finished rollout's pipes are closed at once
        processed = last.get("stats", {}).get("frames", 0)
        if processed != stall[0]:
            stall[:2] = [processed, now]
        elif now - stall[1] > 45 and not stall[2]:  # no result for 45 s: say where it hangs
            stall[2] = True
            timeline.append((round(now, 1), "STALL: no results for 45 s"))
            import faulthandler

            faulthandler.dump_traceback(all_threads=True)
        normal = last.get("backend") == "edgetpu" and not last.get("degraded")
        if pending is not None:  # one fault at a time: recovered = back on the Edge TPU
            kind, t_inj, frames_at, marker, count_at = pending
            done = kind == "rollout" and not rollouts  # collected into rollout_out
            shipped = kind != "rollout" or (done and rollout_out[-1]["exit"] == 0)
            if done and rollout_out[-1]["exit"] != 0:  # it stopped
                timeline.append((round(now, 1), "FAILED rollout (see rollouts)"))
                pending = None
                continue
            if (restore_at is None and normal and processed > frames_at + 5 and shipped
                    and (marker is None or events[marker] > count_at)):  # fmt: skip
                recoveries[kind].append(round(now - t_inj, 1))
                timeline.append((round(now, 1), f"RECOVERED {kind}"))
                pending = None
            continue
        kind = min((k for k in due if now >= due[k]), key=due.get, default=None)  # oldest due
        if kind is None or not normal or now > duration - 15:
            continue
        due[kind] = now + getattr(args, f"{kind}_every")
        injected[kind] += 1
        timeline.append((round(now, 1), f"INJECT {kind}"))
        marker = {"vanish": None, "wedge": "device_recovered", "reload": "model_reloaded",
                  "rollout": "model_reloaded"}[kind]  # fmt: skip
        pending = (kind, now, processed, marker, events[marker] if marker else 0)
        if kind == "vanish":  # the Coral leaves the bus; transfers to it fail
            wedge.touch()
            dev.rename(tmp / "unplugged")
            restore_at = now + 8.0
        elif kind == "wedge":  # every transfer fails until the device is reset
            wedge.touch()
        elif kind == "reload":
            reload_event.set()
        else:  # ship the other bundle to this "fleet" of one, through the broker
            target = bundles[injected["rollout"] % 2]
            rollouts.append(subprocess.Popen(
                [str(Path(sys.executable).with_name("edgekit")), "rollout", str(target),
                 "--broker", f"127.0.0.1:{broker[1]}", "--topic", "soak", "--wait", "3",
                 "--timeout", "90", "--json"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))  # fmt: skip
    time.sleep(3.0)  # let the last recovery be reported
    end = sample(t0, {**last, "accounting": last.get("stats", {}).get("accounting", {})})
    stop.set()
    th.join(30)
    for p in rollouts:
        if p.poll() is None:
            p.kill()
    collect(rollouts, rollout_out)
    if broker:
        broker[0].terminate()
        broker[0].wait(10)
    current = started.get("reload").resilient.classifier if started.get("reload") else worker
    current.close()
    if worker is not current:
        worker.close()
    stats = outcome.get("stats", {})
    acc = stats.get("accounting", {})
    shm_after = shm_segments()[0]
    after_warm = [s for s in series if s["t_s"] >= warmup] + [end]
    half = len(after_warm) // 2

    def growth(key):
        """Peak of the second half after the warm-up minus the peak of the first half: a leak
        raises every later peak; a worker restarting (RSS low while it loads) does not."""
        if half == 0:
            return 0.0
        return round(max(s[key] for s in after_warm[half:])
                     - max(s[key] for s in after_warm[:half]), 1)  # fmt: skip

    crashes = events["worker_crashed"] + events["worker_hung"]
    reported = {"worker crash/hang": (crashes, workers_back[1], []),
                "camera lost": (injected["camera"], events["source_reconnected"], []),
                "corrupt frame": (injected["camera"], events["decode_error"], [])}
    for k, name in (("vanish", "device vanished"), ("wedge", "device wedged"),
                    ("reload", "hot reload"), ("rollout", "signed rollout")):  # fmt: skip
        reported[name] = (injected[k], len(recoveries[k]), recoveries[k])
    checks = {
        "no_crash": "crash" not in outcome and not th.is_alive(),
        "no_stall": not stall[2],
        "accounting_exact": bool(acc.get("final") and acc.get("balanced")),
        "faults_injected": crashes > 0 and all(injected[k] > 0 for k in [*due, "camera"]),
        "rollout_ran": broker is None or args.rollout_every <= 0 or injected["rollout"] > 0,
        "every_fault_recovered": all(got >= n for k, (n, got, _) in reported.items()
                                     if k != "signed rollout"),
        # a rollout that stopped says why (rollouts[].stderr); counted apart from the faults
        "rollouts_ok": all(x["exit"] == 0 for x in rollout_out),
        "rss_flat": growth("rss_mib") <= args.max_growth_mib,
        "worker_rss_flat": growth("worker_rss_mib") <= args.max_growth_mib,
        "fds_flat": growth("fds") <= args.max_fd_growth,
        "shm_flat": max(s["shm_segments"] for s in series + [end]) <= 2 and shm_after == 0,
        "back_on_edgetpu": stats.get("backend") == "edgetpu" and not stats.get("degraded"),
    }
    faults = {k: {"injected": n, "recovered": got, "recovery_s": secs}
              for k, (n, got, secs) in reported.items()}  # fmt: skip
    report = {
        "minutes": args.minutes, "accounting": acc, "faults": faults, "events": dict(events),
        "growth_after_warmup": {k: growth(k) for k in ("rss_mib", "worker_rss_mib", "fds",
                                                        "shm_segments")},
        "longest_gap_s": round(gap[1], 2), "warmup_s": warmup,
        "shm_segments_after_stop": shm_after, "http_errors": http_errors,
        "crash": outcome.get("crash"), "series": series + [end], "timeline": timeline,
        "rollouts": rollout_out,
        "latency_ms": stats.get("latency_ms"), "checks": checks, "ok": all(checks.values()),
    }  # fmt: skip
    if args.plot:
        report["plot"] = plot(report["series"], args.plot)
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 0 if report["ok"] else 1


def print_table(r: dict) -> None:
    a = r["accounting"]
    print(f"soak {r['minutes']:g} min, crash: {r['crash']}")
    print(f"  longest time without a result: {r['longest_gap_s']} s")
    print(f"  frames: captured {a.get('captured')} = processed {a.get('processed')} + dropped "
          f"{a.get('dropped')} + failed {a.get('failed')} + unprocessed "
          f"{a.get('unprocessed')}  ({'exact' if a.get('balanced') else 'NOT BALANCED'})")
    for k, v in r["faults"].items():
        secs = v["recovery_s"]
        took = f"  back on the Edge TPU after {min(secs):g}-{max(secs):g} s" if secs else ""
        print(f"  {k:18s} injected {v['injected']:4d}  recovered {v['recovered']:4d}{took}")
    print(f"  {'t (s)':>7} {'RSS MiB':>8} {'worker':>7} {'fds':>4} {'shm':>4} {'shm KiB':>8} "
          f"{'captured':>9} {'processed':>9} {'dropped':>8} {'failed':>6}  backend")
    rows = r["series"]
    step = max(1, len(rows) // 24)
    for s in rows[::step] + ([rows[-1]] if (len(rows) - 1) % step else []):
        print(f"  {s['t_s']:7.0f} {s['rss_mib']:8.1f} {s['worker_rss_mib']:7.1f} {s['fds']:4d} "
              f"{s['shm_segments']:4d} {s['shm_kib']:8.1f} {s['captured']:9d} "
              f"{s['processed']:9d} {s['dropped']:8d} {s['failed']:6d}  {s['backend']}")
    g = r["growth_after_warmup"]
    print(f"  growth after the {r['warmup_s']:g} s warm-up (peak of the 2nd half - peak of the "
          "1st half):")
    print(f"    RSS {g['rss_mib']} MiB, worker "
          f"{g['worker_rss_mib']} MiB, fds {g['fds']}, shm segments {g['shm_segments']}; "
          f"/dev/shm after stop: {r['shm_segments_after_stop']}")
    if r.get("plot"):
        print(f"  plot: {r['plot']}")
    print("  checks: " + ", ".join(f"{k}={'ok' if v else 'FAIL'}" for k, v in r["checks"].items()))


def plot(series: list[dict], path: str) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    t = [s["t_s"] / 60.0 for s in series]
    fig, axes = plt.subplots(4, 1, figsize=(8, 8), sharex=True)
    axes[0].plot(t, [s["rss_mib"] for s in series], label="serve")
    axes[0].plot(t, [s["worker_rss_mib"] for s in series], label="worker")
    axes[0].set_ylabel("RSS MiB")
    axes[0].legend()
    axes[1].plot(t, [s["fds"] for s in series])
    axes[1].set_ylabel("open fds")
    axes[2].plot(t, [s["shm_kib"] for s in series])
    axes[2].set_ylabel("/dev/shm KiB")
    axes[3].plot(t, [s["fps"] or 0 for s in series])
    axes[3].set_ylabel("fps")
    axes[3].set_xlabel("minutes")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


if __name__ == "__main__":
    sys.exit(main())
