"""Edge TPU mapping prediction on real models: Coral's (checked against their compiled twins)
and tiny Keras models converted in fixtures."""

from __future__ import annotations

import json

import pytest

from edgekit.mapping import AFTER_FIRST_UNMAPPED, MAPPED, predict
from edgekit.tflite import read_model

CORAL = ("mobilenet_v1_0.25_128_quant", "mobilenet_v2_1.0_224_quant")


@pytest.mark.parametrize("stem", CORAL)
def test_coral_cpu_models_predicted_as_compiled(coral_dir, stem):
    """The real compiler put every op of these models into one edgetpu-custom-op."""
    cpu = read_model(coral_dir / f"{stem}.tflite")
    twin = read_model(coral_dir / f"{stem}_edgetpu.tflite")
    assert twin.op_counts() == {"edgetpu-custom-op": 1}  # i.e. nothing left on the CPU
    p = predict(cpu)
    assert p.cpu_ops == 0 and p.tpu_ops == len(cpu.main.operators)
    assert p.fully_mapped and p.first_unmapped is None
    assert all(o.reason == MAPPED for o in p.ops)


@pytest.mark.parametrize("stem", CORAL)
def test_compiled_model_reports_what_the_compiler_did(coral_dir, stem):
    p = predict(read_model(coral_dir / f"{stem}_edgetpu.tflite"))
    assert (p.tpu_ops, p.cpu_ops) == (1, 0)
    assert p.ops[0].op == "edgetpu-custom-op" and p.ops[0].on_tpu


def test_all_int8_convnet_fully_mapped(tiny_models):
    info = read_model(tiny_models["int8"])
    p = predict(info)
    ops = [o.op for o in p.ops]
    # uint8 I/O: the converter adds requantize ops at both ends, which the Edge TPU maps
    assert ops[0] == ops[-1] == "QUANTIZE"
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "CONCATENATION", "MAX_POOL_2D", "MEAN",
            "FULLY_CONNECTED", "SOFTMAX"} <= set(ops)  # fmt: skip
    assert p.cpu_ops == 0 and p.tpu_ops == len(ops) == 12


def test_float_model_every_op_unsupported_dtype(tiny_models):
    p = predict(read_model(tiny_models["float"]))
    assert p.tpu_ops == 0 and p.cpu_ops == len(p.ops)
    assert all(
        o.reason.startswith("unsupported data type") and "float32" in o.reason for o in p.ops
    )


def test_unsupported_op_moves_the_rest_to_cpu(tiny_models):
    p = predict(read_model(tiny_models["leaky"]))
    got = [(o.op, o.on_tpu) for o in p.ops]
    assert got == [("QUANTIZE", True), ("CONV_2D", True), ("LEAKY_RELU", False),
                   ("CONV_2D", False), ("MEAN", False), ("FULLY_CONNECTED", False),
                   ("QUANTIZE", False)]  # fmt: skip
    assert "LEAKY_RELU is not supported by the Edge TPU" in p.ops[2].reason
    for o in p.ops[3:]:
        assert o.reason.startswith(AFTER_FIRST_UNMAPPED) and "#2 LEAKY_RELU" in o.reason
    assert p.first_unmapped.index == 2 and (p.tpu_ops, p.cpu_ops) == (2, 5)


def test_documented_limitations(tiny_models):
    p = predict(read_model(tiny_models["limits"]))
    by_op = {}
    for o in p.ops:
        by_op.setdefault(o.op, []).append(o)
    assert [o.on_tpu for o in p.ops[:2]] == [True, True]  # QUANTIZE, CONV_2D
    (mean,) = by_op["MEAN"]
    assert not mean.on_tpu and "x and/or y only" in mean.reason and "[3]" in mean.reason
    (fc,) = by_op["FULLY_CONNECTED"]
    assert "one-dimensional" in fc.reason
    (softmax,) = by_op["SOFTMAX"]
    assert "1-D input" in softmax.reason
    rank = [o for o in p.ops if o.reason.startswith("unsupported rank")]
    assert rank and all("[1, 2, 4, 8, 8]" in o.reason for o in rank)
    # an op with nothing wrong of its own, after the first unmapped op (MEAN, #2)
    assert any(o.reason.startswith(AFTER_FIRST_UNMAPPED + " (#2 MEAN)") for o in p.ops)
    assert p.tpu_ops == 2


def test_float_io_quantize_at_the_boundaries_stays_on_cpu(tiny_models):
    """As the real compiler does for float-I/O int8 models: the input QUANTIZE and the output
    DEQUANTIZE run on the CPU, every op between them on the Edge TPU."""
    p = predict(read_model(tiny_models["float_io"]))
    first, last = p.ops[0], p.ops[-1]
    assert (first.op, first.on_tpu, last.op, last.on_tpu) == (
        "QUANTIZE",
        False,
        "DEQUANTIZE",
        False,
    )
    assert "at the graph input" in first.reason and "--io uint8" in first.reason
    assert all(o.on_tpu and o.reason == MAPPED for o in p.ops[1:-1])
    assert (p.tpu_ops, p.cpu_ops) == (10, 2)
    assert p.first_unmapped is first


def test_dynamic_batch_reason(tiny_models):
    p = predict(read_model(tiny_models["dynamic"]))
    assert not p.ops[0].on_tpu
    assert p.ops[0].reason.startswith("dynamic shape") and "-1" in p.ops[0].reason
    assert p.tpu_ops == 0


def test_to_dict_contract(tiny_models):
    d = predict(read_model(tiny_models["leaky"])).to_dict()
    assert set(d) == {"tpu_ops", "cpu_ops", "ops"}
    assert d["tpu_ops"] + d["cpu_ops"] == len(d["ops"])
    for i, o in enumerate(d["ops"]):
        assert set(o) == {"index", "op", "on_tpu", "reason"} and o["index"] == i
        assert isinstance(o["on_tpu"], bool) and isinstance(o["reason"], str) and o["reason"]
    json.dumps(d)
