#!/usr/bin/env python3
"""Two int8 heads vs one concatenated output: what the output quantization does to YOLOv3-Tiny's
boxes, measured in one run on the zoo's ``yolov3_tiny`` (default 416 x 416, 80 classes).

The same weights in both forms: ``grids`` (two outputs, strides 16 and 32, what ``zoo build``
writes and the Coral ports have) and ``rows`` (the two heads reshaped and concatenated into one
output ``yolo``, one scale shared). Both go through ``edgekit convert`` (real PTQ on the same
calibration images, --no-compile) and the bundle's verification reports, per head, the output
scale and what it means for a decoded box: the largest centre step ``scale / 4 * stride`` input
pixels (sigmoid' <= 1/4) and the size step ``exp(scale) - 1`` (relative), plus the float vs
int8 detection agreement (mAP@0.5 of int8 against float).

Weights: Keras' initialisation by default (the heads' logit ranges are far smaller than a
trained model's), or ``--model FILE``, a trained two-output yolov3_tiny (``edgekit train --task
detect --model yolov3_tiny``; its labels.txt beside it), with ``--calib`` its dataset.

    python scripts/bench_yolo_heads.py [--size 416] [--classes 80] [--calib DIR] [--json]
    python scripts/bench_yolo_heads.py --model det/y3.h5 --calib scenes/ --num-calib 200
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def scenes(folder: Path, n: int) -> Path:
    """Scene-like images when no --calib is given: gradients with coloured shapes."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        w, h = int(rng.integers(300, 640)), int(rng.integers(240, 480))
        base = np.linspace(0, 255, w, dtype=np.float32)[None, :, None] * rng.random(3)
        img = Image.fromarray(np.broadcast_to(base, (h, w, 3)).astype(np.uint8))
        d = ImageDraw.Draw(img)
        for _ in range(4):
            x0, y0 = int(rng.integers(0, w - 60)), int(rng.integers(0, h - 60))
            box = (x0, y0, x0 + int(rng.integers(20, 200)), y0 + int(rng.integers(20, 200)))
            d.ellipse(box, fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
        img.save(folder / f"scene_{i:03d}.png")
    return folder


def build(size: int, classes: int, out: Path, model: Path | None) -> tuple[Path, Path]:
    """The zoo model with two outputs (``model``, or built with random weights), and the same
    weights as one concatenated output."""
    import shutil

    from edgekit import zoo
    from edgekit.host.tfenv import load_tensorflow

    load_tensorflow()
    import keras

    if model is not None:
        grids = keras.models.load_model(model, compile=False)
        if (model.parent / "labels.txt").is_file():
            shutil.copy(model.parent / "labels.txt", out / "labels.txt")
    else:
        grids = zoo.build("yolov3_tiny", input_size=size, classes=classes)
    s32, s16 = grids.outputs
    rows = [keras.layers.Reshape((-1, s.shape[-1]), name=f"rows_s{st}")(s)
            for st, s in ((16, s16), (32, s32))]  # fmt: skip
    flat = keras.Model(grids.inputs, keras.layers.Concatenate(axis=1, name="yolo")(rows))
    paths = out / "grids.h5", out / "rows.h5"
    zoo.save_model(grids, paths[0], force=True)
    zoo.save_model(flat, paths[1], force=True)
    return paths


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=416)
    ap.add_argument("--classes", type=int, default=80)
    ap.add_argument("--calib", type=Path, help="calibration images [default: generated scenes]")
    ap.add_argument("--model", type=Path, help="a trained two-output yolov3_tiny .h5")
    ap.add_argument("--num-calib", type=int, default=64)
    ap.add_argument("--num-verify", type=int, default=16)
    ap.add_argument("--score-threshold", type=float, default=0.2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from edgekit.host.convert import convert

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        calib = args.calib or scenes(tmp / "calib", args.num_calib + args.num_verify)
        paths = build(args.size, args.classes, tmp, args.model)
        forms = {}
        for name, path in zip(("grids", "rows"), paths):
            t = time.perf_counter()
            res = convert(path, tmp / f"b_{name}", calib=calib, num_calib=args.num_calib,
                          num_verify=args.num_verify, compile=False,
                          score_threshold=args.score_threshold)  # fmt: skip
            v = res.manifest.verification
            forms[name] = {
                "seconds": round(time.perf_counter() - t, 1),
                "map50_int8_vs_float": v.get("map50_int8_vs_float"),
                "map50_float": v.get("map50_float"),
                "map50_int8": v.get("map50_int8"),
                "float_detections": v.get("float_detections"),
                "mean_abs_error": v.get("mean_abs_error"),
                "heads": {h["stride"]: {k: h[k] for k in ("scale", "zero_point", "logit_range",
                                                          "xy_step_px", "wh_step")}
                          for h in v["heads"]},  # fmt: skip
            }
    ratio = {s: forms["rows"]["heads"][s]["scale"] / forms["grids"]["heads"][s]["scale"]
             for s in forms["grids"]["heads"]}  # fmt: skip
    report = {"model": str(args.model or f"zoo yolov3_tiny {args.size}, {args.classes} classes, "
                                           "random init"), "forms": forms,
              "shared_scale_over_own_scale": ratio}  # fmt: skip
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(report["model"])
    for name, f in forms.items():
        labelled = f"; int8 mAP@0.5 {f['map50_int8']:.3f}" if f["map50_int8"] is not None else ""
        print(f"  {name:5s}  int8-vs-float mAP@0.5 {f['map50_int8_vs_float']}{labelled}  "
              f"({f['float_detections']} float boxes), mean |err| {f['mean_abs_error']:.5f}")
        for s, h in f["heads"].items():
            print(f"         stride {s:2d}: scale {h['scale']:.6f}, centre step "
                  f"{h['xy_step_px']:.4f} px, size step {100 * h['wh_step']:.4f} %")
    for s, r in ratio.items():
        print(f"  stride {s}: the shared scale is {r:.2f}x the head's own")
    return 0


if __name__ == "__main__":
    sys.exit(main())
