"""Tiny real models converted once per session for the tflite/mapping/inspect tests.

Each model is a batch-1 Keras model converted with TensorFlow's own TFLiteConverter, so the
reader and the mapping prediction are tested against what users will really feed them.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest


def _convert(model, int8: bool, io=None) -> bytes:
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        shape = (1, *model.inputs[0].shape[1:])
        rng = np.random.default_rng(0)

        def representative():
            for _ in range(8):
                yield [rng.uniform(0, 1, size=shape).astype(np.float32)]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = io or tf.uint8
        conv.inference_output_type = io or tf.uint8
    with warnings.catch_warnings():
        # TensorFlow's converter asks for mean/std "quantized_input_stats" whenever the input
        # type is integer and dynamic-range quantization is off, although full-integer
        # calibration (the representative dataset) supplies the input scale itself; its own
        # comment calls the warning a compatibility leftover. edgekit's quantizer silences it
        # the same way (edgekit.host.tfenv.quiet_native_output).
        warnings.filterwarnings("ignore", "Statistics for quantized inputs", UserWarning)
        return conv.convert()


def _convnet():
    """Conv/depthwise/pool/add/concat/dense: everything Coral's table maps."""
    import keras
    from keras import layers

    inp = keras.Input(shape=(32, 32, 3), batch_size=1)
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inp)
    y = layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = layers.Add()([x, y])
    a = layers.Conv2D(8, 1, activation="relu")(x)
    b = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = layers.Concatenate()([a, b])
    x = layers.MaxPooling2D(2)(x)
    x = layers.GlobalAveragePooling2D()(x)
    out = layers.Dense(4, activation="softmax")(x)
    return keras.Model(inp, out)


def _leaky(batch_size=1):
    """An op outside Coral's table (LEAKY_RELU) in the middle of an otherwise mappable graph."""
    import keras
    from keras import layers

    inp = keras.Input(shape=(16, 16, 3), batch_size=batch_size)
    x = layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    x = layers.LeakyReLU(negative_slope=0.1)(x)
    x = layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    out = layers.Dense(3)(x)
    return keras.Model(inp, out)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """name -> .tflite path: 'int8' (all-int8 conv net, uint8 I/O), 'float' (same net, float),
    'leaky' (int8 with LEAKY_RELU mid-graph), 'limits' (int8, ops breaking Coral's limitations),
    'float_io' (the int8 net with float32 input/output), 'dynamic' (int8 net, batch None)."""
    import keras

    keras.utils.set_random_seed(0)
    out = tmp_path_factory.mktemp("tiny_tflite")
    paths = {}
    net = _convnet()
    for name, model, int8 in (
        ("int8", net, True),
        ("float", net, False),
        ("leaky", _leaky(), True),
        ("limits", _limits(), True),
    ):
        p = out / f"{name}.tflite"
        p.write_bytes(_convert(model, int8))
        paths[name] = p
    # A model loaded without fixing the batch keeps a -1 batch in its shape signature.
    import tensorflow as tf

    paths["float_io"] = out / "float_io.tflite"
    paths["float_io"].write_bytes(_convert(net, True, io=tf.float32))
    paths["dynamic"] = out / "dynamic.tflite"
    paths["dynamic"].write_bytes(_convert(_leaky(batch_size=None), True))
    return paths


def _rules():
    """One tiny model per partitioning/limit rule (see rule_models)."""
    import keras
    from keras import layers

    def model(shape, build):
        inp = keras.Input(shape=shape, batch_size=1)
        out = build(inp)
        return keras.Model(inp, out)

    def resize(inp):
        x = layers.Conv2D(8, 1)(inp)
        up2 = layers.UpSampling2D(2, interpolation="bilinear")(x)  # 8x8 -> 16x16: maps
        odd = layers.Resizing(12, 12, interpolation="bilinear")(x)  # 8x8 -> 12x12: CPU
        return [up2, odd]

    def branch(inp):
        x = layers.Conv2D(8, 3, padding="same")(inp)
        a = layers.Conv2D(8, 1)(layers.LeakyReLU(negative_slope=0.1)(x))  # behind LEAKY_RELU
        b = layers.Conv2D(8, 1)(layers.Conv2D(8, 1)(x))  # a branch that never meets it
        return [a, b]

    def big_dense(inp):  # 3,000 x 3,000 int8 weights: 8.6 MiB, more than the on-chip cache
        return layers.Dense(10)(layers.Dense(3000, activation="relu")(inp))

    def near_full(inp):  # 2,600 x 2,600 int8 weights: 6.6 MiB padded, between 6.15 and 7.7
        return layers.Dense(10)(layers.Dense(2600, activation="relu")(inp))

    return {
        "big": model((3000,), big_dense),
        "near_full": model((2600,), near_full),
        "resize": model((8, 8, 4), resize),
        "branch": model((8, 8, 3), branch),
        # Conv2D(groups=2) converts to CONV_2D version 6, newer than compiler 16 maps
        "grouped": model((8, 8, 8), lambda i: layers.Conv2D(8, 3, groups=2, padding="same")(i)),
        "transposes": model((40, 40, 3), transposes),
    }


