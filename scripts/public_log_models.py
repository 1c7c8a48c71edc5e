"""Keras rebuilds of models whose ``edgetpu_compiler`` output is public (an issue thread with the
model's code and the compiler's verdict), for ``scripts/bench_mapping.py --public-logs`` and
``tests/tflite/test_public_logs.py``. The facts of each case (URL, compiler version, what the
compiler did, op by op type) are in ``tests/data/public_compiler_logs.json``; a builder here is
named by the case's ``builder`` key and returns a batch-1 Keras model (random weights: where an
op maps depends on shapes, types and versions, not on weights).
"""

from __future__ import annotations

import warnings

import numpy as np


def _k():
    """tf.keras of Keras 2 (the ``tf_keras`` package), as the threads used: Keras 3 converts
    UpSampling2D to rank-5 RESHAPE/TILE, not the RESIZE_NEAREST_NEIGHBOR their logs show."""
    import tf_keras as keras
    from tf_keras import layers

    return keras, layers


def coral_597_up_conv_resize_leaky():
    """google-coral/edgetpu#597: UpSampling2D(2) of a 512x512x3 input, Conv2D(6, 3, strides 2),
    a bilinear tf.image.resize to twice the size, LeakyReLU(0.1)."""
    keras, layers = _k()
    inp = keras.Input(shape=(512, 512, 3), batch_size=1)
    y = layers.UpSampling2D(2)(inp)
    y = layers.Conv2D(6, 3, strides=2, padding="same")(y)
    y = layers.Lambda(lambda t: _tf().image.resize(t, (1024, 1024), method="bilinear"))(y)
    y = layers.LeakyReLU(alpha=0.1)(y)
    return keras.Model(inp, y)


def _tf():
    import tensorflow as tf

    return tf


def _coral_31(size: int):
    keras, layers = _k()
    inp = keras.Input(shape=(size, size, 3), batch_size=1)
    x = layers.Conv2D(32, 3, padding="same")(inp)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.UpSampling2D(interpolation="bilinear")(x)
    out = layers.Conv2D(1, 1, padding="same", activation="sigmoid")(x)
    return keras.Model(inp, out)


def coral_31_unet_toy_512():
    """google-coral/edgetpu#31: Conv2D(32)+BN+ReLU, MaxPooling2D, bilinear UpSampling2D,
    Conv2D(1, sigmoid) on a 512x512x3 input."""
    return _coral_31(512)


def coral_31_unet_toy_128():
    """google-coral/edgetpu#31, the same model at 128x128x3 ("maps perfectly")."""
    return _coral_31(128)


def tf_73946_mnist_dense():
    """tensorflow/tensorflow#73946: the post-training integer quantization tutorial's MNIST model
    without Conv2D/MaxPooling2D (Keras 3, as the thread's TF 2.17): Reshape, Flatten, Dense(10)."""
    import keras

    return keras.Sequential(
        [
            keras.layers.InputLayer(shape=(28, 28), batch_size=1),
            keras.layers.Reshape(target_shape=(28, 28, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )


def convert(model, io: str = "uint8") -> bytes:
    """Full-integer post-training quantization as edgekit does it (batch-1 model, int8
    kernels, ``io`` input/output type), calibrated on 4 random inputs in [0, 1)."""
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    shape = (1, *model.inputs[0].shape[1:])
    rng = np.random.default_rng(0)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: (
        [rng.uniform(0, 1, size=shape).astype(np.float32)] for _ in range(4)
    )
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = getattr(tf, io)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Statistics for quantized inputs", UserWarning)
        return conv.convert()


# ---- scoring one case -----------------------------------------------------------------------


def score(case: dict, prediction) -> dict:
    """Predicted vs logged, per logged row: ``{"rows": [...], "ops", "agree", "exact"}``.

    A logged row (operator, count, on, status) agrees for as many ops as the prediction puts
    of that operator (``*``: any operator, for a log that only gives totals) on the same side
    (and, when the row names a status, with that status);
    ``ops`` counts the logged ops, ``agree`` those the prediction got right."""
    rows, ops, agree = [], 0, 0
    for r in case["logged"]:
        same = [
            o for o in prediction.ops
            if r["operator"] in (o.op, "*") and o.on_tpu == (r["on"] == "edgetpu")
            and ("status" not in r or o.status == r["status"])
        ]  # fmt: skip
        got = min(len(same), r["count"])
        if r["operator"] == "*" and len(prediction.ops) != r["count"]:
            got = 0  # a totals-only log: the rebuild must have exactly the logged ops
        ops += r["count"]
        agree += got
        rows.append({**r, "predicted": len(same), "agree": got})
    return {"rows": rows, "ops": ops, "agree": agree, "exact": agree == ops}
