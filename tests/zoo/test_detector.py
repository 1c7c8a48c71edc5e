"""The zoo detector: exact counts, its head layout, and a 100% Edge TPU mapping."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit import zoo
from edgekit.errors import EdgekitError
from edgekit.host.keras_stats import inspect_keras

from .conftest import to_int8_tflite


def _layer(stats, name):
    return next(r for r in stats["layers"] if r["name"] == name)


def test_default_counts_by_hand():
    stats = inspect_keras(zoo.build("detector"))
    assert (stats["params"], stats["macs"]) == (93_516, 30_515_200)
    # Stem: 3x3x3x16 conv at 80x80; BN adds 4 per channel.
    assert _layer(stats, "stem")["macs"] == 3 * 3 * 3 * 16 * 80 * 80
    # Last backbone pointwise conv: 128 -> 128 at 10x10.
    assert _layer(stats, "stage3_block3_pw")["params"] == 128 * 128
    assert _layer(stats, "stage3_block3_pw")["macs"] == 128 * 128 * 10 * 10
    # The stride-8 head sees 64 + 128 channels (its own and the upsampled stride-16 map).
    assert _layer(stats, "p8_context")["output_shape"] == [None, 20, 20, 64 + 128]
    assert _layer(stats, "head_p8_pw")["params"] == (64 + 128) * 64
    assert _layer(stats, "head_p16_pw")["params"] == 128 * 64
    # Heads: 64 -> 4 + 2 with bias, at 20x20 (stride 8) and 10x10 (stride 16).
    assert _layer(stats, "head_p8_out")["params"] == 64 * 6 + 6
    assert _layer(stats, "head_p8_out")["macs"] == 64 * 6 * 20 * 20
    assert _layer(stats, "head_p16_out")["macs"] == 64 * 6 * 10 * 10
    assert _layer(stats, "detections")["output_shape"] == [None, 20 * 20 + 10 * 10, 6]
    entry = zoo.REGISTRY["detector"]
    assert entry.task == "detect" and (entry.params, entry.macs) == (93_516, 30_515_200)


def test_head_rows_follow_the_documented_layout():
    """Row r of the output is cell cells()[r]: put a unique value in one conv output cell of
    each level and find it in the predicted row."""
    import keras

    model = zoo.build("detector", input_size=(64, 96), classes=3)
    from edgekit.zoo.detector import cells

    centres, strides = cells((64, 96))
    assert len(centres) == model.output_shape[1] == 8 * 12 + 4 * 6
    for stride in (8, 16):
        conv = model.get_layer(f"head_p{stride}_out")
        probe = keras.Model(model.input, [conv.output, model.output])
        raw, out = probe.predict(np.random.default_rng(0).random((1, 64, 96, 3)), verbose=0)
        y, x = 2, 3
        row = np.nonzero((strides == stride) & (centres[:, 0] == (x + 0.5) * stride)
                         & (centres[:, 1] == (y + 0.5) * stride))[0][0]  # fmt: skip
        np.testing.assert_allclose(out[0, row], 1 / (1 + np.exp(-raw[0, y, x])), rtol=1e-5)


def test_all_ops_map_to_the_edge_tpu():
    from edgekit.edgetpu.mapping import predict
    from edgekit.tflite import read_model

    info = read_model(to_int8_tflite(zoo.build("detector", input_size=96, classes=3, alpha=0.5)))
    prediction = predict(info)
    assert prediction.cpu_ops == 0 and prediction.tpu_ops == len(prediction.ops) > 20
    ops = {o.op for o in prediction.ops}
    assert ops == {
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "RESIZE_NEAREST_NEIGHBOR",
        "RESHAPE",
        "CONCATENATION",
        "LOGISTIC",
    }


def test_bad_settings_are_one_line_errors():
    with pytest.raises(EdgekitError, match="multiples of 16"):
        zoo.build("detector", input_size=100)
    for alpha in (0, float("nan"), float("inf")):
        with pytest.raises(EdgekitError, match="alpha must be > 0"):
            zoo.build("detector", alpha=alpha)
    with pytest.raises(EdgekitError, match="head_filters"):
        zoo.build("detector", head_filters=0)
