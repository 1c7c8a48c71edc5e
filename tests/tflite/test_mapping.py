"""Edge TPU mapping prediction against what the real compiler did (the compiled pairs and logs in
../shared/data) and one tiny model per rule, converted in fixtures with TensorFlow's converter."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from edgekit.edgetpu import ops as R
from edgekit.edgetpu.mapping import MAPPED, SUBGRAPH, predict
from edgekit.host.compiler import parse_table
from edgekit.tflite import EDGETPU_CUSTOM_OP, read_model

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _pairs() -> list[tuple[str, Path, Path]]:
    """(id, CPU model, compiled twin) for every pair in ../shared/data (none when absent)."""
    out = []
    for twin in sorted(SHARED.glob("coral/*_edgetpu.tflite")):
        out.append((twin.name[: -len("_edgetpu.tflite")], twin.with_name(
            twin.name[: -len("_edgetpu.tflite")] + ".tflite"), twin))  # fmt: skip
    for twin in sorted([*SHARED.glob("yolo/*/model_edgetpu.tflite"),
                        *SHARED.glob("edgetpu-logs/*/model_edgetpu.tflite")]):  # fmt: skip
        out.append((twin.parent.name, twin.with_name("model.tflite"), twin))
    return out


PAIRS = _pairs()
needs_shared = pytest.mark.skipif(not PAIRS, reason="../shared/data (compiled pairs) is absent")
PAIR_IDS = [p[0] for p in PAIRS] or ["none"]
PAIR_ARGS = PAIRS or [("none", None, None)]


def actual_cpu_ops(cpu, twin) -> set[int]:
    """Ops of ``cpu`` that the compiler left on the CPU: matched by their output tensor names to
    the ops of the twin other than edgetpu-custom-op (the compiler keeps tensor names)."""
    left = {
        twin.main.tensors[t].name
        for op in twin.main.operators
        if op.opcode != EDGETPU_CUSTOM_OP
        for t in op.outputs
    }
    return {
        op.index
        for op in cpu.main.operators
        if any(cpu.main.tensors[t].name in left for t in op.outputs)
    }


@needs_shared
@pytest.mark.parametrize("name,cpu_path,twin_path", PAIR_ARGS, ids=PAIR_IDS)
def test_prediction_agrees_with_the_compiled_twin_op_by_op(name, cpu_path, twin_path):
    cpu, twin = read_model(cpu_path), read_model(twin_path)
    actual = actual_cpu_ops(cpu, twin)
    # the matching is sound: as many CPU ops found as the twin holds
    assert len(actual) == sum(op.opcode != EDGETPU_CUSTOM_OP for op in twin.main.operators)
    p = predict(cpu)
    assert p.cpu_ops == len(actual)
    wrong = [(o.index, o.op, o.status) for o in p.ops if (not o.on_tpu) != (o.index in actual)]
    assert not wrong


@needs_shared
@pytest.mark.parametrize(
    "log",
    sorted([*SHARED.glob("yolo/*/compiler.log"), *SHARED.glob("edgetpu-logs/*/compiler.log")])
    or [None],
    ids=lambda p: p.parent.name if p else "none",
)
def test_summary_rows_equal_the_compiler_log(log):
    """Operator, count and the compiler's status string, row for row."""
    rows = parse_table(log.read_text())
    p = predict(read_model(log.with_name("model.tflite")))
    key = lambda rs: Counter({(r["operator"], r["status"]): r["count"] for r in rs})  # noqa: E731
    assert key(p.summary()) == key(rows)


@needs_shared
def test_retinanet_parameter_memory_matches_its_log():
    """compiler.log: 3.86 MiB on-chip, 3.83 MiB remaining, 0.00 B off-chip."""
    m = predict(read_model(SHARED / "edgetpu-logs/retinanet-mathieugalle/model.tflite")).memory
    assert abs(m["on_chip_bytes"] / (3.86 * 2**20) - 1) < 0.03
    assert m["off_chip_bytes"] == 0 and not m["streams"]
    assert abs(m["on_chip_capacity_bytes"] / ((3.86 + 3.83) * 2**20) - 1) < 0.01


