#!/usr/bin/env python3
"""Benchmark: ``edgekit convert`` vs a bare hand-written TFLiteConverter script, in one run.

Both run as fresh processes (TensorFlow import included, as a user would run them) on the same
trained model and the same calibration images; ``edgekit convert`` also verifies on held-out
images (``--no-compile``: the compiler is not installed here). Then both .tflite files are
checked for top-1 agreement with the float model on the held-out images. Target: edgekit's
time <= 1.2x the bare script's.

    .venv/bin/python scripts/bench_convert.py [--size 64] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "apple-banana"
GROUP = r"(?:apple|bana)[-_](\d+)"

# What users write (cf. TensorFlow's post-training integer quantization guide).
BARE = """
import sys, numpy as np, tensorflow as tf, keras
from PIL import Image
model_path, list_path, out_path, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
model = keras.models.load_model(model_path, compile=False)
files = open(list_path).read().split()
def representative_dataset():
    for f in files:
        img = Image.open(f).convert("RGBA")
        bg = Image.new("RGBA", img.size, (0, 0, 0, 255))
        img = Image.alpha_composite(bg, img).convert("RGB").resize((size, size), Image.BILINEAR)
        yield [np.asarray(img, np.float32)[None] / 255.0]
converter = tf.lite.TFLiteConverter.from_keras_model(model)
converter.optimizations = [tf.lite.Optimize.DEFAULT]
converter.representative_dataset = representative_dataset
converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
converter.inference_input_type = tf.uint8
converter.inference_output_type = tf.uint8
open(out_path, "wb").write(converter.convert())
"""


def build_model(path: Path, size: int, files, labels) -> None:
    """A small MobileNet-style classifier (conv + depthwise-separable blocks) trained briefly."""
    import keras
    import numpy as np

    from edgekit import images

    x = np.stack([images.prepare(images.load_rgb(f), (size, size)) for f in files]) / 255.0
    keras.utils.set_random_seed(0)
    inp = keras.Input((size, size, 3))
    h = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu6")(inp)
    for filters, stride in ((32, 1), (64, 2), (64, 1), (128, 2), (128, 1)):
        h = keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(h)
        h = keras.layers.BatchNormalization()(h)
        h = keras.layers.ReLU(6.0)(h)
        h = keras.layers.Conv2D(filters, 1, use_bias=False)(h)
        h = keras.layers.BatchNormalization()(h)
        h = keras.layers.ReLU(6.0)(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    out = keras.layers.Dense(2, activation="softmax")(h)
    model = keras.Model(inp, out)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x.astype("float32"), np.array(labels), epochs=4, batch_size=16, verbose=0)
    model.save(path)


def agreement(tflite: Path, float_fn, x) -> float:
    """Top-1 agreement of the .tflite with ``float_fn`` on float images ``x`` (N, H, W, 3)."""
    import numpy as np

    from edgekit.host.verify import run_int8

    got = run_int8(tflite.read_bytes(), x)
    ref = np.asarray(float_fn(x))
    return float(np.mean(got.argmax(1) == ref.argmax(1)))


def timed(cmd: list[str]) -> tuple[float, str]:
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return time.perf_counter() - t, r.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64, help="model input size in pixels")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each (median is reported)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    import keras
    import numpy as np

    from edgekit import images
    from edgekit.host.calibration import split

    files = images.find_images(DATA)
    sp = split([f.relative_to(DATA).as_posix() for f in files], GROUP)
    calib = [files[i] for i in sp.calib][:300]
    held = [files[i] for i in sp.verify]
    work = Path(tempfile.mkdtemp(prefix="bench_convert-"))
    model = work / "model.h5"
    build_model(model, args.size, calib, [int(f.parent.name == "banana") for f in calib])
    (work / "calib.txt").write_text("\n".join(map(str, calib)))
    (work / "bare.py").write_text(BARE)

    edgekit = [
        str(Path(sys.executable).parent / "edgekit"),
        "convert",
        str(model),
        "--calib",
        str(DATA),
        "--group-pattern",
        GROUP,
        "--no-compile",
        "--force",
        "--json",
    ]
    bare = [
        sys.executable,
        str(work / "bare.py"),
        str(model),
        str(work / "calib.txt"),
        str(work / "bare.tflite"),
        str(args.size),
    ]
    t_edge, t_bare = [], []
    for _ in range(args.repeat):  # alternate, so machine load affects both alike
        t_bare.append(timed(bare)[0])
        t, out = timed([*edgekit, "-o", str(work / "bundle")])
        t_edge.append(t)
        stages = json.loads(out)["timings_s"]
    manifest = json.loads((work / "bundle" / "edgekit.json").read_text())

    float_model = keras.models.load_model(model, compile=False)
    x = np.stack(
        [images.to_float(images.prepare(images.load_rgb(f), (args.size,) * 2)) for f in held]
    )
    result = {
        "model": f"MobileNet-style, {args.size}x{args.size}, trained on apple-banana",
        "calibration_images": len(calib),
        "held_out_images": len(held),
        "repeat": args.repeat,
        "edgekit_s": round(statistics.median(t_edge), 3),
        "bare_s": round(statistics.median(t_bare), 3),
        "edgekit_runs_s": [round(t, 3) for t in t_edge],
        "bare_runs_s": [round(t, 3) for t in t_bare],
        "edgekit_stages_s": stages,
        "agreement_edgekit": agreement(work / "bundle" / "model_int8.tflite", float_model, x),
        "agreement_bare": agreement(work / "bare.tflite", float_model, x),
        "edgekit_reported_agreement": manifest["verification"]["agreement"],
    }
    result["ratio"] = round(result["edgekit_s"] / result["bare_s"], 3)
    result["target_ratio"] = 1.2
    result["meets_target"] = result["ratio"] <= 1.2
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"model: {result['model']}; {len(calib)} calibration, {len(held)} held-out images")
    print(
        f"edgekit convert (verification incl.): {result['edgekit_s']:.2f} s  (in-process: {stages})"
    )
    print(f"bare TFLiteConverter script:          {result['bare_s']:.2f} s")
    print(
        f"ratio: {result['ratio']:.2f}x (target <= 1.2x): "
        + ("OK" if result["meets_target"] else "MISSED")
    )
    print(
        f"top-1 agreement with float on held-out: edgekit {result['agreement_edgekit']:.3f}, "
        f"bare {result['agreement_bare']:.3f}"
    )


if __name__ == "__main__":
    main()
