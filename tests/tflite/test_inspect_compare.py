"""`edgekit inspect MODEL --compiled TWIN [--log LOG]`: what the compiler did beside the
prediction, through the click CLI, on real compiled pairs; and bad --compiled/--log input."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgekit.cli import main

V1 = "mobilenet_v1_0.25_128_quant"
YOLO8 = Path(__file__).resolve().parents[2].parent / "shared/data/yolo/yolov8n-640-maxwell"


def _run(*args):
    return CliRunner().invoke(main, ["inspect", *map(str, args)])


def _log(rows) -> str:
    """A compiler log in edgetpu_compiler 16's .log format."""
    table = "\n".join(f"{op:<31}{n:<11}{status}" for op, n, status in rows)
    return (
        "Edge TPU Compiler version 16.0.384591198\nInput: m.tflite\nOutput: m_edgetpu.tflite\n\n"
        f"{'Operator':<31}{'Count':<11}Status\n\n{table}\n"
    )


def test_coral_pair_agrees_op_by_op(coral_dir, tmp_path):
    log = tmp_path / "m_edgetpu.log"
    log.write_text(_log([("CONV_2D", 15, "Mapped to Edge TPU"),
                         ("DEPTHWISE_CONV_2D", 13, "Mapped to Edge TPU"),
                         ("AVERAGE_POOL_2D", 1, "Mapped to Edge TPU"),
                         ("RESHAPE", 1, "Mapped to Edge TPU"),
                         ("SOFTMAX", 1, "Mapped to Edge TPU")]))  # fmt: skip
    args = (coral_dir / f"{V1}.tflite", "--compiled", coral_dir / f"{V1}_edgetpu.tflite")
    r = _run(*args, "--log", log, "--json")
    assert r.exit_code == 0, r.output
    c = json.loads(r.output)["comparison"]
    assert c["agree"] is True and c["disagreements"] == []
    assert (c["predicted_cpu_ops"], c["actual_cpu_ops"]) == (0, 0) and len(c["ops"]) == 31
    assert all(x["predicted"] == x["actual"] for x in c["summary"])
    text = _run(*args).output
    assert "Compiler vs prediction: prediction agrees (CPU ops: predicted 0, actual 0)" in text


def test_disagreement_is_marked(coral_dir, tmp_path):
    """A log that says SOFTMAX stayed on the CPU: the row is marked, the verdict says so."""
    log = tmp_path / "m.log"
    log.write_text(_log([("CONV_2D", 15, "Mapped to Edge TPU"),
                         ("DEPTHWISE_CONV_2D", 13, "Mapped to Edge TPU"),
                         ("AVERAGE_POOL_2D", 1, "Mapped to Edge TPU"),
                         ("RESHAPE", 1, "Mapped to Edge TPU"),
                         ("SOFTMAX", 1, "Operation not supported")]))  # fmt: skip
    r = _run(coral_dir / f"{V1}.tflite", "--log", log)
    assert r.exit_code == 0, r.output
    assert "prediction DISAGREES (CPU ops: predicted 0, actual 1)" in r.output
    marked = [ln for ln in r.output.splitlines() if ln.strip().startswith("!!")]
    assert len(marked) == 2 and all("SOFTMAX" in ln for ln in marked)


@pytest.mark.skipif(not YOLO8.is_dir(), reason="../shared/data/yolo is absent")
def test_yolov8_head_with_the_real_log():
    r = _run(YOLO8 / "model.tflite", "--compiled", YOLO8 / "model_edgetpu.tflite",
             "--log", YOLO8 / "compiler.log", "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    c = d["comparison"]
    assert c["agree"] is True and (c["predicted_cpu_ops"], c["actual_cpu_ops"]) == (25, 25)
    assert d["edgetpu"]["cpu_ops"] == 25  # the key scripts rely on
    statuses = {o["status"] for o in d["edgetpu"]["ops"] if not o["on_tpu"]}
    assert statuses == {
        "More than one subgraph is not supported",
        "Operation is otherwise supported, but not mapped due to some unspecified limitation",
    }


@pytest.mark.parametrize(
    "what", ["missing", "directory", "fifo", "not-compiled", "not-a-log", "other-model"]
)
def test_bad_compiled_or_log_one_line_exit_1(what, coral_dir, tmp_path):
    cpu = coral_dir / f"{V1}.tflite"
    if what == "missing":
        args = ("--compiled", tmp_path / "nope_edgetpu.tflite")
    elif what == "directory":
        args = ("--log", tmp_path)
    elif what == "fifo":
        os.mkfifo(tmp_path / "pipe")
        args = ("--log", tmp_path / "pipe")
    elif what == "not-compiled":
        args = ("--compiled", cpu)
    elif what == "other-model":
        args = ("--compiled", coral_dir / "mobilenet_v2_1.0_224_quant_edgetpu.tflite")
    else:
        (tmp_path / "x.log").write_text("hello\n")
        args = ("--log", tmp_path / "x.log")
    r = _run(cpu, *args)
    assert r.exit_code == 1, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), r.output
    assert "Traceback" not in r.output


def test_compiled_model_as_main_argument_is_refused(coral_dir):
    r = _run(coral_dir / f"{V1}_edgetpu.tflite", "--compiled", coral_dir / f"{V1}_edgetpu.tflite")
    assert r.exit_code == 1 and "already compiled" in r.output