def test_parameters_beyond_the_on_chip_cache_stream(rule_models):
    """3,000 x 3,000 + 3,000 x 10 int8 weights (padded to 64x64 blocks) do not fit the ~7.7 MiB
    cache: the rest streams on every inference, and inspect warns."""
    p = predict(read_model(rule_models["big"]))
    m = p.memory
    assert p.cpu_ops == 0 and m["streams"]
    assert m["parameters_bytes"] >= 3000 * 3000 + 3000 * 10
    assert m["on_chip_bytes"] == m["on_chip_capacity_bytes"]
    assert m["off_chip_bytes"] == m["parameters_bytes"] - m["on_chip_capacity_bytes"] > 0
    from click.testing import CliRunner

    from edgekit.cli import main

    out = CliRunner().invoke(main, ["inspect", str(rule_models["big"])]).output
    assert "do not fit on-chip" in out and "streams" in out


def test_parameters_near_the_cache_size_may_stream(rule_models):
    """Logs show the compiler keeping 6.2-7.7 MiB for parameters depending on activations."""
    p = predict(read_model(rule_models["near_full"]))
    m = p.memory
    assert 6.15 * 2**20 < m["parameters_bytes"] < 7.7 * 2**20
    assert m["may_stream"] and not m["streams"] and m["off_chip_bytes"] == 0
    from click.testing import CliRunner

    from edgekit.cli import main

    out = CliRunner().invoke(main, ["inspect", str(rule_models["near_full"])]).output
    assert "part may stream" in out and "warning" not in out


@needs_shared
def test_model_without_buffers_is_read_and_predicted():
    """Coral's model_invoking_error.tflite: valid, no buffers vector; TFLite loads it."""
    info = read_model(SHARED / "coral/model_invoking_error.tflite")
    assert info.buffers == () and [op.opcode for op in info.main.operators] == ["fake-op-double"]
    (op,) = predict(info).ops
    assert not op.on_tpu and op.status == R.DTYPE  # a custom op on float tensors


@needs_shared
def test_movenet_float_prefix_stays_on_cpu_and_the_body_maps():
    p = predict(read_model(SHARED / "coral/movenet_single_pose_lightning_ptq.tflite"))
    assert [(o.op, o.on_tpu) for o in p.ops[:3]] == [
        ("CAST", False), ("QUANTIZE", False), ("SUB", True)]  # fmt: skip
    assert p.segments()[0] == {"on": "cpu", "ops": [0, 1]}
    assert p.segments()[1]["on"] == "edgetpu" and len(p.segments()[1]["ops"]) > 80


def _by_op(p):
    out: dict[str, list] = {}
    for o in p.ops:
        out.setdefault(o.op, []).append(o)
    return out


def test_all_int8_convnet_fully_mapped(tiny_models):
    p = predict(read_model(tiny_models["int8"]))
    ops = [o.op for o in p.ops]
    # uint8 I/O: the converter adds uint8<->int8 QUANTIZE ops at both ends, which map
    assert ops[0] == ops[-1] == "QUANTIZE"
    assert p.cpu_ops == 0 and p.tpu_ops == len(ops) == 12
    assert all(o.status == o.reason == MAPPED for o in p.ops) and p.suggestions == ()


def test_float_model_every_op_unsupported_dtype(tiny_models):
    p = predict(read_model(tiny_models["float"]))
    assert p.tpu_ops == 0 and all(o.status == R.DTYPE and "float32" in o.reason for o in p.ops)
    (s,) = p.suggestions  # one fix for all of them, and it brings every op over
    assert "full-integer" in s["fix"] and s["ops_gained"] == len(p.ops)


def test_unsupported_op_cuts_off_what_depends_on_it(tiny_models):
    p = predict(read_model(tiny_models["leaky"]))
    assert [(o.op, o.on_tpu) for o in p.ops] == [
        ("QUANTIZE", True), ("CONV_2D", True), ("LEAKY_RELU", False), ("CONV_2D", False),
        ("MEAN", False), ("FULLY_CONNECTED", False), ("QUANTIZE", False)]  # fmt: skip
    assert p.ops[2].status == R.NOT_SUPPORTED and "ReLU" in p.ops[2].fix
    assert all(o.status == SUBGRAPH and "#2 LEAKY_RELU" in o.reason for o in p.ops[3:])
    (s,) = p.suggestions
    assert s["ops"] == [2] and s["ops_gained"] == 5


def test_branch_without_the_unmapped_op_keeps_mapping(rule_models):
    p = predict(read_model(rule_models["branch"]))
    by = _by_op(p)
    (leaky,) = by["LEAKY_RELU"]
    assert not leaky.on_tpu and leaky.status == R.NOT_SUPPORTED
    convs = by["CONV_2D"]
    behind = [o for o in convs if not o.on_tpu]
    assert len(behind) == 1 and behind[0].status == SUBGRAPH
    assert sum(o.on_tpu for o in convs) == 3  # the stem and the two convs of the other branch
    assert p.cpu_ops == 3  # LEAKY_RELU, the conv behind it, its output QUANTIZE


