"""Models that parse but cannot be meant: no operators, no inputs (issue 9: "a model with zero
operators: bench reports 0 ms, serve blames the Edge TPU")."""

from __future__ import annotations

import json
import shutil

import pytest

from .conftest import CORAL, TINY, cli, rewrite_tflite


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


def _output_at(shape_rank: int):
    """The graph's output moved to the last 4-d intermediate tensor with more than one
    dimension above 1 (``shape_rank`` 2: the [1, 4, 4, 256] feature map, what a segmentation
    model hands back) or with one (1: the [1, 1, 1, 1001] logits before the softmax)."""

    def edit(model, S):
        sg = model.subgraphs[0]
        shapes = {op.outputs[0]: [int(d) for d in sg.tensors[op.outputs[0]].shape]
                  for op in sg.operators}  # fmt: skip
        picked = [t for t, s in shapes.items()
                  if len(s) == 4 and (sum(d > 1 for d in s) > 1) == (shape_rank > 1)]  # fmt: skip
        sg.outputs = [picked[-1]]

    return edit


def test_a_model_whose_output_is_not_class_scores(tmp_path, photo):
    """deeplabv3 on parrot.jpg gave `84368 (84368) 3.000` (scores > 1) in classify and in
    detect --classify: a map is refused in one line; logits are reported with a warning."""
    seg = tmp_path / "map.tflite"
    seg.write_bytes(rewrite_tflite(TINY.read_bytes(), _output_at(2)))
    r = cli("classify", seg, photo, "-d", "cpu")
    assert r.exit_code == 1, r.output
    assert "output [1, 4, 4, 256] (a map or rows) is not one score per class" in r.output
    emb = tmp_path / "embedding.tflite"
    emb.write_bytes(rewrite_tflite(TINY.read_bytes(), _output_at(1)))
    r = cli("classify", emb, photo, "-d", "cpu", "--json")
    assert r.exit_code == 0, r.output
    assert "not 0..1 (no softmax" in r.stderr and "raw output values" in r.stderr
    assert json.loads(r.stdout)[0]["raw_scores"] is True  # the JSON says it too
    r = cli("classify", TINY, photo, "-d", "cpu")  # a softmax output: no warning
    assert r.exit_code == 0 and "spans" not in r.stderr
    r = cli("classify", TINY, photo, "-d", "cpu", "--json")
    assert r.exit_code == 0 and "raw_scores" not in json.loads(r.stdout)[0]


def test_a_float_output_without_softmax_is_said_once(tmp_path, photo):
    """A float .tflite whose output is logits (no softmax): scores above 1 are shown only with
    the warning that they are raw output values (the int8 check above reads the output's
    quantization range; a float output has none, so the first frame decides)."""
    from edgekit.host.tfenv import load_tensorflow

    tf = load_tensorflow()
    inp = tf.keras.Input((8, 8, 3), batch_size=1)
    x = tf.keras.layers.GlobalAveragePooling2D()(inp)
    out = tf.keras.layers.Dense(3, bias_initializer=tf.keras.initializers.Constant(5.0))(x)
    path = tmp_path / "logits.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(tf.keras.Model(inp, out)).convert())
    r = cli("classify", path, photo, photo, "-d", "cpu", "--json")
    assert r.exit_code == 0, r.output
    assert r.stderr.count("raw output values") == 1 and "float output reached" in r.stderr
    out = json.loads(r.stdout)  # said in the JSON too, float32 scores to 4 decimals
    assert [o["raw_scores"] for o in out] == [True, True]
    assert all(c["score"] == round(c["score"], 4) for o in out for c in o["classes"])


@pytest.mark.parametrize("name, says", [
    ("model.tflite", "a CPU twin X.tflite is looked for only beside an X_edgetpu.tflite"),
    ("model_edgetpu.tflite", "no CPU twin model.tflite beside it"),
])  # fmt: skip
def test_a_compiled_model_without_twin_names_the_twin_it_looked_for(tmp_path, photo, name, says):
    """A compiled model renamed without _edgetpu said "no CPU twin model.tflite beside it", the
    very file it was given."""
    shutil.copy(CORAL / "mobilenet_v1_0.25_128_quant_edgetpu.tflite", tmp_path / name)
    r = cli("classify", tmp_path / name, photo, "-d", "cpu")
    assert r.exit_code == 1 and f"({says})" in r.output, r.output


@pytest.mark.parametrize("command", ["classify", "bench", "detect"])
def test_a_tensor_name_that_is_not_utf8_is_one_line(tmp_path, photo, command):
    """One damaged byte in a tensor's name: the interpreter loads the model, then raised
    UnicodeDecodeError (a traceback) when edgekit asked for the tensor details (fuzzing found
    it: 9 of 150 random byte flips of Coral's MobileNet)."""
    data = TINY.read_bytes()
    name = b"MobilenetV1/Predictions/Reshape_1"
    assert name in data
    bad = tmp_path / "m.tflite"
    bad.write_bytes(data.replace(name, name[:5] + b"\xff" + name[6:]))
    extra = ["-n", "1"] if command == "bench" else [photo]
    r = cli(command, bad, *extra, "-d", "cpu")
    assert r.exit_code == 1, r.output
    assert r.output.strip().splitlines()[-1] == (
        f"Error: {bad}: a tensor name in it is not UTF-8 text (invalid start byte at byte 5 of "
        "the name): the file is damaged; copy it again, or export the model again")
