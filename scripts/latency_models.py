"""Keras equivalents (random weights) of the models in Coral's benchmark table 1 that
keras.applications does not ship, written from their papers / reference definitions; used by
``scripts/bench_latency.py``. Latency depends on shapes, not weights."""

from __future__ import annotations

import math


def _k():
    import keras
    from keras import layers

    return keras, layers


def _v4_stem(inp, conv, pool, cat):
    """The stem Inception v4 and Inception-ResNet v2 share (Szegedy et al. 2016, figure 3):
    299x299x3 -> 35x35x384."""
    x = conv(inp, 32, 3, 2, "valid")
    x = conv(x, 32, 3, 1, "valid")
    x = conv(x, 64, 3)
    x = cat()([pool(x), conv(x, 96, 3, 2, "valid")])
    a = conv(conv(x, 64, 1), 96, 3, 1, "valid")
    b = conv(conv(conv(conv(x, 64, 1), 64, (1, 7)), 64, (7, 1)), 96, 3, 1, "valid")
    x = cat()([a, b])
    return cat()([conv(x, 192, 3, 2, "valid"), pool(x)])


def inception_v4(size: int = 299, classes: int = 1001):
    """Inception v4 (Szegedy et al. 2016, figures 3-9): stem, 4 x A, reduction A, 7 x B,
    reduction B, 3 x C, average pool, 1,001-class FC (as TF-slim's inception_v4)."""
    keras, layers = _k()

    def conv(x, f, k, s=1, pad="same"):
        k = (k, k) if isinstance(k, int) else k
        return layers.Conv2D(f, k, strides=s, padding=pad, activation="relu")(x)

    def pool(x, kind="max", s=2, pad="valid"):
        cls = layers.MaxPooling2D if kind == "max" else layers.AveragePooling2D
        return cls(3, s, padding=pad)(x)

    cat = layers.Concatenate
    inp = keras.Input((size, size, 3))
    x = _v4_stem(inp, conv, pool, cat)
    for _ in range(4):  # Inception-A, 35x35x384
        x = cat()([conv(x, 96, 1), conv(conv(x, 64, 1), 96, 3),
                   conv(conv(conv(x, 64, 1), 96, 3), 96, 3),
                   conv(pool(x, "avg", 1, "same"), 96, 1)])  # fmt: skip
    x = cat()([conv(x, 384, 3, 2, "valid"),
               conv(conv(conv(x, 192, 1), 224, 3), 256, 3, 2, "valid"), pool(x)])  # fmt: skip
    for _ in range(7):  # Inception-B, 17x17x1024
        b1 = conv(conv(conv(x, 192, 1), 224, (1, 7)), 256, (7, 1))
        b2 = conv(conv(conv(conv(conv(x, 192, 1), 192, (7, 1)), 224, (1, 7)), 224, (7, 1)),
                  256, (1, 7))  # fmt: skip
        x = cat()([conv(x, 384, 1), b1, b2, conv(pool(x, "avg", 1, "same"), 128, 1)])
    b1 = conv(conv(x, 192, 1), 192, 3, 2, "valid")
    b2 = conv(conv(conv(conv(x, 256, 1), 256, (1, 7)), 320, (7, 1)), 320, 3, 2, "valid")
    x = cat()([b1, b2, pool(x)])
    for _ in range(3):  # Inception-C, 8x8x1536
        b1 = conv(x, 384, 1)
        b2 = conv(conv(x, 384, 1), 448, (3, 1))
        b2 = conv(b2, 512, (1, 3))
        x = cat()([conv(x, 256, 1), conv(b1, 256, (1, 3)), conv(b1, 256, (3, 1)),
                   conv(b2, 256, (1, 3)), conv(b2, 256, (3, 1)),
                   conv(pool(x, "avg", 1, "same"), 256, 1)])  # fmt: skip
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, layers.Dense(classes, activation="softmax")(x))



