#!/usr/bin/env python3
"""Does the streaming pipeline keep the model busy? Measured side by side in one run:

  A. bare ``interpreter.invoke()`` on a fixed input: the ceiling (frames/s)
  B. a naive sequential loop: read a video frame, BGR->RGB, resize+quantize, invoke, top-k
  C. the edgekit pipeline (capture thread + newest-frame slot + inference worker + sinks) on
     the same video, in-process
  D. ``edgekit serve`` as a subprocess on the same video: time to first result and resident
     memory (VmRSS while running, VmHWM peak, from /proc/<pid>/status)
  E. the pipeline of C with inference in the worker process (edgekit.stream.worker: what serve
     does for the Edge TPU): frames through shared memory, results over a pipe
  F. the Edge TPU's case, where invoke() waits on the USB device instead of using a CPU core:
     a model whose invoke is a ``--device-ms`` wait (4.6 ms: Coral's MobileNet v2 224 on a Pi 4)
     fed decoded frames from memory (so that invoke, not decoding, is the bottleneck): bare vs
     the pipeline in-process vs in the worker process

  G. several Edge TPUs (``--devices N``, default 2) through serve's REAL pipeline and worker
     processes (edgekit.stream.pool): the compiled MobileNet v2 on stand-in libedgetpu libraries
     (tests/edgetpu_standin, built with cc) whose invoke sleeps ``--device-ms``, N fake Corals
     in a fake sysfs; bare ``interpreter.invoke()`` on one of them vs the pool on one device
     (two frames in flight) vs the pool on N (what serve runs for ``--device usb:*``):
     ``one_device_vs_bare`` (goal >= 0.95) and ``multi_device_speedup`` = N devices / one
     (goal >= 0.9 N). ``serve_one_device_vs_bare`` (goal >= 0.95): what serve builds for
     ``[model] device = "usb"`` (serve.start_workers, as load_model calls it: a pool of one) on
     the same device. Also the one-frame-at-a-time ``ModelProcess.run`` of E on the same device
     (``one_in_flight_vs_bare``: serve's one-device path before issue 17).
  H. the same one-device serve on a DETECTOR and a CASCADE (detector + 2 crops classified, one
     device): ``serve_one_device_detector_vs_bare`` and ``serve_one_device_cascade_vs_bare``
     (goal >= 0.95), and each one request at a time in the worker (before they had stages);
     see scripts/bench_staged_serve.py (builds a tiny detector with TensorFlow: skipped without)

Rounds of A, B, C and E alternate so neighbours' load hits all equally; medians are reported
with C/A and E/A (target >= 0.9 when inference is the bottleneck, e.g. MobileNet v2 224 on the
CPU), E/C (the cost of the process boundary) and C/B (target > 1: the pipeline overlaps decoding
with inference).

    python scripts/bench_pipeline.py [--model tests/data/coral/mobilenet_v2_1.0_224_quant.tflite]
        [--frames 150] [--rounds 3] [--threads N] [--device-ms 4.6] [--devices 2] [--no-cpu]
        [--json]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORAL = ROOT / "tests" / "data" / "coral"


def make_video(path: Path, frames: int, size=(640, 480)) -> Path:
    import cv2

    from edgekit.images import load_rgb, resize

    photos = [resize(load_rgb(CORAL / n), (size[1], size[0])) for n in
              ("cat.bmp", "parrot.jpg", "bird.bmp", "grace_hopper.bmp")]  # fmt: skip
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, size)
    for i in range(frames):
        w.write(cv2.cvtColor(photos[(i // 15) % len(photos)], cv2.COLOR_RGB2BGR))
    w.release()
    return path


def bare_rate(clf, n: int) -> float:
    import numpy as np

    r = clf.runner
    r.set_input(np.zeros(r.input_shape, dtype=r.input_dtype))
    interp = r.interpreter
    interp.invoke()
    t0 = time.perf_counter()
    for _ in range(n):
        interp.invoke()
    return n / (time.perf_counter() - t0)


def naive_rate(clf, video: Path, n: int) -> float:
    import cv2

    cap = cv2.VideoCapture(str(video))
    done = 0
    t0 = time.perf_counter()
    while done < n:
        ok, bgr = cap.read()
        if not ok:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        clf.classify(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        done += 1
    rate = n / (time.perf_counter() - t0)
    cap.release()
    return rate


def pipeline_rate(clf, video, n: int) -> tuple[float, dict]:
    """``video``: a file, or a Source."""
    from edgekit.stream import serve
    from edgekit.stream.config import from_dict
    from edgekit.stream.sinks import CallbackSink
    from edgekit.stream.sources import OpenCVSource

    times: list[float] = []
    cfg = from_dict({"output": {"json_lines": False}, "pipeline": {"max_frames": n}})
    sink = CallbackSink(lambda r: times.append(time.perf_counter()))
    src = OpenCVSource(str(video), loop=True) if isinstance(video, Path) else video
    stats = serve.run(cfg, classifier=clf, source=src, extra_sinks=[sink])
    # From the first result to the last: excludes thread start-up, like the others' warm-up.
    return (len(times) - 1) / (times[-1] - times[0]), stats


class DeviceBoundModel:
    """Stands in for a model on the Edge TPU: preprocessing like the classifier's, then an
    invoke() that waits ``ms`` for the device (time.sleep frees the CPU, as a USB transfer
    does). Module-level so that the worker process can build it."""

    def __init__(self, ms: float, size=(224, 224)):
        from edgekit.backends import Runner  # noqa: F401 - same imports as a real model

        self.ms, self.input_size, self.resize = ms, size, "stretch"
        self.runner = type("R", (), {"backend": "edgetpu-standin", "device": "usb:0",
                                     "provider": "sleep"})()  # fmt: skip

    def run(self, rgb):
        from edgekit.classify import Class, Classification
        from edgekit.images import prepare

        t0 = time.perf_counter()
        pixels = prepare(rgb, self.input_size, self.resize, "rgb", 3)
        t1 = time.perf_counter()
        self.invoke()
        t2 = time.perf_counter()
        return Classification((Class(int(pixels[0, 0, 0]), "x", 1.0),), (t2 - t1) * 1e3,
                              (t1 - t0) * 1e3)  # fmt: skip

    classify = run

    def invoke(self):
        time.sleep(self.ms / 1000.0)

    def close(self):
        pass


def memory_source(frames: list):
    """A source of decoded frames, faster than any model: the pipeline waits only on invoke."""
    from edgekit.stream.sources import Source

    class MemorySource(Source):
        name = "memory"

        def __init__(self):
            self.i = 0

        def read(self):
            self.i += 1
            return frames[self.i % len(frames)]

    return MemorySource()


def device_bound(video: Path, ms: float, n: int, rounds: int) -> dict:
    import cv2

    from edgekit.images import resize
    from edgekit.stream.worker import ModelProcess

    cap = cv2.VideoCapture(str(video))
    frames = [resize(cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB), (224, 224), "stretch")
              for _ in range(8)]  # fmt: skip
    cap.release()

    inline = DeviceBoundModel(ms)
    worker = ModelProcess(functools.partial(DeviceBoundModel, ms))
    bare, pipe, proc = [], [], []
    try:
        for _ in range(rounds):
            t0 = time.perf_counter()
            for _ in range(n):
                inline.invoke()
            bare.append(n / (time.perf_counter() - t0))
            pipe.append(pipeline_rate(inline, memory_source(frames), n)[0])
            proc.append(pipeline_rate(worker, memory_source(frames), n)[0])
    finally:
        worker.close()
    a, c, e = (statistics.median(x) for x in (bare, pipe, proc))
    return {"device_ms": ms, "bare_fps": round(a, 2), "pipeline_fps": round(c, 2),
            "worker_pipeline_fps": round(e, 2), "pipeline_vs_bare": round(c / a, 3),
            "worker_vs_bare": round(e / a, 3), "worker_vs_inline": round(e / c, 3)}  # fmt: skip


def several_devices(n_devices: int, ms: float, n: int, rounds: int, tmp: Path) -> dict:
    """G: bare invoke vs serve on one stand-in Edge TPU vs serve on ``n_devices``."""
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from edgekit.classify import Classifier
    from edgekit.stream import serve
    from edgekit.stream.config import from_dict
    from edgekit.stream.pool import DevicePool
    from edgekit.stream.worker import ModelProcess
    from tests.stream.worker_models import standin_classifier

    root = standin_corals(n_devices, ms, tmp)
    model = str(CORAL / "mobilenet_v2_1.0_224_quant_edgetpu.tflite")
    labels = str(CORAL / "imagenet_labels.txt")
    factory = functools.partial(standin_classifier, model, str(root), labels=labels)
    devices = [f"usb:{i}" for i in range(n_devices)]
    rng = np.random.default_rng(0)
    frames: list = []
    bare, one_rate, many_rate, single_rate, serve_rate = [], [], [], [], []
    serve_cfg = from_dict({"model": {"path": model, "labels": labels, "device": "usb"}})

    def measure(make, out: list, frames_n: int) -> None:
        measure_serve(make, frames, out, frames_n)

    for _ in range(rounds):  # alternating, so that neighbours' load hits all alike
        clf = Classifier(model, labels=labels, device="usb:0")
        if not frames:
            frames += [rng.integers(0, 256, (*clf.input_size, 3), dtype=np.uint8)
                       for _ in range(8)]  # fmt: skip
        bare.append(bare_rate(clf, n))
        clf.close()  # releases usb:0 for the workers
        measure(lambda: DevicePool(factory, devices[:1]), one_rate, n)
        measure(lambda: DevicePool(factory, devices), many_rate, n * n_devices)
        # the one-frame-at-a-time worker of E, on the same usb:0
        measure(lambda: ModelProcess(functools.partial(factory, device="usb:0")), single_rate, n)
        measure(lambda: serve.start_workers(factory, serve_cfg), serve_rate, n)  # serve's own
    a, b, c, d, e = (statistics.median(x)
                     for x in (bare, one_rate, many_rate, single_rate, serve_rate))  # fmt: skip
    staged = staged_models(ms, n, rounds, tmp, root)
    return {"devices": n_devices, "device_ms": ms, "model": Path(model).name,
            "bare_fps": round(a, 2), "one_device_fps": round(b, 2),
            "devices_fps": round(c, 2), "one_in_flight_fps": round(d, 2),
            "serve_one_device_fps": round(e, 2),
            "one_device_vs_bare": round(b / a, 3), "multi_device_speedup": round(c / b, 3),
            "serve_one_device_vs_bare": round(e / a, 3),
            "devices_vs_bare": round(c / (a * n_devices), 3),
            "one_in_flight_vs_bare": round(d / a, 3),
            **{k: staged.get(k) for k in STAGED_KEYS}, "detector_and_cascade": staged,
            "all": {"bare": [round(x, 2) for x in bare], "one": [round(x, 2) for x in one_rate],
                    "many": [round(x, 2) for x in many_rate],
                    "one_in_flight": [round(x, 2) for x in single_rate],
                    "serve_one": [round(x, 2) for x in serve_rate]}}  # fmt: skip


def standin_corals(n_devices: int, ms: float, tmp: Path) -> Path:
    """``n_devices`` fake Corals (a fake sysfs under ``tmp``) whose stand-in libedgetpu's
    invoke sleeps ``ms``, registered as this process's Edge TPU backend (workers inherit the
    environment). Returns the sysfs root."""
    sys.path.insert(0, str(ROOT))
    from edgekit import backends
    from edgekit.backends.edgetpu import SystemStack
    from tests.edgetpu_standin import build
    from tests.runtime.runtime_fakes import make_sysfs

    lib = build(tmp / "standin" / "works")
    root = make_sysfs(tmp / "root", usb=[(f"2-{i + 1}", "18d1", "9302", 5000)
                                         for i in range(n_devices)])  # fmt: skip
    os.environ.update({"EDGEKIT_LIBEDGETPU": str(lib), "EDGETPU_STANDIN_DEVICES": str(n_devices),
                       "EDGETPU_STANDIN_INVOKE_MS": str(ms), "XDG_CACHE_HOME": str(tmp / "cache"),
                       "EDGEKIT_LOCK_DIR": str(tmp / "locks")})  # fmt: skip
    backends.register_backend("edgetpu", backends.EdgeTpuBackend(SystemStack(root=root)))
    return root


def measure_serve(make, frames: list, out: list, n: int) -> None:
    """Append the frames/s of serve's pipeline on the model ``make()`` builds, fed ``frames``
    from memory; the model is closed after (one process per Edge TPU at a time)."""
    model = make()
    try:
        out.append(pipeline_rate(model, memory_source(frames), n)[0])
    finally:
        model.close()


STAGED_KEYS = ("serve_one_device_detector_vs_bare", "serve_one_device_cascade_vs_bare")


def staged_models(ms: float, n: int, rounds: int, tmp: Path, root: Path) -> dict:
    """H: serve's one-device worker on a detector and a cascade (scripts/bench_staged_serve.py);
    ``{"skipped": why}`` where TensorFlow cannot build the tiny detector (a Pi)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_staged_serve import detector_and_cascade

    try:
        return detector_and_cascade(ms, n, rounds, tmp, root)
    except (ImportError, RuntimeError) as e:
        return {"skipped": str(e).splitlines()[0] if str(e) else type(e).__name__}


