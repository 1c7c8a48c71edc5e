"""Every zoo design converts to an all-int8 batch-1 TFLite model that maps fully to the TPU."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit import tflite
from edgekit.edgetpu import mapping

# The designs, at the small settings of conftest.SMALL.
NAMES = ["densenet_lite", "dsconv", "inception_lite", "mobilenet_v1", "squeezenet"]

# Coral's supported-operations table, the subset these designs may use.
TPU_OPS = {
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "MAX_POOL_2D",
    "AVERAGE_POOL_2D",
    "CONCATENATION",
    "ADD",
    "MUL",
    "RESHAPE",
    "FULLY_CONNECTED",
    "SOFTMAX",
    "RELU",
    "RELU6",
    "MEAN",
}


@pytest.mark.parametrize("name", NAMES)
def test_converts_to_int8_batch1_with_only_edgetpu_ops(name, small_tflites):
    info = tflite.read_model(small_tflites[name])
    graph = info.main
    ops = {op.opcode for op in graph.operators}
    assert ops <= TPU_OPS, ops - TPU_OPS
    # No float tensor anywhere; int32 only for constant biases.
    for t in graph.tensors:
        assert t.dtype in ("int8", "int32"), (t.name, t.dtype)
        if t.dtype == "int32":
            assert t.is_constant, t.name
        assert not t.is_dynamic, t.name
        if not t.is_constant:  # activations: at most 3 dims larger than 1 (weights may be 4-D)
            assert len([d for d in t.shape if d > 1]) <= 3, (t.name, t.shape)
    for t in (
        *[graph.tensors[i] for i in graph.inputs],
        *[graph.tensors[i] for i in graph.outputs],
    ):
        assert t.dtype == "int8" and t.shape[0] == 1


@pytest.mark.parametrize("name", NAMES)
def test_predicted_fully_mapped_to_the_edge_tpu(name, small_tflites):
    prediction = mapping.predict(tflite.read_model(small_tflites[name]))
    off = [(o.op, o.reason) for o in prediction.ops if not o.on_tpu]
    assert prediction.cpu_ops == 0 and not off, off
    assert prediction.tpu_ops == len(prediction.ops) > 0


@pytest.mark.parametrize("name", ["inception_lite", "mobilenet_v1", "squeezenet", "densenet_lite"])
def test_int8_classifier_runs_and_follows_the_float_model(name, small_models, small_tflites):
    """The int8 model runs on the CPU interpreter and gives the float model's probabilities
    to within a few quantization steps (untrained weights, random input)."""
    from ai_edge_litert.interpreter import Interpreter

    model = small_models[name]
    it = Interpreter(model_content=small_tflites[name])
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    x = np.random.default_rng(1).random((1, *model.input_shape[1:]), dtype=np.float32)
    scale, zero = inp["quantization"]
    it.set_tensor(inp["index"], np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8))
    it.invoke()
    o_scale, o_zero = out["quantization"]
    probs = (it.get_tensor(out["index"]).astype(np.float32) - o_zero) * o_scale
    expected = model(x, training=False).numpy()
    assert probs.shape == expected.shape == (1, model.output_shape[-1])
    assert probs.sum() == pytest.approx(1.0, abs=0.05)
    assert np.abs(probs - expected).max() < 0.1