def inception_resnet_v2_paper(size: int = 299, classes: int = 1001):
    """Inception-ResNet v2 as the paper defines it (Szegedy et al. 2016, schema figure 15 with
    figures 3, 16, 7, 17, 18, 19): the v4 stem, 5 x A (35x35x384), reduction A (k, l, m, n =
    256, 256, 384, 384), 10 x B (17x17x1152), reduction B, 5 x C (8x8x2144), average pool,
    FC. 32.4 M parameters. TF-slim's inception_resnet_v2 (and keras.applications', ported
    from it) repeats the blocks 10 / 20 / 10 with a 320-channel stem and a 1536-channel 1x1
    conv before the pool: 55.8 M. The figures print 1154 and 2048 where the residual sums
    need 1152 and 2144 (the input widths): the sums decide. The residual scale (0.1) is a
    multiply by a constant after a linear 1x1 conv, which the TFLite converter folds into
    that conv's weights, so it is not a layer here."""
    keras, layers = _k()

    def conv(x, f, k, s=1, pad="same", act="relu"):
        k = (k, k) if isinstance(k, int) else k
        return layers.Conv2D(f, k, strides=s, padding=pad, activation=act)(x)

    def pool(x, s=2, pad="valid"):
        return layers.MaxPooling2D(3, s, padding=pad)(x)

    cat = layers.Concatenate

    def residual(x, branches, width):
        up = conv(cat()(branches), width, 1, act=None)
        return layers.ReLU()(layers.Add()([x, up]))

    inp = keras.Input((size, size, 3))
    x = _v4_stem(inp, conv, pool, cat)
    for _ in range(5):  # Inception-ResNet-A (figure 16)
        x = residual(x, [conv(x, 32, 1), conv(conv(x, 32, 1), 32, 3),
                         conv(conv(conv(x, 32, 1), 48, 3), 64, 3)], 384)  # fmt: skip
    x = cat()([pool(x), conv(x, 384, 3, 2, "valid"),
               conv(conv(conv(x, 256, 1), 256, 3), 384, 3, 2, "valid")])  # fmt: skip
    for _ in range(10):  # Inception-ResNet-B (figure 17)
        x = residual(x, [conv(x, 192, 1),
                         conv(conv(conv(x, 128, 1), 160, (1, 7)), 192, (7, 1))], 1152)  # fmt: skip
    x = cat()([pool(x), conv(conv(x, 256, 1), 384, 3, 2, "valid"),
               conv(conv(x, 256, 1), 288, 3, 2, "valid"),
               conv(conv(conv(x, 256, 1), 288, 3), 320, 3, 2, "valid")])  # fmt: skip
    for _ in range(5):  # Inception-ResNet-C (figure 19)
        x = residual(x, [conv(x, 192, 1),
                         conv(conv(conv(x, 192, 1), 224, (1, 3)), 256, (3, 1))], 2144)  # fmt: skip
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, layers.Dense(classes, activation="softmax")(x))

# EfficientNet-EdgeTPU (tensorflow/tpu models/official/efficientnet/efficientnet_edgetpu_builder
# .py): blocks "r{repeats}_k{kernel}_s{stride}_e{expand}_i{in}_o{out}[_c1 fused][_noskip]",
# ReLU, no squeeze-excite; S = (width 1.0, depth 1.0, 224), M = (1.0, 1.1, 240).
_EDGETPU_BLOCKS = (
    (1, 3, 1, 4, 24, True, False),
    (2, 3, 2, 8, 32, True, True),
    (4, 3, 2, 8, 48, True, True),
    (5, 5, 2, 8, 96, False, True),
    (4, 5, 1, 8, 144, False, True),
    (2, 5, 2, 8, 192, False, True),
)


