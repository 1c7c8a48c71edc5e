"""Run as a subprocess (TensorFlow stays out of the test process): write a tiny int8 TFLite
detector with edgekit's anchor-free head (docs/DESIGN.md) into OUT_DIR/anchor_free.tflite.

Model: 32x32x3 (range 0..1) -> AveragePooling2D(8) (the mean colour of each 8x8 cell, stride 8)
-> 1x1 Conv2D to 4 + 3 channels -> sigmoid -> Reshape [1, 16, 7]. The l, t, r, b columns are
the constant 4/32 = 0.125 of the input size (a box of exactly the cell around its centre), the
class scores sigmoid(20 * (channel mean - 0.6)) for red, green, blue. So an 8x8 red square on
cell (row, col) is one "red" detection with box (8 col, 8 row, 8 col + 8, 8 row + 8) in input
pixels, score ~1, and a black or grey (114) cell scores sigmoid(-3.1) < 0.05.

    python make_tiny_detectors.py OUT_DIR
"""

import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

out = Path(sys.argv[1])
inp = tf.keras.Input(shape=(32, 32, 3), batch_size=1)
x = tf.keras.layers.AveragePooling2D(8)(inp)
conv = tf.keras.layers.Conv2D(7, 1)
x = tf.keras.layers.Activation("sigmoid")(conv(x))
x = tf.keras.layers.Reshape((16, 7))(x)
model = tf.keras.Model(inp, x)
kernel = np.zeros((1, 1, 3, 7), np.float32)
kernel[0, 0, :, 4:] = 20.0 * np.eye(3)
logit = float(np.log(0.125 / 0.875))
conv.set_weights([kernel, np.array([logit] * 4 + [-12.0] * 3, np.float32)])


def data():
    rng = np.random.default_rng(0)
    for _ in range(40):
        img = np.zeros((1, 32, 32, 3), np.float32)
        for r in range(4):
            for c in range(4):
                img[0, 8 * r : 8 * r + 8, 8 * c : 8 * c + 8] = rng.integers(0, 2, 3)
        yield [img]


conv_ = tf.lite.TFLiteConverter.from_keras_model(model)
conv_.optimizations = [tf.lite.Optimize.DEFAULT]
conv_.representative_dataset = data
conv_.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
conv_.inference_input_type = tf.int8
conv_.inference_output_type = tf.int8
(out / "anchor_free.tflite").write_bytes(conv_.convert())

# A stateful variant (like Google's AutoML video SSDs, in miniature): a second input
# ``init_state`` (1, 4, 4, 3) is added to the pooled colours and returned as the output ``state``,
# so whatever was seen stays detected while the state is carried: a red square in frame 1 is
# still "red" on a black frame 2, and a fresh model sees nothing on that black frame.
img = tf.keras.Input(shape=(32, 32, 3), batch_size=1, name="image")
st = tf.keras.Input(shape=(4, 4, 3), batch_size=1, name="init_state")
s = tf.keras.layers.Add(name="state")([tf.keras.layers.AveragePooling2D(8)(img), st])
conv2 = tf.keras.layers.Conv2D(7, 1)
h = tf.keras.layers.Reshape((16, 7))(tf.keras.layers.Activation("sigmoid")(conv2(s)))
stateful = tf.keras.Model([img, st], [h, s])
conv2.set_weights(conv.get_weights())


def data2():
    rng = np.random.default_rng(1)
    for (x,) in data():
        yield {"image": x, "init_state": rng.integers(0, 3, (1, 4, 4, 3)).astype(np.float32)}


c2 = tf.lite.TFLiteConverter.from_keras_model(stateful)
c2.optimizations = [tf.lite.Optimize.DEFAULT]
c2.representative_dataset = data2
c2.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
c2.inference_input_type = tf.int8
c2.inference_output_type = tf.int8
(out / "stateful.tflite").write_bytes(c2.convert())
print("ok")
