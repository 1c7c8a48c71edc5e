"""Inference latency of a Runner: first inference apart, then steady state.

The first invoke() on an Edge TPU also uploads the model's parameters into its ~8 MB on-chip
cache (and on a fresh USB stick, libedgetpu's firmware), so it is reported on its own. The timed
loop sets the input once and times nothing but ``interpreter.invoke()`` with
``time.perf_counter_ns`` into a preallocated array: no Python wrapper, no allocation, no
conversion inside the loop (scripts/bench_runtime.py checks that this adds < 5%).
"""

from __future__ import annotations

import io
import os
import platform
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgekit import limits
from edgekit.backends import Runner, open_model
from edgekit.errors import EdgekitError

_JSON_KEYS = (
    "device", "model", "runs", "warmup", "threads", "backend", "first_ms", "min_ms", "mean_ms",
    "p50_ms", "p90_ms", "p99_ms", "max_ms", "fps", "provider", "versions", "task",
)  # fmt: skip


@dataclass(frozen=True)
class BenchResult:
    """Latencies in milliseconds; ``fps`` = 1000 / mean_ms (sequential inferences per second);
    ``latencies_ms`` holds every steady-state run in order."""

    model: str
    device: str
    backend: str
    provider: str
    threads: int | None
    runs: int
    warmup: int
    first_ms: float
    min_ms: float
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    fps: float
    versions: dict[str, str] = field(default_factory=dict)
    latencies_ms: tuple[float, ...] = ()
    task: str = "classify"
    # detectors: decode + NMS of the model's output, timed apart from invoke (see bench())
    decode: dict[str, Any] | None = None
    # compiled segments pipelined over several Edge TPUs: frames/s with every device busy
    # (edgekit.backends.segment_pipeline.measure_pipelined), beside the one-at-a-time ``fps``
    pipeline: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in _JSON_KEYS}
        if self.decode is not None:
            d["decode"] = self.decode
        if self.pipeline is not None:
            d["pipeline"] = self.pipeline
        return d


def rounded(report: Any) -> Any:
    """``report`` as ``bench --json`` prints it: times (keys ending ``_ms``) to 3 decimals (1 us,
    below what perf_counter resolves through an interpreter) and ``fps`` to 2; what the timer
    measured beyond that is noise, and 0.42364749999999995 reads as a bug."""
    if isinstance(report, dict):
        return {k: _round(k, v) if isinstance(v, float) else rounded(v)
                for k, v in report.items()}  # fmt: skip
    if isinstance(report, (list, tuple)):
        return [rounded(v) for v in report]
    return report


def _round(key: str, v: float) -> float:
    if not np.isfinite(v):
        return v
    return round(v, 3) if key.endswith("_ms") else round(v, 2) if key == "fps" else v


def time_invokes(invoke: Callable[[], None], out: np.ndarray) -> None:
    """Fill ``out`` (int64, preallocated) with the duration of one ``invoke()`` each, in ns."""
    clock = time.perf_counter_ns
    for i in range(out.shape[0]):
        t0 = clock()
        invoke()
        out[i] = clock() - t0


def sample_input(runner: Runner, seed: int = 0) -> np.ndarray:
    """A fixed pseudo-random input of the model's shape and dtype (content barely matters)."""
    rng = np.random.default_rng(seed)
    dt = runner.input_dtype
    if dt.kind == "f":
        return rng.uniform(-1, 1, runner.input_shape).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, runner.input_shape, endpoint=True).astype(dt)


