#!/usr/bin/env python3
"""How long does the Edge TPU mapping prediction take? read_model + predict, pure Python.

Times ``edgekit.tflite.read_model`` and ``edgekit.edgetpu.mapping.predict`` (per-op verdicts, the
one-subgraph partition, parameter memory and fix suggestions) on each model given, or by default
on a 300-op int8 model built here once with TensorFlow (150 x Conv2D 1x1 + Add, cached under
~/.cache/edgekit/) plus the compiled pairs' CPU models in ../shared/data when present. Prints
the median wall and CPU time of ``--runs`` rounds and the ratio to the 100 ms budget of issue 11
(for a 300-op model). CPU time is the fairer number on a loaded machine.

    python scripts/bench_mapping.py [MODEL.tflite ...] [--runs 20] [--json]

``--public-logs`` instead checks the prediction against public compiler verdicts on models
rebuilt from their threads (tests/data/public_compiler_logs.json, builders in
scripts/public_log_models.py; TensorFlow needed): per case the logged ops the prediction puts
on the same side with the same status, then the op-level agreement and the share of cases
predicted exactly, over the comparable cases.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from edgekit.edgetpu.mapping import predict
from edgekit.tflite import read_model

BUDGET_MS = 100.0
ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
CACHE = Path.home() / ".cache" / "edgekit" / "bench_mapping_300ops.tflite"


def synthetic_300_ops() -> Path:
    """A 300-op full-int8 model (uint8 I/O adds 2 QUANTIZE ops): built once, then cached."""
    if CACHE.is_file():
        return CACHE
    import numpy as np

    from edgekit.host.tfenv import load_tensorflow

    tf = load_tensorflow()
    import keras
    from keras import layers

    inp = keras.Input(shape=(16, 16, 8), batch_size=1)
    x = inp
    for _ in range(149):  # 149 x (CONV_2D, ADD) + QUANTIZE in, QUANTIZE out = 300 ops
        x = layers.Add()([x, layers.Conv2D(8, 1, activation="relu")(x)])
    conv = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inp, x))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    conv.representative_dataset = lambda: (
        [rng.uniform(0, 1, (1, 16, 16, 8)).astype(np.float32)] for _ in range(4)
    )
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.uint8
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    CACHE.write_bytes(conv.convert())
    return CACHE


def time_one(path: Path, runs: int) -> dict:
    wall_read, cpu_read, wall_pred, cpu_pred = [], [], [], []
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.process_time()
        info = read_model(path)
        w1, c1 = time.perf_counter(), time.process_time()
        p = predict(info)
        w2, c2 = time.perf_counter(), time.process_time()
        wall_read.append((w1 - w0) * 1e3)
        cpu_read.append((c1 - c0) * 1e3)
        wall_pred.append((w2 - w1) * 1e3)
        cpu_pred.append((c2 - c1) * 1e3)
    med = statistics.median
    total_cpu = med([a + b for a, b in zip(cpu_read, cpu_pred)])
    return {
        "model": str(path),
        "ops": len(info.main.operators),
        "cpu_ops_predicted": p.cpu_ops,
        "read_ms": {"wall": round(med(wall_read), 2), "cpu": round(med(cpu_read), 2)},
        "predict_ms": {"wall": round(med(wall_pred), 2), "cpu": round(med(cpu_pred), 2)},
        "total_cpu_ms": round(total_cpu, 2),
        "budget_ratio": round(total_cpu / BUDGET_MS, 3),
    }


def public_logs() -> dict:
    """Every comparable case of tests/data/public_compiler_logs.json: built, converted,
    predicted and scored (scripts/public_log_models.score)."""
    import tempfile

    sys.path.insert(0, str(ROOT / "scripts"))
    import public_log_models as P

    from edgekit.host.tfenv import load_tensorflow

    load_tensorflow()
    cases = json.loads((ROOT / "tests/data/public_compiler_logs.json").read_text())["cases"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for c in cases:
            if not c["comparable"]:
                rows.append({"id": c["id"], "url": c["url"], "comparable": False})
                continue
            path = Path(tmp) / f"{c['id']}.tflite"
            path.write_bytes(P.convert(getattr(P, c["builder"])(), c["io"]))
            s = P.score(c, predict(read_model(path)))
            rows.append({"id": c["id"], "url": c["url"], "compiler": c["compiler"],
                         "comparable": True, **s})  # fmt: skip
    scored = [r for r in rows if r["comparable"]]
    ops = sum(r["ops"] for r in scored)
    return {
        "cases": rows,
        "op_agreement": round(sum(r["agree"] for r in scored) / ops, 4) if ops else None,
        "exact_models": sum(r["exact"] for r in scored),
        "comparable_models": len(scored),
    }


def print_public_logs(d: dict) -> None:
    print(f"{'case':<34} {'compiler':<16} {'logged ops':>10} {'agree':>6}  exact")
    for r in d["cases"]:
        if not r["comparable"]:
            print(f"{r['id']:<34} not comparable (see tests/data/public_compiler_logs.json)")
            continue
        print(f"{r['id']:<34} {r['compiler'].split(' ')[0]:<16} {r['ops']:>10} "
              f"{r['agree']:>6}  {'yes' if r['exact'] else 'NO'}")  # fmt: skip
        for row in r["rows"]:
            if row["agree"] < row["count"]:
                print(f"    {row['operator']} x{row['count']} logged on {row['on']}: "
                      f"predicted there {row['predicted']}")  # fmt: skip
    if d["comparable_models"]:
        print(
            f"op-level agreement {d['op_agreement']:.3f}; exact on {d['exact_models']} of "
            f"{d['comparable_models']} comparable models"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--public-logs",
        action="store_true",
        help="check the prediction against public compiler verdicts instead",
    )
    args = ap.parse_args(argv)
    if args.public_logs:
        d = public_logs()
        print(json.dumps(d, indent=2)) if args.json else print_public_logs(d)
        return 0
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    models = list(args.models)
    if not models:
        models.append(synthetic_300_ops())
        models += sorted(SHARED.glob("yolo/*/model.tflite"))
        models += [SHARED / "coral/movenet_single_pose_lightning_ptq.tflite"]
        models = [m for m in models if m.is_file()]
    rows = [time_one(m, args.runs) for m in models]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':<52} {'ops':>4} {'read':>8} {'predict':>8} {'total':>8}  ratio to 100 ms")
    print(f"{'':<52} {'':>4} {'cpu ms':>8} {'cpu ms':>8} {'cpu ms':>8}")
    for r in rows:
        p = Path(r["model"])
        name = f"{p.parent.name}/{p.name}"
        print(
            f"{name[-52:]:<52} {r['ops']:>4} {r['read_ms']['cpu']:>8.1f} "
            f"{r['predict_ms']['cpu']:>8.1f} {r['total_cpu_ms']:>8.1f}  {r['budget_ratio']:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
