"""Run as a subprocess (TensorFlow stays out of the test process): write tiny int8 TFLite
classifiers into OUT_DIR.

Model: 16x16x3 -> GlobalAveragePooling2D -> Dense(3, kernel 3*I, bias 0) -> softmax, so class c
scores softmax(3 * mean of channel c): a red image is class 0, a blue one class 2. Calibration
images (solid colours with noise) include pixels 0 and 255 so the input range is calibrated
exactly to the manifest range.

    python make_tiny_runtime_models.py OUT_DIR
writes <name>.tflite for name in: u8_01 (uint8 I/O, range 0..1), i8_01 (int8 I/O, 0..1),
u8_m11 (uint8 I/O, range -1..1).
"""

import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

out = Path(sys.argv[1])
inp = tf.keras.Input(shape=(16, 16, 3), batch_size=1)
x = tf.keras.layers.GlobalAveragePooling2D()(inp)
dense = tf.keras.layers.Dense(3)
x = tf.keras.layers.Softmax()(dense(x))
model = tf.keras.Model(inp, x)
dense.set_weights([3.0 * np.eye(3, dtype=np.float32), np.zeros(3, np.float32)])

for name, io, (lo, hi) in [("u8_01", tf.uint8, (0, 1)), ("i8_01", tf.int8, (0, 1)),
                           ("u8_m11", tf.uint8, (-1, 1))]:  # fmt: skip

    def data(lo=lo, hi=hi):
        rng = np.random.default_rng(0)
        for _ in range(60):
            # solid colours (channel means over the whole 0..1 span, so the pooled tensor's
            # range covers a pure red image) plus pixel noise
            p = rng.integers(0, 256, (1, 1, 1, 3)) + rng.integers(-8, 9, (1, 16, 16, 3))
            p = np.clip(p, 0, 255).astype(np.float32)
            p[0, 0, 0] = 0
            p[0, 0, 1] = 255
            yield [lo + p * (hi - lo) / 255.0]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = data
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = io
    conv.inference_output_type = io
    (out / f"{name}.tflite").write_bytes(conv.convert())
print("ok")