def measure(
    runner: Runner,
    runs: int = 100,
    warmup: int = 10,
    first: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
    keep_input: bool = False,
) -> BenchResult:
    """Benchmark an open runner: (optionally) the first inference, ``warmup`` untimed runs, then
    ``runs`` timed ones. ``progress("benchmarking", done, runs)`` is called between blocks of
    about 2% of the runs, never inside a timed invoke. The input is a fixed pseudo-random one
    unless ``keep_input`` (the caller has written a real image into the input tensor)."""
    runs = limits.integer("runs", runs, 1, limits.MAX_COUNT)
    warmup = limits.integer("warmup", warmup, 0, limits.MAX_COUNT)
    if not keep_input:
        runner.set_input(sample_input(runner))
    invoke = runner.interpreter.invoke  # the bare bound method: no wrapper in the loop
    t = np.zeros(max(runs, 1), dtype=np.int64)
    try:
        first_ns = -1
        if first:
            t0 = time.perf_counter_ns()
            invoke()
            first_ns = time.perf_counter_ns() - t0
        for _ in range(warmup):
            invoke()
        if progress is None:
            time_invokes(invoke, t)
        else:
            block = max(1, runs // 50)
            for start in range(0, runs, block):
                time_invokes(invoke, t[start : start + block])  # a view: fills t in place
                progress("benchmarking", min(start + block, runs), runs)
    except (RuntimeError, ValueError) as e:
        raise runner.fault(e) from None
    ms = t / 1e6
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    mean = float(ms.mean())
    from edgekit.backends.segment_pipeline import measure_pipelined, pipeline_of

    pipeline = None
    if pipeline_of(runner) is not None:  # the same input as the timed runs
        x = runner.interpreter.tensor(runner.input_details["index"])().copy()
        pipeline = measure_pipelined(runner, runs, x)
        if pipeline["fps"] and mean > 0:
            pipeline["vs_one_at_a_time"] = round(pipeline["fps"] * mean / 1000.0, 3)
    return BenchResult(
        model=runner.model_path, device=runner.device, backend=runner.backend,
        provider=runner.provider, threads=runner.threads, runs=runs, warmup=warmup,
        first_ms=first_ns / 1e6 if first else float("nan"), min_ms=float(ms.min()),
        mean_ms=mean, p50_ms=float(p50), p90_ms=float(p90), p99_ms=float(p99),
        max_ms=float(ms.max()), fps=1000.0 / mean if mean > 0 else float("inf"),
        versions=versions(runner), latencies_ms=tuple(ms.tolist()), pipeline=pipeline,
    )  # fmt: skip


def versions(runner: Runner) -> dict[str, str]:
    from edgekit import __version__

    return {
        "edgekit": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "provider": runner.provider,
        "machine": platform.machine(),
    }


def bench(
    model: str | os.PathLike,
    device: str = "auto",
    runs: int = 100,
    warmup: int = 10,
    threads: int | None = None,
    on_warning: Callable[[str], None] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    image: str | os.PathLike | None = None,
    anchors: str | os.PathLike | None = None,
) -> BenchResult:
    """Open ``model`` on ``device`` and :func:`measure` it. ``image``: feed this image (through
    the task's own preprocessing) instead of random pixels. A detector (bundle task or guessed
    head) also gets its decode + NMS timed, on the output of that input, as ``decode``."""
    from edgekit.tasks import model_task, open_task_model

    task = model_task(model)
    if anchors and task != "detect":
        from edgekit.errors import EdgekitError

        raise EdgekitError(f"--anchors {anchors}: {model} is a {task} model, not a detector",
                           "--anchors is for a yolov3 detector's head: drop it")  # fmt: skip
    if task == "classify" and image is None:
        with open_model(model, device, threads, on_warning) as runner:
            return measure(runner, runs, warmup, progress=progress)
    from edgekit.images import load_rgb

    rgb = load_rgb(image) if image is not None else None
    kw = {"anchors": anchors} if anchors else {}
    m = open_task_model(model, task, device=device, threads=threads, on_warning=on_warning, **kw)
    try:
        if rgb is not None:
            m.run(rgb)  # writes the preprocessed image into the input tensor
        result = measure(m.runner, runs, warmup, progress=progress, keep_input=rgb is not None)
        decode = _time_decode(m, runs, "image" if rgb is not None else "random input")
    finally:
        m.close()
    return replace(result, task=task, decode=decode if task == "detect" else None)


def _time_decode(det: Any, runs: int, fed: str) -> dict[str, Any] | None:
    """decode + NMS (the decoder alone: dequantize, decode, NMS) of the current outputs,
    ``min(runs, 200)`` times."""
    if getattr(det, "task", None) != "detect":
        return None
    raw = {o.index: det.runner.interpreter.get_tensor(o.index) for o in det.decoder.io.outputs}
    n = min(runs, 200)
    t = np.zeros(n, dtype=np.int64)
    found = 0
    for i in range(n):
        t0 = time.perf_counter_ns()
        _, scores, _ = det.decoder.decode(raw, det.threshold, det.iou, det.max_detections)
        t[i] = time.perf_counter_ns() - t0
        found = len(scores)
    ms = t / 1e6
    return {
        "decoder": det.decoder_name, "runs": n, "p50_ms": float(np.median(ms)),
        "mean_ms": float(ms.mean()), "max_ms": float(ms.max()), "detections": found, "input": fed,
    }  # fmt: skip


PLOT_FORMATS = ("png", "svg", "pdf")


def plot_format(path: str | os.PathLike) -> str:
    """The image format ``--plot PATH`` asks for, from its suffix (none: PNG); anything else is
    refused, so a plot never lands in a file whose name promises text."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if not suffix:
        return "png"
    if suffix not in PLOT_FORMATS:
        raise EdgekitError(
            f"--plot {path}: a plot is an image, not .{suffix}",
            "name it .png, .svg or .pdf",
            exit_code=2,
        )
    return suffix


def plot(result: BenchResult, path: str | os.PathLike) -> Path:
    """Draw the latency distribution (histogram + per-run trace) atomically, as PNG, SVG or PDF
    by the path's suffix (:func:`plot_format`)."""
    fmt = plot_format(path)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise EdgekitError(
            "--plot needs matplotlib, which is not installed",
            "pip install matplotlib   (or pip install 'edgekit[plot]')",
        ) from None
    from edgekit.atomic import write_bytes

    ms = np.asarray(result.latencies_ms)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.hist(ms, bins=min(50, max(5, ms.size // 5)), color="#4a7ebb")
    for name, v, style in (("p50", result.p50_ms, "-"), ("p99", result.p99_ms, "--")):
        ax1.axvline(v, color="k", linestyle=style, label=f"{name} {v:.2f} ms")
    ax1.set(xlabel="latency (ms)", ylabel="runs", title="steady-state latency")
    ax1.legend()
    ax2.plot(np.arange(ms.size), ms, ".", markersize=3)
    first = f"first inference {result.first_ms:.1f} ms, not shown"
    ax2.set(xlabel="timed run", ylabel="latency (ms)", title=f"latency per run ({first})")
    fig.suptitle(f"{Path(result.model).name} on {result.device} ({result.provider})", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=100)
    plt.close(fig)
    return write_bytes(path, buf.getvalue())