def test_float_input_prefix_stays_on_cpu_and_the_body_maps(tiny_models):
    """As the compiler did with mnist4-floatio: the float input's QUANTIZE and the float output's
    DEQUANTIZE run on the CPU, every op between them on the Edge TPU."""
    p = predict(read_model(tiny_models["float_io"]))
    first, last = p.ops[0], p.ops[-1]
    assert (first.op, first.on_tpu, first.status) == ("QUANTIZE", False, R.UNSPECIFIED)
    assert (last.op, last.on_tpu, last.status) == ("DEQUANTIZE", False, R.DTYPE)
    assert "--io" in first.fix and all(o.on_tpu for o in p.ops[1:-1])
    assert (p.tpu_ops, p.cpu_ops) == (10, 2)
    assert [s["on"] for s in p.segments()] == ["cpu", "edgetpu", "cpu"]


def test_resize_bilinear_power_of_two_maps_other_scales_do_not(rule_models):
    p = predict(read_model(rule_models["resize"]))
    resizes = {tuple(read_model(rule_models["resize"]).main.tensors[
        read_model(rule_models["resize"]).main.operators[o.index].outputs[0]].shape): o
        for o in _by_op(p)["RESIZE_BILINEAR"]}  # fmt: skip
    assert resizes[(1, 16, 16, 8)].on_tpu
    odd = resizes[(1, 12, 12, 8)]
    assert not odd.on_tpu and odd.status == R.UNSPECIFIED and "8x8 -> 12x12" in odd.reason


def test_op_version_the_compiler_cannot_read_stops_the_whole_model(rule_models):
    """CONV_2D v6 (a grouped convolution): compiler 16's TFLite does not register it, so it
    stops with "Model could not be parsed" and maps nothing (google-coral/edgetpu#631)."""
    p = predict(read_model(rule_models["grouped"]))
    (conv,) = _by_op(p)["CONV_2D"]
    assert conv.version == 6 and p.tpu_ops == 0 and {o.status for o in p.ops} == {R.PARSE}
    assert "version '6'" in p.compile_error and "grouped" in conv.reason
    assert "groups=1" in conv.fix and p.to_dict()["compile_error"] == p.compile_error
    (s,) = p.suggestions
    assert s["ops"] == [conv.index] and s["ops_gained"] == len(p.ops)  # all of it, once fixed


def test_one_int64_add_makes_every_int8_add_a_version_the_compiler_refuses(rule_models):
    """The converter writes one version per op type (TFLite's UpdateOpVersion): an int64 ADD
    lifts the int8 ADD to v4, which compiler 16 refuses (yolov10n-192-edward's twin)."""
    info = read_model(rule_models["int64_add"])
    p = predict(info)
    adds = _by_op(p)["ADD"]
    int8_add = next(o for o in adds if o.status == R.VERSION)
    assert int8_add.version == 4 and not int8_add.on_tpu
    int64_add = next(o for o in adds if o is not int8_add)
    assert f"op #{int64_add.index} ADD works on int64" in int8_add.reason
    assert "v2" in int8_add.reason and "non-int8 ADD" in int8_add.fix
    assert [o.op for o in p.ops if o.on_tpu][:1] == ["QUANTIZE"] and _by_op(p)["CONV_2D"][0].on_tpu


def test_channel_moving_transpose_limit(rule_models):
    """NHWC -> NCHW of [1,40,40,68] stays on the CPU (yolov8n-ppe-giovanimn's twin), the same
    transpose of [1,20,20,68] maps (its stride-32 head)."""
    info = read_model(rule_models["transposes"])
    p = predict(info)
    by_shape = {info.main.tensors[info.main.operators[o.index].inputs[0]].shape: o
                for o in _by_op(p)["TRANSPOSE"]}  # fmt: skip
    big, small = by_shape[(1, 40, 40, 68)], by_shape[(1, 20, 20, 68)]
    assert not big.on_tpu and big.status == R.UNSPECIFIED and "108,800" in big.reason
    assert "moving the channel axis" in big.reason
    assert small.on_tpu


