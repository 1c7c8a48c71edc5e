#!/usr/bin/env python3
"""Predicted vs published Edge TPU latency: the Coral benchmark table reproduced from shapes.

Builds Keras equivalents of the models in Coral's table 1 (coral.ai/docs/edgetpu/benchmarks:
desktop CPU + USB Accelerator on USB 3.0) with random weights (latency depends on shapes, not
weights), predicts their USB 3 latency with ``edgekit.edgetpu.latency`` from the per-layer shapes
(``edgekit.host.keras_stats``) and prints predicted / published per model, split into the
CALIBRATION rows (the only ones ``--fit`` may use) and the HELD-OUT rows (DenseNet,
Inception-ResNet V2, the ResNets, VGG19: never fitted). COMPARISON rows (another equivalent of
a row's model: TF-slim's 55.8 M Inception-ResNet V2) are printed "not scored". A row without
its published figure (EfficientNet-EdgeTPU-L) is listed as not reproduced.

    python scripts/bench_latency.py [--fit] [--json] [--markdown]
    python scripts/bench_latency.py --external [--json] [--markdown]   # the second check

``--external`` runs ``scripts/bench_latency_external.py``: public measurements outside Coral's
table (other hosts, links, architectures), predicted with the same constants, nothing fitted.

``--fit`` searches the 6 calibrated constants (Nelder-Mead on the squared log ratio over the
calibration rows) and prints them for ``edgekit/edgetpu/latency.py``'s CALIBRATION.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

from edgekit.edgetpu import latency as L

# Coral's table 1, "Desktop CPU + USB Accelerator (USB 3.0) with Edge TPU" column, ms.
PUBLISHED = {
    "MobileNet v1 (224)": 2.4,
    "MobileNet v2 (224)": 2.6,
    "Inception v1 (224)": 3.4,
    "SqueezeNet (224)": 2.1,
    "VGG16 (224)": 296,
    "Unet Mv2 (128)": 3.3,
    "DeepLab V3 (513)": 52,
    "Inception v4 (299)": 85,
    "EfficientNet-EdgeTPU-S (224)": 5.1,
    "EfficientNet-EdgeTPU-M (240)": 8.7,
    # the table says "(224x224)" for the SSDs; Coral's detection models page gives the same
    # 6.5 / 7.2-7.3 ms for its 300x300 SSD MobileNet v1 / v2, the sizes the TF configs define
    "MobileNet v1 SSD (300)": 6.5,
    "MobileNet v2 SSD (300)": 7.2,
    # held out
    "DenseNet (224)": 20,
    "Inception-ResNet V2 (299)": 57,
    "ResNet-50 V1 (299)": 49,
    "ResNet-50 V2 (299)": 50,
    "ResNet-152 V2 (299)": 128,
    "VGG19 (224)": 308,
}
# Calibration rows whose very model Coral ships compiled (google-coral/test_data, in
# ../shared/data/coral when present): the row uses that int8 model with its ops placed as the
# compiler placed them (latency.work_of_compiled_pair) instead of the Keras equivalent; the
# constants fitted with them are recorded in edgekit/edgetpu/latency.py and docs/DESIGN.md
CORAL_TWINS = {
    "MobileNet v2 (224)": "mobilenet_v2_1.0_224_quant",
    "DeepLab V3 (513)": "deeplabv3_mnv2_pascal_quant",
}
CORAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "coral"
HELD_OUT = {"DenseNet (224)", "Inception-ResNet V2 (299)", "ResNet-50 V1 (299)",
            "ResNet-50 V2 (299)", "ResNet-152 V2 (299)", "VGG19 (224)"}  # fmt: skip
# Rows printed beside the table, never scored nor fitted: another equivalent of a row's model,
# to show how much the choice of equivalent moves it (docs/DESIGN.md, "Inception-ResNet V2").
COMPARISON = {"Inception-ResNet V2 (299), TF-slim's 55.8 M": "Inception-ResNet V2 (299)"}
NOT_REPRODUCED = {
    "EfficientNet-EdgeTpu-L": "its figure is cut off in the stored copy of the table",
}


# ---- reference architectures (random weights) ---------------------------------------------------


def _apps(name: str, size: int, **kw):
    import keras

    fn = getattr(keras.applications, name)
    return fn(weights=None, input_shape=(size, size, 3), **kw)


def squeezenet(size: int = 224):
    """SqueezeNet v1.1 (Iandola et al.): fire modules, 1,000-class conv head."""
    import keras
    from keras import layers

    def fire(x, s, e):
        x = layers.Conv2D(s, 1, activation="relu")(x)
        a = layers.Conv2D(e, 1, activation="relu")(x)
        b = layers.Conv2D(e, 3, padding="same", activation="relu")(x)
        return layers.Concatenate()([a, b])

    inp = keras.Input((size, size, 3))
    x = layers.Conv2D(64, 3, strides=2, activation="relu")(inp)
    x = layers.MaxPooling2D(3, 2)(x)
    x = fire(fire(x, 16, 64), 16, 64)
    x = layers.MaxPooling2D(3, 2)(x)
    x = fire(fire(x, 32, 128), 32, 128)
    x = layers.MaxPooling2D(3, 2)(x)
    for s, e in ((48, 192), (48, 192), (64, 256), (64, 256)):
        x = fire(x, s, e)
    x = layers.Conv2D(1000, 1, activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, layers.Softmax()(x))


def googlenet(size: int = 224, classes: int = 1001):
    """Inception v1 as TF-slim defines it (nets/inception_v1.py, which Coral's
    inception_v1_224_quant comes from): Szegedy et al. 2014's table 1, but 3x3 convolutions where
    the paper has 5x5 ("in paper, the kernel_size = [5, 5]"), a 2x2 pool before Mixed_5b and a
    1x1 conv classifier over 1,001 classes; no auxiliary heads."""
    import keras
    from keras import layers

    def conv(x, f, k, s=1):
        return layers.Conv2D(f, k, strides=s, padding="same", activation="relu")(x)

    def inception(x, c1, r3, c3, r5, c5, p):
        a = conv(x, c1, 1)
        b = conv(conv(x, r3, 1), c3, 3)
        c = conv(conv(x, r5, 1), c5, 3)
        d = conv(layers.MaxPooling2D(3, 1, padding="same")(x), p, 1)
        return layers.Concatenate()([a, b, c, d])

    inp = keras.Input((size, size, 3))
    x = conv(inp, 64, 7, 2)
    x = layers.MaxPooling2D(3, 2, padding="same")(x)
    x = conv(conv(x, 64, 1), 192, 3)
    x = layers.MaxPooling2D(3, 2, padding="same")(x)
    x = inception(x, 64, 96, 128, 16, 32, 32)
    x = inception(x, 128, 128, 192, 32, 96, 64)
    x = layers.MaxPooling2D(3, 2, padding="same")(x)
    for cfg in ((192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64),
                (128, 128, 256, 24, 64, 64), (112, 144, 288, 32, 64, 64),
                (256, 160, 320, 32, 128, 128)):  # fmt: skip
        x = inception(x, *cfg)
    x = layers.MaxPooling2D(2, 2, padding="same")(x)
    x = inception(x, 256, 160, 320, 32, 128, 128)
    x = inception(x, 384, 192, 384, 48, 128, 128)
    x = layers.GlobalAveragePooling2D(keepdims=True)(x)
    x = layers.Reshape((classes,))(layers.Conv2D(classes, 1)(x))
    return keras.Model(inp, layers.Softmax()(x))


def unet_mv2(size: int = 128, classes: int = 3):
    """TensorFlow's segmentation tutorial model: MobileNetV2 encoder (block_1/3/6/13/16
    outputs), pix2pix up-sampling (Conv2DTranspose 512/256/128/64 + BN + ReLU), final
    Conv2DTranspose to ``classes``."""
    import keras
    from keras import layers

    base = _apps("MobileNetV2", size, include_top=False)
    names = ["block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu",
             "block_13_expand_relu", "block_16_project"]  # fmt: skip
    skips = [base.get_layer(n).output for n in names]
    x = skips[-1]
    for f, skip in zip((512, 256, 128, 64), reversed(skips[:-1])):
        x = layers.Conv2DTranspose(f, 3, strides=2, padding="same", use_bias=False)(x)
        x = layers.ReLU()(layers.BatchNormalization()(x))
        x = layers.Concatenate()([x, skip])
    x = layers.Conv2DTranspose(classes, 3, strides=2, padding="same")(x)
    return keras.Model(base.input, x)


def deeplab_v3_mnv2(size: int = 513, classes: int = 21):
    """DeepLab V3 on MobileNetV2 (output stride 16, as Google's deeplabv3_mnv2_pascal): the
    backbone to block_16 with dilated last stages, an ASPP of image pooling + 1x1 conv, a 1x1
    projection, the logits, a bilinear resize to the input and the argmax (both on the CPU:
    the 33->513 resize is not a power-of-two scale)."""
    import keras
    from keras import layers

    base = _apps("MobileNetV2", size, include_top=False)
    feat = base.get_layer("block_13_expand_relu").output  # stride 16
    x = layers.Conv2D(320, 1, activation="relu")(feat)
    pool = layers.GlobalAveragePooling2D(keepdims=True)(x)
    pool = layers.Conv2D(256, 1, activation="relu")(pool)
    h = x.shape[1]
    pool = layers.UpSampling2D(h, interpolation="bilinear")(pool)
    aspp = layers.Conv2D(256, 1, activation="relu")(x)
    x = layers.Concatenate()([pool, aspp])
    x = layers.Conv2D(256, 1, activation="relu")(x)
    return keras.Model(base.input, layers.Conv2D(classes, 1)(x))


def builders() -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import latency_models as M

    return {
        "MobileNet v1 (224)": lambda: _apps("MobileNet", 224),
        "MobileNet v2 (224)": lambda: _apps("MobileNetV2", 224),
        "Inception v1 (224)": lambda: googlenet(224),
        "SqueezeNet (224)": lambda: squeezenet(224),
        "VGG16 (224)": lambda: _apps("VGG16", 224),
        "Unet Mv2 (128)": lambda: unet_mv2(128),
        "DeepLab V3 (513)": lambda: deeplab_v3_mnv2(513),
        "Inception v4 (299)": lambda: M.inception_v4(299),
        "EfficientNet-EdgeTPU-S (224)": lambda: M.efficientnet_edgetpu(224, 1.0),
        "EfficientNet-EdgeTPU-M (240)": lambda: M.efficientnet_edgetpu(240, 1.1),
        "MobileNet v1 SSD (300)": lambda: M.ssd_mobilenet(1, 300),
        "MobileNet v2 SSD (300)": lambda: M.ssd_mobilenet(2, 300),
        "DenseNet (224)": lambda: _apps("DenseNet121", 224),
        # Coral's model holds ~30 M parameters (TF's hosted TFLite file: 121.0 MB of float32),
        # the paper's network 32.4 M, TF-slim's / keras.applications' 55.8 M (DESIGN)
        "Inception-ResNet V2 (299)": lambda: M.inception_resnet_v2_paper(299),
        "ResNet-50 V1 (299)": lambda: _apps("ResNet50", 299),
        "ResNet-50 V2 (299)": lambda: _apps("ResNet50V2", 299),
        "ResNet-152 V2 (299)": lambda: _apps("ResNet152V2", 299),
        "VGG19 (224)": lambda: _apps("VGG19", 224),
        "Inception-ResNet V2 (299), TF-slim's 55.8 M": lambda: _apps("InceptionResNetV2", 299),
    }


# DeepLab's CPU tail (as Google's pascal model compiles: resize 33->513 and argmax on the CPU)
def _deeplab_cpu_tail(work: L.Work, size: int = 513, classes: int = 21) -> L.Work:
    extra = (L.OpWork("RESIZE_BILINEAR", False, 0, 0, size * size * classes),
             L.OpWork("ARG_MAX", False, 0, 0, size * size * classes))  # fmt: skip
    return L.Work(work.ops + extra, work.parameter_bytes, work.input_bytes,
                  33 * 33 * classes, work.source, work.notes)  # fmt: skip


# The SSDs' CPU tail: TFLite_Detection_PostProcess (box decoding + NMS, a custom op) on the
# host over every anchor's 4 box and 91 class outputs, which cross the link (int8).
def _ssd_cpu_tail(work: L.Work) -> L.Work:
    outputs = work.output_bytes
    extra = (L.OpWork("TFLite_Detection_PostProcess", False, 0, 0, outputs),)
    return L.Work(work.ops + extra, work.parameter_bytes, work.input_bytes, outputs,
                  work.source, work.notes)  # fmt: skip


def tails(name: str, work: L.Work) -> L.Work:
    """The ops Coral's compiled model runs on the CPU, added to a Keras equivalent's work."""
    if name.startswith("DeepLab"):
        return _deeplab_cpu_tail(work)
    if "SSD" in name:
        return _ssd_cpu_tail(work)
    return work


def coral_twin(name: str) -> L.Work | None:
    """The row's Work from Coral's own compiled model, when ../shared has it."""
    stem = CORAL_TWINS.get(name)
    if stem is None or not (CORAL_DATA / f"{stem}_edgetpu.tflite").exists():
        return None
    from edgekit.tflite import read_model

    return L.work_of_compiled_pair(read_model(CORAL_DATA / f"{stem}_edgetpu.tflite"),
                                   read_model(CORAL_DATA / f"{stem}.tflite"))  # fmt: skip


def works(names=None) -> dict[str, L.Work]:
    """name -> Work, from each Keras equivalent's shapes (the Keras front-end); ``names``: only
    these rows (tests/tflite/test_latency.py builds the calibration rows)."""
    from edgekit.host.keras_stats import inspect_keras
    from edgekit.host.tfenv import load_tensorflow

    load_tensorflow()
    import keras

    out = {}
    for name, build in builders().items():
        if names is not None and name not in names:
            continue
        twin = coral_twin(name)
        if twin is not None:
            out[name] = twin
            continue
        keras.backend.clear_session()
        stats = inspect_keras(build())
        w = L.work_from_keras_layers(stats["layers"], stats["input_shapes"],
                                     stats["output_shapes"])  # fmt: skip
        out[name] = tails(name, w)
    return out


# ---- fit ----------------------------------------------------------------------------------------

KEYS = ("tpu_efficiency", "depthwise_cost", "op_overhead_us", "invoke_overhead_us",
        "link_efficiency", "activation_budget_mib")  # fmt: skip
BOUNDS = {"tpu_efficiency": (0.05, 1.0), "depthwise_cost": (1.0, 64.0),
          "op_overhead_us": (0.0, 200.0), "invoke_overhead_us": (0.0, 3000.0),
          "link_efficiency": (0.2, 1.0), "activation_budget_mib": (0.5, 7.7)}  # fmt: skip


def _loss(vec, ws) -> float:
    cal = {k: min(max(v, BOUNDS[k][0]), BOUNDS[k][1]) for k, v in zip(KEYS, vec)}
    err = 0.0
    for name, w in ws.items():
        if name in HELD_OUT or name in COMPARISON:
            continue  # never fitted
        pred = L.latency(w, "desktop", cal)["latency_ms"]["usb3"]
        err += math.log(pred / PUBLISHED[name]) ** 2
    return err


def fit(ws: dict[str, L.Work]) -> dict:
    """Nelder-Mead over the 6 constants, from several starts; returns the best calibration."""
    import numpy as np

    best = None
    n = len(KEYS)
    for start in ([0.5, 8, 10, 300, 0.85, 2], [0.2, 4, 30, 800, 0.7, 4], [0.8, 16, 5, 1500, 0.9, 1],
                  [0.3, 2, 20, 1800, 0.8, 3]):  # fmt: skip
        x = np.array(start, float)
        simplex = [x] + [x * (1 + 0.3 * np.eye(n)[i]) + 0.01 * np.eye(n)[i] for i in range(n)]
        vals = [_loss(s, ws) for s in simplex]
        for _ in range(600):
            order = np.argsort(vals)
            simplex = [simplex[i] for i in order]
            vals = [vals[i] for i in order]
            c = np.mean(simplex[:-1], axis=0)
            r = c + (c - simplex[-1])
            fr = _loss(r, ws)
            if fr < vals[0]:
                e = c + 2 * (c - simplex[-1])
                fe = _loss(e, ws)
                simplex[-1], vals[-1] = (e, fe) if fe < fr else (r, fr)
            elif fr < vals[-2]:
                simplex[-1], vals[-1] = r, fr
            else:
                k = c + 0.5 * (simplex[-1] - c)
                fk = _loss(k, ws)
                if fk < vals[-1]:
                    simplex[-1], vals[-1] = k, fk
                else:
                    simplex = [simplex[0] + 0.5 * (s - simplex[0]) for s in simplex]
                    vals = [_loss(s, ws) for s in simplex]
        i = int(np.argmin(vals))
        if best is None or vals[i] < best[0]:
            best = (vals[i], simplex[i])
    return {k: round(min(max(float(v), BOUNDS[k][0]), BOUNDS[k][1]), 3)
            for k, v in zip(KEYS, best[1])}  # fmt: skip


def table(ws: dict[str, L.Work], cal: dict | None = None) -> list[dict]:
    rows = []
    for name, w in ws.items():
        pred = L.latency(w, "desktop", cal)
        ms = pred["latency_ms"]["usb3"]
        published = PUBLISHED[COMPARISON.get(name, name)]
        kind = ("not scored" if name in COMPARISON else
                "held-out" if name in HELD_OUT else "calibration")  # fmt: skip
        rows.append({
            "model": name, "set": kind, "source": w.source,
            "published_ms": published, "predicted_ms": ms,
            "ratio": round(ms / published, 2), "parts_ms": pred["parts_ms"]["usb3"],
            "streamed_mib": round(pred["streamed_bytes"] / 2**20, 1),
        })  # fmt: skip
    return rows


def macs_per_parameter_byte(ws: dict[str, L.Work], cal: dict | None = None) -> float:
    """Median compute-equivalent MACs (padded, depthwise at its cost, element-wise ops at 64
    per element: what ``latency`` charges) per padded parameter byte of the calibration models,
    scaled to a 224x224 input (``latency.MACS_PER_PARAMETER_BYTE``: a compiled model's compute
    estimate)."""
    c = {**L.CALIBRATION, **(cal or {})}
    r = []
    for name, w in ws.items():
        if name in HELD_OUT or name in COMPARISON or not w.parameter_bytes:
            continue
        side = int(name.rsplit("(", 1)[1].rstrip(")"))
        macs = sum(o.padded_macs * (c["depthwise_cost"] if o.depthwise else 1)
                   or o.elements * L.LANES for o in w.ops if o.on_tpu)  # fmt: skip
        r.append(macs / w.parameter_bytes * 224 * 224 / side**2)
    return round(statistics.median(r), 1)


def summary(rows: list[dict]) -> dict:
    out = {}
    for s in ("calibration", "held-out"):
        r = [max(x["ratio"], 1 / x["ratio"]) for x in rows if x["set"] == s]
        out[s] = {"models": len(r), "median_factor": round(statistics.median(r), 2),
                  "worst_factor": round(max(r), 2)}  # fmt: skip
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit", action="store_true", help="fit the constants on calibration rows")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--markdown", action="store_true", help="the README table")
    ap.add_argument("--external", action="store_true",
                    help="the second held-out check (scripts/bench_latency_external.py)")
    a, rest = ap.parse_known_args()
    if a.external:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import bench_latency_external

        flags = [f for f, on in (("--json", a.json), ("--markdown", a.markdown)) if on]
        sys.argv = [sys.argv[0], *flags, *rest]
        return bench_latency_external.main()
    if rest:
        ap.error(f"unrecognized arguments: {' '.join(rest)}")
    t0 = time.perf_counter()
    ws = works()
    cal = fit(ws) if a.fit else None
    rows = table(ws, cal)
    res = {"calibration": cal or L.CALIBRATION, "rows": rows, "summary": summary(rows),
           "macs_per_parameter_byte": macs_per_parameter_byte(ws, cal),
           "not_reproduced": NOT_REPRODUCED, "seconds": round(time.perf_counter() - t0, 1)}
    if a.json:
        print(json.dumps(res, indent=2))
        return 0
    if a.markdown:
        print("| model (Coral table 1) | set | built from | published USB 3 ms | predicted ms "
              "| ratio |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            src = "Coral's compiled model" if r["source"] == "compiled" else "Keras equivalent"
            print(f"| {r['model']} | {r['set']} | {src} | {r['published_ms']:g} | "
                  f"{r['predicted_ms']:g} | {r['ratio']:.2f} |")  # fmt: skip
        return 0
    print(f"calibration constants: {res['calibration']}; MACS_PER_PARAMETER_BYTE "
          f"{res['macs_per_parameter_byte']}")
    print(f"{'model':28} {'set':12} {'published':>9} {'predicted':>9} {'ratio':>6}  parts (ms)")
    for r in rows:
        parts = ", ".join(f"{k} {v:g}" for k, v in r["parts_ms"].items())
        print(f"{r['model']:28} {r['set']:12} {r['published_ms']:>9g} {r['predicted_ms']:>9g} "
              f"{r['ratio']:>6.2f}  {parts}; streamed {r['streamed_mib']} MiB")
    for s, v in res["summary"].items():
        print(f"{s}: {v['models']} models, median factor {v['median_factor']}, worst "
              f"{v['worst_factor']}")
    for k, why in NOT_REPRODUCED.items():
        print(f"not reproduced: {k}: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
