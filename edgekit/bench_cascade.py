"""``edgekit bench DETECTOR --classify CLASSIFIER``: a cascade's time per frame and per model.

Per model: each model's invoke alone, back to back (:func:`edgekit.bench.measure` on its
runner), as `bench` times one model. Per frame: the whole cascade on one image
(:meth:`edgekit.detect.cascade.Cascade.run`: the detector, then the classifier on each crop),
wall time per frame with its parts (detector invoke, crops' invokes, cutting + preprocessing
the crops, detector preprocessing and decode). On an Edge TPU the two differ by what switching
models costs: unless the two were co-compiled (`edgekit compile`), each switch reloads the
on-chip parameter cache, which the per-model loops never do.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

import numpy as np

from edgekit import limits


def _stats(ms: np.ndarray) -> dict[str, float]:
    p50, p90 = np.percentile(ms, [50, 90])
    return {"mean_ms": float(ms.mean()), "p50_ms": float(p50), "p90_ms": float(p90),
            "min_ms": float(ms.min()), "max_ms": float(ms.max())}  # fmt: skip


def bench_cascade(
    detector: str | os.PathLike,
    classifier: str | os.PathLike,
    device: str = "auto",
    runs: int = 100,
    warmup: int = 10,
    threads: int | None = None,
    on_warning: Callable[[str], None] | None = None,
    image: str | os.PathLike | None = None,
    crop_labels: list[str] | None = None,
    classify_labels: Any = None,
    anchors: Any = None,
) -> dict[str, Any]:
    """Time a cascade (module docstring). Without ``image`` the frame is random pixels, on
    which a detector usually finds nothing: then ``crops_per_frame`` is 0 and the per-frame
    time is the detector's alone (said in ``note``)."""
    from edgekit.bench import measure
    from edgekit.detect.cascade import open_cascade
    from edgekit.images import load_rgb

    runs = limits.integer("runs", runs, 1, limits.MAX_COUNT)
    warmup = limits.integer("warmup", warmup, 0, limits.MAX_COUNT)
    casc = open_cascade(detector, classifier, device=device, threads=threads,
                        on_warning=on_warning, crop_labels=crop_labels,
                        classify_labels=classify_labels, anchors=anchors)  # fmt: skip
    try:
        if image is not None:
            rgb = load_rgb(image)
        else:
            h, w = casc.detector.input_size
            rgb = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
        per_model = {}
        for name, m in (("detector", casc.detector), ("classifier", casc.classifier)):
            r = measure(m.runner, runs, warmup)
            per_model[name] = {"model": r.model, "device": r.device, "backend": r.backend,
                               "first_ms": r.first_ms, "mean_ms": r.mean_ms,
                               "p50_ms": r.p50_ms, "p90_ms": r.p90_ms, "fps": r.fps}  # fmt: skip
        for _ in range(warmup):
            casc.run(rgb)
        wall = np.zeros(runs)
        parts = {k: np.zeros(runs) for k in ("detect_ms", "classify_ms", "crop_ms")}
        other = np.zeros(runs)
        crops = np.zeros(runs, dtype=np.int64)
        for i in range(runs):
            t0 = time.perf_counter_ns()
            res = casc.run(rgb)
            wall[i] = (time.perf_counter_ns() - t0) / 1e6
            for k in parts:
                parts[k][i] = getattr(res, k)
            other[i] = res.preprocess_ms + res.decode_ms
            crops[i] = res.crops
    finally:
        casc.close()
    frame = {"wall": _stats(wall), "crops_per_frame": float(crops.mean()),
             **{k: float(v.mean()) for k, v in parts.items()},
             "detect_preprocess_decode_ms": float(other.mean())}  # fmt: skip
    mean = frame["wall"]["mean_ms"]
    out = {
        "task": "cascade", "runs": runs, "warmup": warmup,
        "input": str(image) if image is not None else "random pixels",
        "per_model": per_model, "per_frame": frame,
        "fps": 1000.0 / mean if mean > 0 else None,
    }  # fmt: skip
    if frame["crops_per_frame"] == 0:
        out["note"] = ("no crop was classified (the detector found nothing"
                       + (" of the crop labels" if crop_labels else "")
                       + " in the frame): pass --image with objects it finds")  # fmt: skip
    return out


def format_cascade(r: dict[str, Any]) -> list[str]:
    d, c, f = r["per_model"]["detector"], r["per_model"]["classifier"], r["per_frame"]
    lines = [
        f"detector    {d['model']} on {d['device']}: invoke p50 {d['p50_ms']:.2f} ms, "
        f"mean {d['mean_ms']:.2f} ms (first {d['first_ms']:.2f} ms)",
        f"classifier  {c['model']} on {c['device']}: invoke p50 {c['p50_ms']:.2f} ms, "
        f"mean {c['mean_ms']:.2f} ms (first {c['first_ms']:.2f} ms)",
        f"per frame   {r['runs']} frames of {r['input']}: p50 {f['wall']['p50_ms']:.2f} ms, "
        f"mean {f['wall']['mean_ms']:.2f} ms ({r['fps']:.1f} frames/s), "
        f"{f['crops_per_frame']:.1f} crops/frame",
        f"  of which  detector invoke {f['detect_ms']:.2f} ms, crops' invokes "
        f"{f['classify_ms']:.2f} ms, crop + preprocess {f['crop_ms']:.2f} ms, detector "
        f"preprocess + decode {f['detect_preprocess_decode_ms']:.2f} ms",
    ]
    if "note" in r:
        lines.append(f"note        {r['note']}")
    return lines
