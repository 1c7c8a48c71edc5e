"""Real Keras 2 files, written by tf_keras (the Keras 2 package TensorFlow ships), as users have
them: Teachable Machine's nested structure, a Sequential CNN under ``.h5`` and ``.model``, a
tf.keras SavedModel, and the models edgekit must refuse (Lambda, custom layer, LSTM, two inputs,
weights only). Nothing here is a Keras 3 file with rewritten JSON."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CUSTOM_LAYER_SOURCE = '''
import tf_keras


class Doubler(tf_keras.layers.Layer):
    """x * 2, a custom layer as users write them."""

    def call(self, x):
        return x * 2.0
'''


def teachable_machine(tf_keras, classes: int = 2, size: int = 96, alpha: float = 0.35):
    """TM's export structure: Sequential[Sequential[InputLayer, Functional "model1" (MobileNetV2
    body), GlobalAveragePooling2D], Sequential[Dense 100, Dense N softmax]]. TM uses 224x224 and
    alpha 0.35; a smaller input keeps the tests fast, the nesting is TM's."""
    base = tf_keras.applications.MobileNetV2(
        input_shape=(size, size, 3), alpha=alpha, include_top=False, weights=None
    )
    model1 = tf_keras.Model(base.inputs, base.outputs, name="model1")
    body = tf_keras.Sequential(
        [tf_keras.layers.InputLayer(input_shape=(size, size, 3)), model1,
         tf_keras.layers.GlobalAveragePooling2D()],
        name="sequential_1",
    )  # fmt: skip
    head = tf_keras.Sequential(
        [tf_keras.layers.Dense(100, activation="relu", input_shape=(model1.output_shape[-1],)),
         tf_keras.layers.Dense(classes, activation="softmax")],
        name="sequential_3",
    )  # fmt: skip
    return tf_keras.Sequential([body, head], name="sequential_4")


def cnn(tf_keras, size: int = 32, classes: int = 2):
    """A Keras 2 Sequential CNN with DepthwiseConv2D (whose config carries ``groups``)."""
    L = tf_keras.layers
    return tf_keras.Sequential(
        [L.Conv2D(8, 3, strides=2, padding="same", activation="relu",
                  input_shape=(size, size, 3)),
         L.DepthwiseConv2D(3, padding="same", activation="relu"), L.BatchNormalization(),
         L.Conv2D(16, 1, activation="relu"), L.GlobalAveragePooling2D(),
         L.Dense(classes, activation="softmax")]
    )  # fmt: skip


def save_refused(tf_keras, d: Path) -> dict[str, Path]:
    """The files edgekit refuses, each saved by tf_keras: {case: path}."""
    L = tf_keras.layers
    out = {}
    inp = tf_keras.Input((16, 16, 3))
    x = L.Lambda(lambda t: t / 255.0, name="scale_pixels")(inp)
    x = L.GlobalAveragePooling2D()(x)
    out["lambda"] = d / "lambda.h5"
    tf_keras.Model(inp, L.Dense(2)(x)).save(out["lambda"])

    ns: dict = {}
    exec(CUSTOM_LAYER_SOURCE, ns)  # the same class the --custom-objects file defines
    inp = tf_keras.Input((16, 16, 3))
    x = ns["Doubler"](name="doubler")(inp)
    x = L.GlobalAveragePooling2D()(x)
    out["custom"] = d / "custom.h5"
    tf_keras.Model(inp, L.Dense(2, activation="softmax")(x)).save(out["custom"])
    (d / "doubler.py").write_text(CUSTOM_LAYER_SOURCE)
    out["custom_py"] = d / "doubler.py"

    inp = tf_keras.Input((10, 8))
    x = L.LSTM(4, name="lstm_1")(inp)
    out["lstm"] = d / "lstm.h5"
    tf_keras.Model(inp, L.Dense(2)(x)).save(out["lstm"])

    a, b = tf_keras.Input((16, 16, 3), name="image"), tf_keras.Input((4,), name="meta")
    x = L.Concatenate()([L.GlobalAveragePooling2D()(a), b])
    out["two_inputs"] = d / "two_inputs.h5"
    tf_keras.Model([a, b], L.Dense(2)(x)).save(out["two_inputs"])

    m = cnn(tf_keras, 16)
    out["weights_only"] = d / "weights.h5"
    m.save_weights(out["weights_only"])
    return out


def keras1_file(path: Path) -> Path:
    """An HDF5 file laid out as Keras 1.2.2 wrote it (Keras 1 cannot be installed here: the
    attributes and layer arguments are Keras 1's, from its saving code)."""
    import json

    import h5py

    config = {
        "class_name": "Sequential",
        "config": [
            {"class_name": "Convolution2D",
             "config": {"name": "convolution2d_1", "nb_filter": 8, "nb_row": 3, "nb_col": 3,
                        "init": "glorot_uniform", "border_mode": "same",
                        "batch_input_shape": [None, 32, 32, 3], "input_dtype": "float32"}},
            {"class_name": "Flatten", "config": {"name": "flatten_1"}},
            {"class_name": "Dense", "config": {"name": "dense_1", "output_dim": 2,
                                               "init": "glorot_uniform"}},
        ],
    }  # fmt: skip
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"1.2.2"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(config).encode()
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [b"convolution2d_1", b"flatten_1", b"dense_1"]
        g.create_dataset("convolution2d_1/W", data=np.zeros((3, 3, 3, 8), np.float32))
    return path
