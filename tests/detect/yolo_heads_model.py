"""A small two-output YOLOv3-style Keras model, as users bring them (the Coral ports of
YOLOv3-Tiny: two raw grid heads, strides 32 and 16, darknet layer names), built with fixed
random weights. Run as a script (TensorFlow stays out of the test process)::

    python yolo_heads_model.py OUT_DIR SIZE CLASSES

writes ``OUT_DIR/heads.h5`` (outputs in the order stride 32, stride 16, as darknet's
yolov3-tiny.cfg and the Coral ports list them) and ``OUT_DIR/heads_reversed.h5`` (the same
weights, outputs stride 16 first), ``OUT_DIR/heads_savedmodel`` (``model.export``: a
signature with two outputs), ``OUT_DIR/heads_keras2.h5`` (the same weights saved by
tf_keras, Keras 2, when installed) and ``OUT_DIR/two_outputs.h5`` (two Dense outputs: not grid
heads, refused).
"""

from __future__ import annotations

import sys
from pathlib import Path


def build(keras, size: int, classes: int):
    layers = keras.layers
    init = keras.initializers.HeNormal(seed=1)
    head = keras.initializers.VarianceScaling(4.0, seed=2)  # logits of a few units, as trained

    def conv(x, f, k, name, act="relu"):
        return layers.Conv2D(f, k, padding="same", activation=act, kernel_initializer=init,
                             name=name)(x)  # fmt: skip

    inp = keras.Input((size, size, 3), name="input_1")
    x = inp
    for i, f in enumerate((8, 8, 16, 16), start=1):
        x = conv(x, f, 3, f"conv2d_{i}")
        x = layers.MaxPooling2D(2, name=f"max_pooling2d_{i}")(x)
    route16 = conv(x, 24, 3, "conv2d_5")  # stride 16
    x = layers.MaxPooling2D(2, name="max_pooling2d_5")(route16)
    x = conv(x, 32, 3, "conv2d_6")
    route32 = conv(x, 16, 1, "conv2d_7")  # stride 32
    out = 3 * (5 + classes)
    bias = keras.initializers.Constant(0.0)  # most cells background, as trained heads are
    y32 = conv(route32, 32, 3, "conv2d_8")
    s32 = layers.Conv2D(out, 1, name="conv2d_9", kernel_initializer=head,
                        bias_initializer=bias)(y32)  # fmt: skip
    y = conv(route32, 8, 1, "conv2d_10")
    y = layers.UpSampling2D(2, interpolation="nearest", name="up_sampling2d_1")(y)
    y = layers.Concatenate(name="concatenate_1")([y, route16])
    y = conv(y, 24, 3, "conv2d_11")
    s16 = layers.Conv2D(out, 1, name="conv2d_12", kernel_initializer=head,
                        bias_initializer=bias)(y)  # fmt: skip
    return keras.Model(inp, [s32, s16], name="yolov3_tiny_port")


def main(out_dir: str, size: str, classes: str) -> None:
    import keras

    out = Path(out_dir)
    model = build(keras, int(size), int(classes))
    model.save(out / "heads.h5")
    rev = keras.Model(model.inputs, model.outputs[::-1], name="yolov3_tiny_port_reversed")
    rev.save(out / "heads_reversed.h5")
    model.export(out / "heads_savedmodel", verbose=False)  # a SavedModel signature
    try:  # the same weights in a Keras 2 file, as the Coral ports' Keras models are
        import tf_keras
    except ImportError:
        pass
    else:
        k2 = build(tf_keras, int(size), int(classes))
        k2.set_weights(model.get_weights())
        k2.save(out / "heads_keras2.h5")
    # two outputs that are not grid heads: a classifier with an extra regression output
    x = keras.layers.GlobalAveragePooling2D()(model.get_layer("conv2d_7").output)
    two = keras.Model(model.inputs, [keras.layers.Dense(2, name="cls")(x),
                                     keras.layers.Dense(4, name="box")(x)])  # fmt: skip
    two.save(out / "two_outputs.h5")


if __name__ == "__main__":
    main(*sys.argv[1:])
