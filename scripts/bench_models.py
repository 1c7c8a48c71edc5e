#!/usr/bin/env python3
"""Benchmark the model zoo on a small real data set: one table, one run.

For each zoo design at settings that suit a small 2-class set (apple-banana by default):
parameters and multiply-adds (edgekit.host.keras_stats), int8 .tflite size, median CPU latency
of the int8 model (ai_edge_litert, batch 1), float vs int8 accuracy on held-out photo groups
(edgekit.host.train's grouped split; the int8 model is fed the same pixels through its input
quantization), and the predicted Edge TPU mapping (edgekit.edgetpu.mapping).

Each model is trained briefly with edgekit.host.train and converted with edgekit.host.convert
(calibrated on its training images only; no compiler needed), or with a plain full-integer
TFLiteConverter when edgekit.host.convert is unavailable. dsconv has no classifier: it gets
counts, size, latency and mapping only.

    .venv/bin/python scripts/bench_models.py [--data DIR] [--epochs N] [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
GROUP = r"(?:apple|bana)[-_](\d+)"
# Zoo settings for a ~300-image, 2-class data set (dsconv: the paper's 100 -> 1000 example).
SETTINGS = {
    "inception_lite": {"input_size": 28},
    "mobilenet_v1": {"input_size": 96, "alpha": 0.25},
    "squeezenet": {"input_size": 64},
    "densenet_lite": {"input_size": 64},
    "dsconv": {"input_size": 14},
}


def latency_ms(path: Path, runs: int, threads: int) -> float:
    """Median wall time of one invoke of the .tflite at ``path`` (after 5 warm-up runs)."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=threads)
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    info = np.iinfo(inp["dtype"])
    x = np.random.default_rng(0).integers(info.min, info.max + 1, inp["shape"], dtype=inp["dtype"])
    it.set_tensor(inp["index"], x)
    for _ in range(5):
        it.invoke()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        it.invoke()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def int8_accuracy(path: Path, x_float: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of the int8 model on float inputs quantized with its input parameters."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    scale, zero = inp["quantization"]
    info = np.iinfo(inp["dtype"])
    hits = 0
    for xi, yi in zip(x_float, y):
        q = np.clip(np.round(xi / scale + zero), info.min, info.max).astype(inp["dtype"])
        it.set_tensor(inp["index"], q[None])
        it.invoke()
        hits += int(np.argmax(it.get_tensor(out["index"])[0]) == yi)
    return hits / len(y)


def plain_int8(model, rep) -> bytes:
    """Full-integer int8 conversion of a batch-1 clone with edgekit's quantizer, for models
    `edgekit convert` does not take (dsconv: a 100-channel feature map, not an image)."""
    from edgekit.host.keras_io import batch1_clone
    from edgekit.host.quantize import quantize

    return quantize(batch1_clone(model), lambda: ([r[None]] for r in rep), io_type="int8")


def mapping_of(path: Path) -> str:
    try:
        from edgekit import tflite
        from edgekit.edgetpu import mapping
    except ImportError:
        return "n/a"
    p = mapping.predict(tflite.read_model(path))
    return f"{p.tpu_ops}/{p.tpu_ops + p.cpu_ops}"


def bench_classifier(name, settings, args, work: Path, say) -> dict:
    from edgekit import images
    from edgekit.host import train as tr
    from edgekit.host.convert import convert
    from edgekit.host.keras_stats import inspect_keras

    out = work / name / f"{name}.h5"
    summary = tr.train(
        args.data,
        name,
        out,
        input_size=settings["input_size"],
        alpha=settings.get("alpha"),
        epochs=args.epochs,
        group_pattern=args.group_pattern,
        seed=args.seed,
        progress=lambda m: say(f"  {name}: {m}"),
    )
    # Recreate the exact split train() used (same scan, same unreadable files, same seed).
    size = summary["input_size"]
    _, samples, _ = tr.scan(args.data, args.group_pattern)
    pixels, samples, _ = tr.load_pixels(samples, (size, size))
    index = {s.path: i for i, s in enumerate(samples)}
    train_s, val_s, _ = tr.split(samples, 0.25, args.seed)
    x_val = images.to_float(pixels[[index[s.path] for s in val_s]])
    y_val = np.array([s.label for s in val_s])

    import keras

    model = keras.saving.load_model(out, compile=False)
    stats = inspect_keras(model)
    float_acc = float(np.mean(np.argmax(model.predict(x_val, verbose=0), -1) == y_val))
    # Calibrate on the training images only: a folder of links, one sub-folder per class.
    calib = work / name / "calib"
    for s in train_s:
        dst = calib / s.path.parent.name / s.path.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.symlink_to(s.path.resolve())
    res = convert(out, work / name / "bundle", calib=calib, compile=False)
    tfl = res.out_dir / res.manifest.models["cpu"]
    converter = "edgekit.host.convert"
    return {
        "model": name,
        "settings": settings,
        "params": stats["params"],
        "macs": stats["macs"],
        "int8_bytes": tfl.stat().st_size,
        "cpu_ms": latency_ms(tfl, args.runs, args.threads),
        "float_acc": float_acc,
        "int8_acc": int8_accuracy(tfl, x_val, y_val),
        "val_images": len(val_s),
        "epochs_run": summary["epochs_run"],
        "train_s": summary["seconds"],
        "edgetpu_mapped": mapping_of(tfl),
        "converter": converter,
    }


def bench_dsconv(settings, args, work: Path) -> dict:
    from edgekit import zoo
    from edgekit.host.keras_stats import inspect_keras

    model = zoo.build("dsconv", **settings)
    stats = inspect_keras(model)
    rep = np.random.default_rng(0).random((16, *model.input_shape[1:]), dtype=np.float32)
    tfl = work / "dsconv_int8.tflite"
    tfl.write_bytes(plain_int8(model, rep))
    return {
        "model": "dsconv",
        "settings": settings,
        "params": stats["params"],
        "macs": stats["macs"],
        "int8_bytes": tfl.stat().st_size,
        "cpu_ms": latency_ms(tfl, args.runs, args.threads),
        "float_acc": None,
        "int8_acc": None,
        "edgetpu_mapped": mapping_of(tfl),
        "converter": "plain TFLiteConverter",
    }


def table(rows: list[dict]) -> str:
    head = (
        f"{'model':<15} {'settings':<22} {'params':>10} {'MACs':>12} {'int8 KB':>8} "
        f"{'CPU ms':>7} {'float acc':>9} {'int8 acc':>8} {'TPU ops':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        s = ",".join(f"{k.replace('input_size', 'S')}={v}" for k, v in r["settings"].items())
        fa = "-" if r["float_acc"] is None else f"{r['float_acc']:.3f}"
        ia = "-" if r["int8_acc"] is None else f"{r['int8_acc']:.3f}"
        lines.append(
            f"{r['model']:<15} {s:<22} {r['params']:>10,} {r['macs']:>12,} "
            f"{r['int8_bytes'] / 1024:>8.1f} {r['cpu_ms']:>7.3f} {fa:>9} {ia:>8} "
            f"{r['edgetpu_mapped']:>8}"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT / "examples" / "apple-banana")
    ap.add_argument("--group-pattern", default=GROUP)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--runs", type=int, default=100, help="timed invokes per model")
    ap.add_argument("--threads", type=int, default=1, help="interpreter threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default=",".join(SETTINGS), help="comma-separated subset")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-models-") as tmp:
        for name in args.models.split(","):
            say(f"{name} ...")
            settings = SETTINGS[name]
            if name == "dsconv":
                rows.append(bench_dsconv(settings, args, Path(tmp)))
            else:
                rows.append(bench_classifier(name, settings, args, Path(tmp), say))
    meta = {
        "data": str(args.data),
        "epochs_max": args.epochs,
        "runs": args.runs,
        "threads": args.threads,
        "split": "held-out photo groups (25% per class), early stopping on them",
    }
    if args.json:
        print(json.dumps({"meta": meta, "models": rows}, indent=2))
    else:
        print(table(rows))
        print(
            f"\nCPU ms: median of {args.runs} int8 invokes, batch 1, {args.threads} thread(s), "
            "ai_edge_litert (XNNPACK). acc: top-1 on held-out photo groups of "
            f"{args.data.name}. TPU ops: predicted Edge TPU-mapped ops / total."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