def proc_status(pid: int) -> dict:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024.0  # kB -> MiB
    except OSError:
        pass
    return out


def serve_subprocess(model: Path, labels: Path, video: Path, n: int, threads) -> dict:
    exe = Path(sys.executable).parent / "edgekit"
    cmd = [str(exe), "serve", "--model", str(model), "--labels", str(labels),
           "--source", str(video), "--loop", "--max-frames", str(n), "--device", "cpu"]  # fmt: skip
    if threads:
        cmd += ["--threads", str(threads)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    first = None
    count, status = 0, {}
    for line in proc.stdout:
        if '"frame"' not in line:
            continue
        count += 1
        if first is None:
            first = time.perf_counter() - t0
        if count >= n - 2:  # still running: the peak so far is the steady state's
            status = proc_status(proc.pid) or status
        elif count == n // 2:
            status = proc_status(proc.pid)
    proc.wait(60)
    nan = float("nan")
    return {"time_to_first_result_s": round(first or nan, 3), "results": count,
            "rss_mib": round(status.get("VmRSS", nan), 1),
            "hwm_mib": round(status.get("VmHWM", nan), 1),
            "exit_code": proc.returncode}  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(CORAL / "mobilenet_v2_1.0_224_quant.tflite"))
    ap.add_argument("--labels", default=str(CORAL / "imagenet_labels.txt"))
    ap.add_argument("--frames", type=int, default=150, help="frames per measurement")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="CPU interpreter threads")
    ap.add_argument("--device-ms", type=float, default=4.6,
                    help="F: the Edge TPU invoke time to emulate (0 = skip F)")  # fmt: skip
    ap.add_argument("--devices", type=int, default=2,
                    help="G: stand-in Edge TPUs to spread frames over (0 = skip G)")
    ap.add_argument("--no-cpu", action="store_true", help="only F and G (the Edge TPU's cases)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.no_cpu:
        return edge_only(args)

    from edgekit.classify import Classifier
    from edgekit.stream.worker import ModelProcess

    with tempfile.TemporaryDirectory() as tmp:
        video = make_video(Path(tmp) / "bench.avi", 120)
        clf = Classifier(args.model, labels=args.labels, device="cpu", threads=args.threads)
        naive_rate(clf, video, 10)  # warm-up: page in the model and the decoder
        worker = ModelProcess(functools.partial(Classifier, args.model, labels=args.labels,
                                                device="cpu", threads=args.threads))  # fmt: skip
        worker_rate = []
        bare, naive, pipe, busy = [], [], [], []
        for _ in range(args.rounds):
            bare.append(bare_rate(clf, args.frames))
            naive.append(naive_rate(clf, video, args.frames))
            rate, stats = pipeline_rate(clf, video, args.frames)
            pipe.append(rate)
            # Share of the worker's wall time spent inside invoke(): ~1 means the model never
            # waits for a frame; a pipeline/bare ratio below that is invoke() itself running
            # slower next to the capture thread (2 cores shared with decoding and neighbours).
            busy.append(stats["inference_ms"]["mean"] * rate / 1000.0)
            worker_rate.append(pipeline_rate(worker, video, args.frames)[0])
        worker.close()
        tpu = {}
        if args.device_ms:
            tpu = device_bound(video, args.device_ms, args.frames, args.rounds)
        sub = serve_subprocess(Path(args.model), Path(args.labels), video, args.frames,
                               args.threads)  # fmt: skip
        multi = {}
        if args.devices and args.device_ms:
            multi = several_devices(args.devices, args.device_ms, args.frames, args.rounds,
                                    Path(tmp))  # fmt: skip
    a, b, c, e = (statistics.median(x) for x in (bare, naive, pipe, worker_rate))
    report = {
        "model": Path(args.model).name, "frames": args.frames, "rounds": args.rounds,
        "threads": args.threads, "cpus": os.cpu_count(),
        "bare_invoke_fps": round(a, 2), "naive_loop_fps": round(b, 2),
        "pipeline_fps": round(c, 2),
        "pipeline_vs_bare": round(c / a, 3), "pipeline_vs_naive": round(c / b, 3),
        "pipeline_invoke_busy": round(statistics.median(busy), 3),
        "worker_pipeline_fps": round(e, 2), "worker_vs_bare": round(e / a, 3),
        "worker_vs_inline": round(e / c, 3),
        "pipeline_latency_ms": stats["latency_ms"], "pipeline_dropped": stats["dropped"],
        "serve": sub, "device_bound": tpu, "several_devices": multi,
        "one_device_vs_bare": multi.get("one_device_vs_bare"),
        "serve_one_device_vs_bare": multi.get("serve_one_device_vs_bare"),
        **{k: multi.get(k) for k in STAGED_KEYS},
        "multi_device_speedup": multi.get("multi_device_speedup"),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "all": {"bare": [round(x, 2) for x in bare], "naive": [round(x, 2) for x in naive],
                "pipeline": [round(x, 2) for x in pipe],
                "worker": [round(x, 2) for x in worker_rate]},
    }  # fmt: skip
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"model {report['model']}, {args.frames} frames x {args.rounds} rounds, "
          f"{report['cpus']} CPUs, threads={args.threads}")  # fmt: skip
    print(f"  bare invoke()          {a:7.2f} fps")
    print(f"  naive read+invoke loop {b:7.2f} fps")
    print(f"  edgekit pipeline       {c:7.2f} fps   = {c / a:.3f}x bare (target >= 0.9), "
          f"{c / b:.3f}x naive (target > 1)")  # fmt: skip
    print(f"  pipeline, worker process {e:7.2f} fps   = {e / a:.3f}x bare (target >= 0.9), "
          f"{e / c:.3f}x in-process")  # fmt: skip
    if tpu:
        print(f"  {tpu['device_ms']} ms device-bound invoke (the Edge TPU's case): bare "
              f"{tpu['bare_fps']} fps; pipeline {tpu['pipeline_vs_bare']:.3f}x bare in-process, "
              f"{tpu['worker_vs_bare']:.3f}x bare in the worker process "
              "(target >= 0.9)")  # fmt: skip
    if multi:
        print_multi(multi)
    print(f"  pipeline worker inside invoke() {report['pipeline_invoke_busy']:.1%} of the time")
    lat = stats["latency_ms"]
    print(f"  pipeline latency p50/p90/p99 {lat['p50']}/{lat['p90']}/{lat['p99']} ms")
    print(f"  edgekit serve: first result after {sub['time_to_first_result_s']} s, "
          f"RSS {sub['rss_mib']} MiB (peak {sub['hwm_mib']} MiB)")  # fmt: skip
    return 0