def test_compiled_model_with_its_cpu_model_beside_it_is_compared(coral_dir, tmp_path):
    """A bundle from convert holds X_int8.tflite, X_int8_edgetpu.tflite and X_int8_edgetpu.log:
    inspecting the compiled model compares it with the prediction for the CPU one."""
    shutil.copy(coral_dir / f"{V1}.tflite", tmp_path / "m_int8.tflite")
    shutil.copy(coral_dir / f"{V1}_edgetpu.tflite", tmp_path / "m_int8_edgetpu.tflite")
    (tmp_path / "m_int8_edgetpu.log").write_text(_log([("CONV_2D", 15, "Mapped to Edge TPU")]))
    r = _run(tmp_path / "m_int8_edgetpu.tflite", "--json")
    assert r.exit_code == 0, r.output
    c = json.loads(r.output)["comparison"]
    assert c["disagreements"] == [] and c["actual_cpu_ops"] == 0
    # the hand-made log lists only the convs: the other rows are marked as disagreeing
    assert c["agree"] is False and {x["operator"] for x in c["summary"]} >= {"CONV_2D", "SOFTMAX"}
    assert "Compiler vs prediction" in _run(tmp_path / "m_int8_edgetpu.tflite").output


def test_op_disagreement_with_the_twin_is_listed(coral_dir):
    """compare() on a real pair against a prediction that wrongly puts one op on the CPU."""
    from edgekit.edgetpu.compare import compare, format_comparison
    from edgekit.edgetpu.mapping import OpMapping, predict
    from edgekit.tflite import read_model

    cpu = read_model(coral_dir / f"{V1}.tflite")
    twin = read_model(coral_dir / f"{V1}_edgetpu.tflite")
    p = predict(cpu)
    wrong = list(p.ops)
    wrong[5] = OpMapping(5, wrong[5].op, False, "pretend", "Operation not supported")
    p = type(p)(p.tpu_ops - 1, 1, tuple(wrong))
    c = compare(cpu, p, twin)
    assert c["agree"] is False and c["disagreements"] == [5]
    assert (c["predicted_cpu_ops"], c["actual_cpu_ops"]) == (1, 0)
    row = next(r for r in c["ops"] if r["index"] == 5)
    assert (row["predicted"], row["actual"], row["agree"]) == ("cpu", "edgetpu", False)
    marked = [ln for ln in format_comparison(c) if ln.strip().startswith("!!")]
    assert len(marked) == 1 and marked[0].split()[1] == "5"


def test_any_log_text_gives_a_comparison_or_one_error(coral_dir, tmp_path):
    """Hypothesis: whatever a --log file holds (tables with odd counts and statuses, binary
    junk, no table), inspect compares or fails with one EdgekitError, never a traceback."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from edgekit.errors import EdgekitError
    from edgekit.inspect_model import inspect_model

    row = st.tuples(
        st.sampled_from(["CONV_2D", "SOFTMAX", "X", "conv", ""]),
        st.one_of(st.integers(-5, 10**12), st.text(max_size=4)),
        st.text(max_size=30),
    ).map(lambda r: f"{r[0]:<31}{r[1]!s:<11}{r[2]}")
    text = st.builds(
        lambda head, rows, junk: head + "\n".join(rows) + junk,
        st.sampled_from(["", "Edge TPU Compiler version 16.0.384591198\n",
                         "Operator                       Count      Status\n\n"]),
        st.lists(row, max_size=8),
        st.text(max_size=40),
    )  # fmt: skip
    cpu = coral_dir / f"{V1}.tflite"
    log = tmp_path / "x.log"

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(text)
    def check(t):
        log.write_bytes(t.encode("utf-8", "surrogatepass"))
        try:
            c = inspect_model(cpu, log=log)["comparison"]
        except EdgekitError:
            return
        assert c["agree"] in (True, False, None)

    check()


def test_all_agree_says_so_without_an_empty_table(coral_dir):
    """Every op on the Edge TPU as predicted printed the '#  op  predicted  actual' header over
    no rows (convert's report too): it read like a table that failed to print."""
    res = _run(coral_dir / f"{V1}.tflite", "--compiled", coral_dir / f"{V1}_edgetpu.tflite")
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    i = next(i for i, x in enumerate(lines) if x.startswith("Compiler vs prediction"))
    assert lines[i + 1] == "  all 31 ops on the Edge TPU, as predicted"
    assert not any(x.split() == ["#", "op", "predicted", "actual"] for x in lines)


def test_a_compiled_model_alone_says_what_its_counts_cover(coral_dir, tmp_path):
    """Without its CPU model beside it, a compiled model's weights are inside the Edge TPU
    executable: inspect printed "Params 0    MACs 0" for a MobileNet as if it had none."""
    alone = tmp_path / f"{V1}_edgetpu.tflite"
    shutil.copy(coral_dir / f"{V1}_edgetpu.tflite", alone)
    res = _run(alone)
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if x.startswith("Params"))
    assert line.split()[:4] == ["Params", "0", "MACs", "0"]
    assert "ops outside the Edge TPU code only" in line
    assert json.loads(_run(alone, "--json").stdout)["params_scope"] == "outside_edgetpu_code"
    beside = _run(coral_dir / f"{V1}_edgetpu.tflite")  # its CPU model is there: the network
    line = next(x for x in beside.output.splitlines() if x.startswith("Params"))
    assert line.split()[1] != "0" and "outside" not in line
    assert "params_scope" not in json.loads(_run(coral_dir / f"{V1}_edgetpu.tflite",
                                                 "--json").stdout)  # fmt: skip
