"""Fixtures for the zoo tests: small builds of every design and their int8 conversions."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Small settings of every design: enough to exercise every layer type, quick to convert.
SMALL = {
    "inception_lite": dict(input_size=28, classes=2),
    "mobilenet_v1": dict(input_size=64, classes=3, alpha=0.25),
    "squeezenet": dict(input_size=64, classes=3, bypass=True),
    "densenet_lite": dict(input_size=32, classes=3, growth_rate=8, blocks=(2, 2)),
    "dsconv": dict(input_size=8, channels_in=16, channels_out=32),
}


def to_int8_tflite(model, samples: int = 8, seed: int = 0) -> bytes:
    """Full-integer post-training quantization of a batch-1 clone of ``model`` (int8 I/O).

    The batch-1 clone matters: with a free batch the graph keeps SHAPE/STRIDED_SLICE/PACK ops
    that the Edge TPU cannot run.
    """
    from edgekit.host.keras_io import batch1_clone
    from edgekit.host.quantize import quantize

    rng = np.random.default_rng(seed)

    def representative():
        for _ in range(samples):
            yield [rng.random((1, *model.input_shape[1:]), dtype=np.float32)]

    return quantize(batch1_clone(model), representative, io_type="int8")


@pytest.fixture(scope="session")
def small_models():
    """{name: keras.Model} at the SMALL settings."""
    from edgekit import zoo

    return {name: zoo.build(name, **kw) for name, kw in SMALL.items()}


@pytest.fixture(scope="session")
def small_tflites(small_models):
    """{name: int8 .tflite bytes} of every small model."""
    return {name: to_int8_tflite(m) for name, m in small_models.items()}