def print_multi(m: dict) -> None:
    print(f"  {m['device_ms']} ms stand-in Edge TPU, serve's pool: bare {m['bare_fps']} fps; "
          f"one device {m['one_device_vs_bare']:.3f}x bare, serve's one-device worker "
          f"{m['serve_one_device_vs_bare']:.3f}x (goal >= 0.95; one frame in flight: "
          f"{m['one_in_flight_vs_bare']:.3f}x); {m['devices']} devices {m['devices_fps']} fps = "
          f"{m['multi_device_speedup']:.3f}x one device")  # fmt: skip
    staged = m.get("detector_and_cascade") or {}
    if "skipped" in staged:
        print(f"  detector and cascade on one device: skipped ({staged['skipped']})")
    elif staged:
        from bench_staged_serve import print_staged

        print_staged(staged)


def edge_only(args) -> int:
    """F and G only: the Edge TPU's cases, without the CPU model's rounds."""
    with tempfile.TemporaryDirectory() as tmp:
        video = make_video(Path(tmp) / "bench.avi", 16)
        tpu = device_bound(video, args.device_ms, args.frames, args.rounds)
        multi = several_devices(args.devices or 1, args.device_ms, args.frames, args.rounds,
                                Path(tmp))  # fmt: skip
    report = {"frames": args.frames, "rounds": args.rounds, "cpus": os.cpu_count(),
              "device_bound": tpu, "several_devices": multi,
              "one_device_vs_bare": multi["one_device_vs_bare"],
              "serve_one_device_vs_bare": multi["serve_one_device_vs_bare"],
              **{k: multi.get(k) for k in STAGED_KEYS},
              "multi_device_speedup": multi["multi_device_speedup"],
              "load_average": [round(x, 2) for x in os.getloadavg()]}  # fmt: skip
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_multi(multi)
    return 0


if __name__ == "__main__":
    sys.exit(main())