def _round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """tensorflow/tpu efficientnet_builder's round_filters: ``filters * width`` to a multiple
    of 8, never more than 10% below it (identity at width 1.0 for these multiples of 8)."""
    f = filters * width
    new = max(divisor, int(f + divisor / 2) // divisor * divisor)
    return int(new + divisor if new < 0.9 * f else new)


def efficientnet_edgetpu(size: int = 224, depth: float = 1.0, classes: int = 1001,
                         width: float = 1.0):  # fmt: skip
    """EfficientNet-EdgeTPU S (224, depth 1.0), M (240, depth 1.1) or L (300, depth 1.4, width
    1.2; efficientnet_edgetpu_builder's table): stem 3x3/2 conv 32, the blocks above (fused =
    one kxk expansion conv instead of 1x1 + depthwise), 1x1 head 1280; stem, block outputs and
    head widths scaled by ``width`` (``_round_filters``)."""
    keras, layers = _k()

    def conv(x, f, k, s=1, act=True):
        return layers.Conv2D(f, k, strides=s, padding="same",
                             activation="relu" if act else None)(x)  # fmt: skip

    inp = keras.Input((size, size, 3))
    x = conv(inp, _round_filters(32, width), 3, 2)
    for repeats, k, stride, e, out, fused, skip in _EDGETPU_BLOCKS:
        out = _round_filters(out, width)
        for i in range(int(math.ceil(depth * repeats))):
            s = stride if i == 0 else 1
            cin = x.shape[-1]
            if fused:
                y = conv(x, cin * e, k, s)
            else:
                y = conv(x, cin * e, 1)
                y = layers.DepthwiseConv2D(k, s, padding="same", activation="relu")(y)
            y = conv(y, out, 1, act=False)
            x = layers.Add()([x, y]) if skip and s == 1 and cin == out else y
    x = conv(x, _round_filters(1280, width), 1)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, layers.Dense(classes, activation="softmax")(x))


def ssd_mobilenet(version: int = 2, size: int = 300, classes: int = 91, alpha: float = 1.0):
    """SSD MobileNet v1 / v2 300x300 (TF object detection API, ssd_mobilenet_v*_coco configs):
    feature maps at stride 16 (v1 Conv2d_11_pointwise, v2 layer_15 expansion) and 32, four
    extra layers (1x1 of half depth, 3x3/2 of 512, 256, 256, 128), 1x1 box predictors with 3
    anchors on the first map and 6 on the others (4 box + 91 class outputs each). The 1x1
    predictor kernel is the one that fits: Coral's compiled ssd_mobilenet_v2_coco_quant_
    postprocess (../shared pipeline segments) holds 6.2 MiB of parameters; 3x3 predictors
    would hold 6.6 MB in the 1280-channel map's class predictor alone. ``alpha``: the
    backbone's depth multiplier, which the TF feature map generator also applies to the extra
    layers (max(int(d * alpha), 16); ssd_mobilenet_v1_0.75_depth)."""
    keras, layers = _k()

    if version == 1:
        base = keras.applications.MobileNet(weights=None, include_top=False, alpha=alpha,
                                            input_shape=(size, size, 3))  # fmt: skip
        maps = [base.get_layer("conv_pw_11_relu").output, base.output]
    else:
        base = keras.applications.MobileNetV2(weights=None, include_top=False, alpha=alpha,
                                              input_shape=(size, size, 3))  # fmt: skip
        maps = [base.get_layer("block_13_expand_relu").output, base.output]
    x = maps[-1]
    for depth in (512, 256, 256, 128):
        depth = max(int(depth * alpha), 16)
        x = layers.Conv2D(depth // 2, 1, activation="relu")(x)
        x = layers.Conv2D(depth, 3, strides=2, padding="same", activation="relu")(x)
        maps.append(x)
    outs = []
    for i, m in enumerate(maps):
        anchors = 3 if i == 0 else 6
        outs.append(layers.Reshape((-1, 4))(layers.Conv2D(anchors * 4, 1)(m)))
        outs.append(layers.Reshape((-1, classes))(layers.Conv2D(anchors * classes, 1)(m)))
    boxes = layers.Concatenate(axis=1)(outs[0::2])
    scores = layers.Concatenate(axis=1)(outs[1::2])
    return keras.Model(base.input, [boxes, scores])
