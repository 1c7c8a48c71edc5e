"""Models that parse but cannot be meant: no operators, no inputs (issue 9: "a model with zero
operators: bench reports 0 ms, serve blames the Edge TPU")."""

from __future__ import annotations

import pytest

from .conftest import TINY, cli, rewrite_tflite


def _no_operators(model, S):
    sg = model.subgraphs[0]
    sg.operators = []
    sg.outputs = list(sg.inputs)  # the graph hands its input straight back


def _no_inputs(model, S):
    model.subgraphs[0].inputs = []


@pytest.fixture(scope="module")
def empty_models(tmp_path_factory):
    d = tmp_path_factory.mktemp("empty")
    data = TINY.read_bytes()
    (d / "no_ops.tflite").write_bytes(rewrite_tflite(data, _no_operators))
    (d / "no_inputs.tflite").write_bytes(rewrite_tflite(data, _no_inputs))
    return d


@pytest.mark.parametrize("command", ["bench", "classify"])
def test_zero_operators_said_plainly(command, empty_models, photo):
    args = ["--runs", "3"] if command == "bench" else [photo]
    r = cli(command, empty_models / "no_ops.tflite", *args, "-d", "cpu")
    assert r.exit_code == 1 and "the model has no operators" in r.output
    assert "Edge TPU" not in r.output.split("Error:")[-1] and " 0.00 ms" not in r.output


def test_zero_inputs_said_plainly(empty_models, photo):
    r = cli("classify", empty_models / "no_inputs.tflite", photo, "-d", "cpu")
    assert r.exit_code == 1 and "no input or no output" in r.output


def _nan_scale(model, S):
    sg = model.subgraphs[0]
    q = sg.tensors[sg.inputs[0]].quantization
    q.scale = [float("nan")]


def test_json_output_stays_json_with_a_nan_scale(tmp_path):
    import json

    p = tmp_path / "nan.tflite"
    p.write_bytes(rewrite_tflite(TINY.read_bytes(), _nan_scale))
    r = cli("inspect", p, "--json")

    def strict(name):
        raise ValueError(f"{name} is not JSON")

    report = json.loads(r.stdout if r.exit_code == 0 else "{}", parse_constant=strict)
    assert r.exit_code == 0 and report["inputs"][0]["quantization"]["scale"] == [None]
