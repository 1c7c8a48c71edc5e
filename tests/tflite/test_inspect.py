"""`edgekit inspect` end to end through the click CLI: human and --json output, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from edgekit.cli import main
from edgekit.inspect_model import inspect_model

V1 = "mobilenet_v1_0.25_128_quant"
V2 = "mobilenet_v2_1.0_224_quant"


def _run(*args):
    return CliRunner().invoke(main, ["inspect", *map(str, args)])


def _json(*args):
    r = _run(*args, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_coral_json_report(coral_dir):
    d = _json(coral_dir / f"{V1}.tflite")
    assert d["model"].endswith(f"{V1}.tflite") and d["format"] == "tflite"
    assert d["size_bytes"] == (coral_dir / f"{V1}.tflite").stat().st_size
    assert d["inputs"][0]["shape"] == [1, 128, 128, 3] and d["inputs"][0]["dtype"] == "uint8"
    assert d["inputs"][0]["quantization"] == {
        "scale": [0.0078125], "zero_point": [128], "quantized_dimension": 0,
    }  # fmt: skip
    assert d["outputs"][0]["shape"] == [1, 1001]
    assert d["op_counts"] == {
        "CONV_2D": 15, "DEPTHWISE_CONV_2D": 13, "AVERAGE_POOL_2D": 1, "RESHAPE": 1, "SOFTMAX": 1,
    }  # fmt: skip
    assert d["compiled"] is False
    assert d["edgetpu"]["tpu_ops"] == 31 and d["edgetpu"]["cpu_ops"] == 0
    assert {"index", "op", "version", "on_tpu", "status", "reason"} <= set(d["edgetpu"]["ops"][0])
    assert len(d["tensors"]) == 89 and d["dtype_counts"]["uint8"]["tensors"] == 60


@pytest.mark.parametrize(
    "stem, params, macs, published_params, published_macs",
    [(V1, 467_593, 13_570_304, 0.47e6, 14e6), (V2, 3_489_097, 300_775_552, 3.47e6, 300e6)],
)
def test_params_and_macs_match_published_mobilenet_figures(
    coral_dir, stem, params, macs, published_params, published_macs
):
    """TensorFlow's model tables: v1 0.25/128 0.47 M params, 14 M MACs; v2 1.0/224 3.47 M, 300 M.
    Weights include the 1001-class head; MACs count conv/depthwise/FC multiply-adds only."""
    d = inspect_model(coral_dir / f"{stem}.tflite")
    assert (d["params"], d["macs"]) == (params, macs)
    assert abs(d["params"] / published_params - 1) < 0.02
    assert abs(d["macs"] / published_macs - 1) < 0.04


def test_compiled_twin_with_cpu_model_beside(coral_dir):
    d = _json(coral_dir / f"{V2}_edgetpu.tflite")
    assert d["compiled"] is True and d["op_counts"] == {"edgetpu-custom-op": 1}
    c = d["edgetpu_custom_op"]
    assert c["cpu_op_counts"] == {} and c["cpu_model"].endswith(f"{V2}.tflite")
    assert c["tpu_op_counts"] == {
        "CONV_2D": 36, "DEPTHWISE_CONV_2D": 17, "ADD": 10, "AVERAGE_POOL_2D": 1, "RESHAPE": 1,
        "SOFTMAX": 1,
    }  # fmt: skip
    assert c["custom_ops"][0]["inputs"] == ["input"]
    assert c["custom_ops"][0]["executable_bytes"] > 3_000_000
    # the network's weights are inside the custom op: counted from the CPU model
    assert d["params"] == 3_489_097
    assert (d["edgetpu"]["tpu_ops"], d["edgetpu"]["cpu_ops"], d["edgetpu"]["compiled"]) == (
        1, 0, True)  # fmt: skip
    (op,) = d["edgetpu"]["ops"]
    assert (op["op"], op["on_tpu"], op["reason"]) == (
        "edgetpu-custom-op", True, "compiled into the Edge TPU custom op")  # fmt: skip

    text = _run(coral_dir / f"{V2}_edgetpu.tflite").output
    assert "compiled for the Edge TPU" in text
    assert "ops inside the Edge TPU custom op" in text and "CONV_2D x36" in text
    assert "ops left on the CPU: none" in text


def test_compiled_twin_alone(coral_dir, tmp_path):
    alone = tmp_path / f"{V1}_edgetpu.tflite"
    shutil.copy(coral_dir / alone.name, alone)
    d = _json(alone)
    assert d["edgetpu_custom_op"]["cpu_model"] is None
    assert d["edgetpu_custom_op"]["tpu_op_counts"] is None
    assert "put the CPU model beside it" in _run(alone).output


def test_human_report_of_partly_mapped_model(tiny_models):
    r = _run(tiny_models["leaky"])
    assert r.exit_code == 0
    lines = r.output.splitlines()
    assert any(ln.startswith("Edge TPU mapping (predicted): 2 op(s)") for ln in lines)
    leaky = next(ln for ln in lines if ln.split()[:3] == ["2", "LEAKY_RELU", "CPU"])
    assert "Operation not supported" in leaky
    after = [ln for ln in lines if "More than one subgraph" in ln and "#2 LEAKY_RELU" in ln]
    assert len(after) == 4
    assert any(ln.split()[:2] == ["LEAKY_RELU", "1"] for ln in lines)  # the summary table
    assert any("Fix suggestions" in ln for ln in lines) and any("+5" in ln for ln in lines)
    header = next(ln for ln in lines if ln.strip().startswith("#"))
    # aligned: the reason column starts at the same place on every row
    col = header.index("reason")
    assert all(ln[col - 2 : col] == "  " for ln in lines if ln.startswith("     ") and "Edge" in ln)
    assert "Params" in r.output and "Tensors by dtype" in r.output


def test_json_of_converted_int8_model(tiny_models):
    d = _json(tiny_models["int8"])
    assert d["edgetpu"]["cpu_ops"] == 0 and d["edgetpu"]["tpu_ops"] == 12
    conv = [t for t in d["tensors"] if t["constant"] and t["dtype"] == "int8"]
    assert conv and all(len(t["quantization"]["scale"]) == t["shape"][0] for t in conv if
                        len(t["shape"]) == 4 and t["shape"][0] > 1)  # fmt: skip
    # conv 3x3x3->8 (+8), dw 3x3x8 (+8), 1x1 8->8 (+8), 3x3 8->8 (+8), dense 16->4; the
    # untrained dense bias is all zeros and the converter drops it (FULLY_CONNECTED input -1)
    assert d["params"] == 216 + 8 + 72 + 8 + 64 + 8 + 576 + 8 + 64
    assert d["macs"] == 16 * 16 * 8 * (27 + 9 + 8 + 72) + 4 * 16


def test_tflite_inspection_does_not_import_tensorflow(coral_dir):
    code = (
        "import sys, json; from click.testing import CliRunner; from edgekit.cli import main; "
        f"r = CliRunner().invoke(main, ['inspect', {str(coral_dir / (V1 + '.tflite'))!r}, "
        "'--json']); assert r.exit_code == 0, r.output; json.loads(r.output); "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


@pytest.fixture(scope="session")
def keras_file(tmp_path_factory):
    import keras
    from keras import layers

    inp = keras.Input(shape=(16, 16, 3), batch_size=1)
    x = layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, layers.Dense(2)(x))
    path = tmp_path_factory.mktemp("keras") / "tiny.keras"
    model.save(path)
    return path


def test_keras_model(keras_file):
    d = _json(keras_file)
    assert d["format"] == "keras" and d["model"] == str(keras_file)
    assert d["params"] == (3 * 3 * 3 * 4 + 4) + (4 * 2 + 2)
    assert d["macs"] == 16 * 16 * 4 * 27 + 4 * 2
    types = [row["type"] for row in d["layers"]]
    assert "Conv2D" in types and "Dense" in types
    text = _run(keras_file).output
    assert "Conv2D" in text and "Params   122" in text and "MACs" in text


@pytest.mark.parametrize(
    "name, content, words",
    [
        ("missing.tflite", None, "no such file"),
        ("notes.tflite", b"just some text, definitely not a flatbuffer", "not a TFLite model"),
        ("empty.tflite", b"", "not a TFLite model"),
        ("weights.onnx", b"\x08\x07", "unknown model format '.onnx'"),
        ("folder", "dir", "not a SavedModel"),
    ],
)
def test_bad_input_one_line_error(tmp_path, name, content, words):
    p = tmp_path / name
    if content == "dir":
        p.mkdir()
    elif content is not None:
        p.write_bytes(content)
    r = _run(p)
    assert r.exit_code == 1
    assert words in r.output and r.output.startswith("Error: ")
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output


def test_corrupted_models_never_crash_inspect(tiny_models):
    """Byte flips that still parse must give a report or an EdgekitError, never a traceback."""
    import numpy as np

    from edgekit.errors import EdgekitError
    from edgekit.inspect_model import format_report, inspect_tflite
    from edgekit.tflite import read_model

    data = tiny_models["limits"].read_bytes()
    rng = np.random.default_rng(7)
    parsed = 0
    for _ in range(400):
        buf = bytearray(data)
        for pos in rng.integers(8, len(buf), size=int(rng.integers(1, 6))):
            buf[pos] = int(rng.integers(0, 256))
        try:
            format_report(inspect_tflite(read_model(bytes(buf))))
            parsed += 1
        except EdgekitError:
            pass
    assert parsed > 50  # most flips hit weights and names: those models still inspect