@needs_shared
def test_yolov10n_int8_adds_refused_for_their_version():
    """The first CPU op of the compiled twin is the first int8 ADD (v4: the int64 ADDs of the
    NMS-free post-processing share its op code); everything behind it follows."""
    p = predict(read_model(SHARED / "yolo/yolov10n-192-edward/model.tflite"))
    first = p.first_unmapped
    assert (first.op, first.version, first.status) == ("ADD", 4, R.VERSION)
    assert "int64" in first.reason


def test_rank5_and_documented_limitations(tiny_models):
    p = predict(read_model(tiny_models["limits"]))
    by = _by_op(p)
    rank = [o for o in p.ops if o.status == R.RANK]
    assert rank and all("[1, 2, 4, 8, 8]" in o.reason for o in rank)
    (fc,) = by["FULLY_CONNECTED"]
    assert not fc.on_tpu and "1-D" in fc.reason
    (mean,) = by["MEAN"]  # a channel mean over 8 channels: a multiple of 4, allowed
    assert mean.on_tpu


def test_dynamic_batch_alone_does_not_stop_mapping(tiny_models, rule_models):
    """The compiler compiles the static shape of a -1 batch (mnist4, autoencoder pairs); only
    the run-time shape arithmetic a -1 batch makes the converter emit stays on the CPU."""
    info = read_model(tiny_models["dynamic"])
    assert info.dynamic_tensors()
    p = predict(info)
    assert [o.op for o in p.ops if not o.on_tpu][0] == "LEAKY_RELU"  # not the -1 batch
    flat = predict(read_model(rule_models["dynamic_flat"]))
    (shape,) = _by_op(flat)["SHAPE"]
    assert shape.status == R.DTYPE and "batch-1" in shape.fix
    assert _by_op(flat)["CONV_2D"][0].on_tpu


def test_coral_compiled_model_reports_what_the_compiler_did(coral_dir):
    p = predict(read_model(coral_dir / "mobilenet_v2_1.0_224_quant_edgetpu.tflite"))
    assert (p.tpu_ops, p.cpu_ops, p.compiled) == (1, 0, True)
    assert p.ops[0].op == "edgetpu-custom-op" and p.ops[0].on_tpu


def test_to_dict_contract(tiny_models):
    d = predict(read_model(tiny_models["leaky"])).to_dict()
    assert {"tpu_ops", "cpu_ops", "ops", "segments", "summary", "memory", "suggestions"} <= set(d)
    assert d["tpu_ops"] + d["cpu_ops"] == len(d["ops"])
    for i, o in enumerate(d["ops"]):
        assert {"index", "op", "version", "on_tpu", "status", "reason"} <= set(o)
        assert o["index"] == i and o["status"] in R.STATUSES
    assert sum(r["count"] for r in d["summary"]) == len(d["ops"])
    json.dumps(d)


@needs_shared
def test_yolov8_suggests_the_input_size_that_fits_the_head():
    """Users report YOLOv8n (80 classes) mapping completely up to 192x192 (jveitchmichaelis/
    edgetpu-yolo issue 17) and leaving ops on the CPU at 320x320 (ultralytics issue 4754): the
    prediction finds that size from the head's oversized tensors (the channel-moving TRANSPOSE
    of the stride-8 map is the tightest), and fixing those brings every op over."""
    p = predict(read_model(SHARED / "yolo/yolov8n-640-maxwell/model.tflite"))
    best = p.suggestions[0]
    assert "192x192 instead of 640x640" in best["fix"] and best["ops_gained"] == p.cpu_ops == 25


def test_corrupt_models_never_crash_the_prediction(coral_dir):
    """Bytes flipped in a real model's tables: read_model refuses it with one EdgekitError, or
    the prediction and the inspect report come out (never IndexError, KeyError, ...)."""
    import random

    from edgekit.errors import EdgekitError
    from edgekit.inspect_model import format_report, inspect_tflite

    base = (coral_dir / "mobilenet_v1_0.25_128_quant.tflite").read_bytes()
    info = read_model(base)
    tables = max(b.offset + b.size for b in info.buffers)  # the flatbuffer tables follow the data
    rng = random.Random(11)
    survived = 0
    for _ in range(300):
        data = bytearray(base)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(tables, len(data))] = rng.choice([0, 1, 0x7F, 0x80, 0xFF])
        try:
            m = read_model(bytes(data))
        except EdgekitError:
            continue
        try:
            format_report(inspect_tflite(m))
        except EdgekitError:
            continue
        survived += 1
    assert survived > 50  # most flips land in names or options and still parse
