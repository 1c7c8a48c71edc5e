#!/usr/bin/env python3
"""Is decoding a YOLO head cheap next to running the model? Decode + NMS of a YOLOv8n 320 head
(2,100 candidates) against that model's CPU invoke, measured in one run (goal: under 1/10).

The model: YOLOv8n's architecture at 320x320 (width 0.25, depth 0.33: C2f blocks, SPPF, PAN
neck, decoupled head with DFL, boxes normalized, sigmoid classes; 80 classes; output int8
[1, 84, 2100] like Ultralytics' Edge TPU export) built in Keras with random weights and
quantized to full int8 by edgekit's quantizer (weights don't change its cost). Built once and
cached (--model). The heads decoded, each through edgekit's yolov8 decoder (integer-domain
threshold, dequantize survivors, class-aware NMS) plus the inverse letterbox:

  realistic  2,100 candidates, background scores 0..0.1, 20 objects with 6 overlapping
             candidates each (what a trained YOLO head looks like at threshold 0.25)
  crowded    300 objects x 6 candidates (1,800 of 2,100 above the threshold)
  model      the random-weight model's own output for a photo (whatever it is)

    python scripts/bench_decode.py [--model /tmp/yolov8n_320_int8.tflite] [--runs 50] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgekit.backends import open_model  # noqa: E402
from edgekit.bench import measure  # noqa: E402
from edgekit.detect.decoders import HeadIO, OutputTensor, YoloV8  # noqa: E402
from edgekit.images import letterbox  # noqa: E402

SIZE, NC = 320, 80


def build_yolov8n(path: Path) -> None:
    """YOLOv8n (Ultralytics' yolov8.yaml, scale n) at SIZE, random weights, int8 .tflite."""
    from edgekit.host.tfenv import load_tensorflow

    tf = load_tensorflow()
    from edgekit.host.quantize import quantize

    L = tf.keras.layers

    def conv(x, c, k=1, s=1):
        return L.Activation("swish")(L.Conv2D(c, k, s, padding="same")(x))  # Conv+BN+SiLU

    def c2f(x, c, n, shortcut=True):
        y = conv(x, c, 1)
        h = c // 2
        parts = [L.Lambda(lambda t: t[..., :h])(y), L.Lambda(lambda t: t[..., h:])(y)]
        for _ in range(n):
            z = conv(conv(parts[-1], h, 3), h, 3)
            parts.append(L.Add()([parts[-1], z]) if shortcut else z)
        return conv(L.Concatenate()(parts), c, 1)

    def sppf(x, c):
        x = conv(x, c // 2, 1)
        p1 = L.MaxPooling2D(5, 1, padding="same")(x)
        p2 = L.MaxPooling2D(5, 1, padding="same")(p1)
        p3 = L.MaxPooling2D(5, 1, padding="same")(p2)
        return conv(L.Concatenate()([x, p1, p2, p3]), c, 1)

    inp = tf.keras.Input((SIZE, SIZE, 3), batch_size=1)
    x = conv(conv(inp, 16, 3, 2), 32, 3, 2)
    x = c2f(x, 32, 1)
    p3 = c2f(conv(x, 64, 3, 2), 64, 2)
    p4 = c2f(conv(p3, 128, 3, 2), 128, 2)
    p5 = sppf(c2f(conv(p4, 256, 3, 2), 256, 1), 256)
    up = L.UpSampling2D(2)
    h4 = c2f(L.Concatenate()([up(p5), p4]), 128, 1, False)
    o3 = c2f(L.Concatenate()([L.UpSampling2D(2)(h4), p3]), 64, 1, False)
    o4 = c2f(L.Concatenate()([conv(o3, 64, 3, 2), h4]), 128, 1, False)
    o5 = c2f(L.Concatenate()([conv(o4, 128, 3, 2), p5]), 256, 1, False)
    boxes, scores = [], []
    for o in (o3, o4, o5):
        b = L.Conv2D(64, 1)(conv(conv(o, 64, 3), 64, 3))
        c = L.Conv2D(NC, 1)(conv(conv(o, 80, 3), 80, 3))
        boxes.append(L.Reshape((-1, 4, 16))(b))
        scores.append(L.Reshape((-1, NC))(c))
    b = L.Softmax(axis=-1)(L.Concatenate(axis=1)(boxes))  # DFL: expected bin of 16
    dfl = L.Dense(1, use_bias=False, trainable=False)
    ltrb = L.Reshape((-1, 4))(dfl(b))
    anchors, strides = [], []
    for s in (8, 16, 32):
        gy, gx = np.mgrid[0 : SIZE // s, 0 : SIZE // s]
        anchors.append(np.stack([gx.ravel() + 0.5, gy.ravel() + 0.5], 1))
        strides.append(np.full((gx.size, 1), s))
    a = np.concatenate(anchors).astype(np.float32)[None]
    st = np.concatenate(strides).astype(np.float32)[None] / SIZE
    xy = L.Lambda(lambda t: ((a - t[..., :2]) + (a + t[..., 2:])) / 2 * st)(ltrb)
    wh = L.Lambda(lambda t: (t[..., :2] + t[..., 2:]) * st)(ltrb)
    cls = L.Activation("sigmoid")(L.Concatenate(axis=1)(scores))
    out = L.Permute((2, 1))(L.Concatenate()([xy, wh, cls]))
    model = tf.keras.Model(inp, out)
    dfl.set_weights([np.arange(16, dtype=np.float32)[:, None]])

    def calib():
        rng = np.random.default_rng(0)
        for _ in range(8):
            yield [rng.uniform(0, 1, (1, SIZE, SIZE, 3)).astype(np.float32)]

    data = quantize(model, calib, io_type="int8")
    path.write_bytes(data)


def synthetic_head(objects: int, per_object: int, seed: int = 0) -> np.ndarray:
    """Float [1, 84, 2100] in normalized units (see module docstring)."""
    rng = np.random.default_rng(seed)
    n = 2100
    head = np.zeros((1, 4 + NC, n), np.float32)
    head[0, :2] = rng.uniform(0, 1, (2, n))
    head[0, 2:4] = rng.uniform(0.02, 0.3, (2, n))
    head[0, 4:] = rng.uniform(0, 0.1, (NC, n))
    cands = rng.permutation(n)[: objects * per_object].reshape(objects, per_object)
    for k, idx in enumerate(cands):
        cx, cy, w, h = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), *rng.uniform(0.05, 0.3, 2)
        jitter = rng.normal(0, 0.01, (4, per_object))
        head[0, :4, idx] = (np.array([[cx], [cy], [w], [h]]) + jitter).T
        head[0, 4 + k % NC, idx] = rng.uniform(0.3, 0.95, per_object)
    return head


def time_decode(decoder, raw: dict, runs: int, box) -> tuple[float, int]:
    """Median ms of decode + NMS + inverse letterbox over ``runs``; detections found."""
    t = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        boxes, scores, classes = decoder.decode(raw, 0.25, 0.45, 100)
        box.to_original(boxes)
        t.append(time.perf_counter_ns() - t0)
    return float(np.median(t)) / 1e6, int(len(scores))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default=os.path.join("/tmp", "edgekit_yolov8n_320_int8.tflite"),
                    help="cached model path (built when missing)")  # fmt: skip
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    path = Path(args.model)
    if not path.is_file():
        print(f"building YOLOv8n 320 int8 -> {path} (once)", file=sys.stderr)
        build_yolov8n(path)
    runner = open_model(path, "cpu", args.threads, on_warning=lambda m: None)
    out = runner.output_details
    assert tuple(out["shape"]) == (1, 4 + NC, 2100), out["shape"]
    scale, zp = (float(v) for v in out["quantization"])
    tensor = OutputTensor(int(out["index"]), "head", (1, 4 + NC, 2100), "int8", scale, int(zp))
    decoder = YoloV8(HeadIO((SIZE, SIZE), (tensor,)))
    photo = ROOT.parent / "shared" / "data" / "coral" / "kite_and_cold.jpg"
    if photo.is_file():
        from edgekit.images import load_rgb

        rgb = load_rgb(photo)
    else:
        rgb = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    fitted, box = letterbox(rgb, (SIZE, SIZE))
    # the model's own output on the photo (random weights) and the invoke time, one run
    q = np.clip(np.round(fitted / 255.0 / runner.input_details["quantization"][0])
                + runner.input_details["quantization"][1], -128, 127).astype(np.int8)  # fmt: skip
    own = runner.run(q)
    bench = measure(runner, runs=args.runs, warmup=5)
    heads = {
        "realistic": synthetic_head(20, 6),
        "crowded": synthetic_head(300, 6),
    }
    rows = {}
    for name, head in heads.items():
        raw = np.clip(np.round(head / scale) + zp, -128, 127).astype(np.int8)
        rows[name] = time_decode(decoder, {tensor.index: raw}, args.runs, box)
    rows["model"] = time_decode(decoder, {tensor.index: own}, args.runs, box)
    invoke = bench.p50_ms
    result = {
        "model": str(path), "invoke_p50_ms": invoke, "threads": args.threads,
        "heads": {k: {"decode_nms_p50_ms": ms, "detections": n, "ratio_to_invoke": ms / invoke}
                  for k, (ms, n) in rows.items()},
    }  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"YOLOv8n 320 int8 CPU invoke p50 {invoke:.2f} ms ({bench.provider}, {args.runs} runs)")
    for k, (ms, n) in rows.items():
        goal = "  (goal < 0.10)" if k == "realistic" else ""
        print(f"  {k:<10} decode+NMS p50 {ms:7.3f} ms  {n:3d} boxes  ratio {ms / invoke:.4f}{goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