def transposes(inp):
    """NHWC -> NCHW transposes as in YOLOv8 heads: [1,40,40,68] (108,800 elements) and, on its
    own branch, [1,20,20,68] (27,200)."""
    from keras import layers

    x = layers.Conv2D(68, 1)(inp)
    big = layers.Permute((3, 1, 2))(x)
    small = layers.Permute((3, 1, 2))(layers.Conv2D(68, 1)(layers.AveragePooling2D(2)(inp)))
    return [big, small]


def int64_add_model() -> bytes:
    """An int8 ADD next to an int64 ADD (an index computed in the graph, as YOLOv10's
    post-processing does): the converter gives the ADD op code ONE version, 4 (int64)."""
    import keras
    import tensorflow as tf
    from keras import layers

    # Named inputs, fed by name: the converter orders inputs by their generated names, which
    # depend on how many Keras inputs the process made before (the full suite vs this module).
    img = keras.Input(shape=(8, 8, 4), batch_size=1, name="image")
    idx = keras.Input(shape=(3,), batch_size=1, dtype="int64", name="index")
    x = layers.Conv2D(8, 1)(img)
    y = layers.Add()([x, layers.Conv2D(8, 1)(x)])
    k = layers.Lambda(lambda t: t + 1)(idx)
    conv = tf.lite.TFLiteConverter.from_keras_model(keras.Model([img, idx], [y, k]))
    rng = np.random.default_rng(0)

    def representative():
        for _ in range(4):
            yield {"index": np.arange(3, dtype=np.int64)[None],
                   "image": rng.uniform(0, 1, (1, 8, 8, 4)).astype(np.float32)}  # fmt: skip

    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]  # fmt: skip
    conv.inference_input_type = conv.inference_output_type = tf.uint8
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Statistics for quantized inputs", UserWarning)
        return conv.convert()


@pytest.fixture(scope="session")
def rule_models(tmp_path_factory) -> dict[str, Path]:
    """name -> int8 .tflite (uint8 I/O): 'big' (8.6 MiB of weights), 'near_full' (6.6 MiB),
    'resize' (power-of-two and
    1.5x bilinear resizes side by side), 'branch' (a LEAKY_RELU on one branch, a second branch
    without it), 'grouped' (a CONV_2D v6), 'transposes' (NHWC->NCHW of 108,800 and 27,200
    elements), 'int64_add' (int8 ADDs at v4 beside an int64 ADD), 'dynamic_flat' (batch None
    with Flatten: run-time shape arithmetic)."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    out = tmp_path_factory.mktemp("rule_tflite")
    models = _rules()
    inp = keras.Input(shape=(8, 8, 3), batch_size=None)
    x = layers.Flatten()(layers.Conv2D(4, 3, padding="same")(inp))
    models["dynamic_flat"] = keras.Model(inp, layers.Dense(3)(x))
    paths = {}
    for name, model in models.items():
        paths[name] = out / f"{name}.tflite"
        paths[name].write_bytes(_convert(model, True))
    paths["int64_add"] = out / "int64_add.tflite"
    paths["int64_add"].write_bytes(int64_add_model())
    return paths


def _limits():
    """Supported op types that break one of Coral's documented limitations each."""
    import keras
    from keras import layers

    inp = keras.Input(shape=(8, 8, 4), batch_size=1)
    x = layers.Conv2D(8, 1, activation="relu")(inp)
    channel_mean = layers.Lambda(lambda t: keras.ops.mean(t, axis=-1, keepdims=True))(x)
    softmax_4d = layers.Softmax()(x)
    rank5 = layers.Reshape((2, 4, 8, 8))(x)
    dense_3d = layers.Dense(3)(layers.Reshape((64, 8))(x))
    return keras.Model(inp, [channel_mean, softmax_4d, rank5, dense_3d])
