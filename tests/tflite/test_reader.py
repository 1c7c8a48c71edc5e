"""edgekit.tflite against real files: Coral's models, TFLiteConverter output, the interpreter."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from edgekit.errors import EdgekitError
from edgekit.tflite import EDGETPU_CUSTOM_OP, read_model

CORAL_CPU = ("mobilenet_v1_0.25_128_quant.tflite", "mobilenet_v2_1.0_224_quant.tflite")


def _assert_matches_interpreter(path):
    """Each tensor: name, shape, signature, dtype, quantization as the TFLite runtime sees it."""
    from ai_edge_litert.interpreter import Interpreter

    info = read_model(path)
    details = Interpreter(model_path=str(path)).get_tensor_details()
    tensors = info.main.tensors
    assert len(details) == len(tensors)
    for d in details:
        t = tensors[d["index"]]
        assert t.name == d["name"]
        assert t.shape == tuple(d["shape"])
        assert (t.shape_signature or t.shape) == tuple(d["shape_signature"])
        assert t.dtype == np.dtype(d["dtype"]).name
        q = d["quantization_parameters"]
        if len(q["scales"]) == 0:
            assert t.quantization is None
        else:
            np.testing.assert_array_equal(np.float32(t.quantization.scale), q["scales"])
            assert t.quantization.zero_point == tuple(int(z) for z in q["zero_points"])
            assert t.quantization.quantized_dimension == q["quantized_dimension"]
    return info


@pytest.mark.parametrize("name", CORAL_CPU)
def test_coral_models_match_interpreter(coral_dir, name):
    info = _assert_matches_interpreter(coral_dir / name)
    assert info.version == 3
    assert not info.is_edgetpu_compiled
    assert info.inputs[0].dtype == "uint8" and info.inputs[0].shape[0] == 1
    assert info.outputs[0].shape == (1, 1001)
    assert info.float_tensors() == () and info.dynamic_tensors() == ()
    assert info.custom_ops() == ()
    assert info.size_bytes == (coral_dir / name).stat().st_size


def test_coral_op_counts_and_options(coral_dir):
    v1 = read_model(coral_dir / CORAL_CPU[0])
    assert v1.op_counts() == {
        "CONV_2D": 15, "DEPTHWISE_CONV_2D": 13, "AVERAGE_POOL_2D": 1, "RESHAPE": 1, "SOFTMAX": 1,
    }  # fmt: skip
    first = v1.main.operators[0]
    assert first.opcode == first.builtin == "CONV_2D" and not first.is_custom
    assert first.options["stride_w"] == 2 and first.options["padding"] == "SAME"
    assert first.options["fused_activation_function"] == "RELU6"
    assert v1.main.operators[-1].options == {"beta": 1.0}
    v2 = read_model(coral_dir / CORAL_CPU[1])
    assert v2.op_counts()["ADD"] == 10 and v2.op_counts()["CONV_2D"] == 36


def test_constant_data_matches_interpreter(coral_dir):
    from ai_edge_litert.interpreter import Interpreter

    path = coral_dir / CORAL_CPU[0]
    info = read_model(path)
    interp = Interpreter(model_path=str(path))
    weights = info.main.tensors[info.main.operators[0].inputs[1]]
    assert weights.is_constant and weights.dtype == "uint8" and weights.nbytes == 8 * 3 * 3 * 3
    np.testing.assert_array_equal(info.constant(weights), interp.get_tensor(weights.index))
    assert info.buffers[weights.buffer].size == weights.nbytes
    assert not info.inputs[0].is_constant


@pytest.mark.parametrize("name", CORAL_CPU)
def test_compiled_twin_is_one_custom_op(coral_dir, name):
    twin = read_model(coral_dir / name.replace(".tflite", "_edgetpu.tflite"))
    assert twin.is_edgetpu_compiled
    assert twin.op_counts() == {EDGETPU_CUSTOM_OP: 1}
    (op,) = twin.custom_ops()
    assert op.is_custom and op.builtin == "CUSTOM" and op.opcode == EDGETPU_CUSTOM_OP
    assert op.options == {} and len(op.custom_options) > 100_000  # the compiled executable
    cpu = read_model(coral_dir / name)
    assert [t.shape for t in twin.inputs] == [t.shape for t in cpu.inputs]
    assert twin.outputs[0].quantization == cpu.outputs[0].quantization


@pytest.mark.parametrize("kind", ["int8", "float", "leaky"])
def test_converted_keras_models_match_interpreter(tiny_models, kind):
    info = _assert_matches_interpreter(tiny_models[kind])
    conv = next(op for op in info.main.operators if op.opcode == "CONV_2D")
    w = info.main.tensors[conv.inputs[1]]
    if kind == "float":
        assert w.dtype == "float32" and w.quantization is None
        assert len(info.float_tensors()) > 0
    else:
        # per-channel int8 weights along the output-channel axis, uint8 model I/O
        assert w.dtype == "int8" and w.quantization.per_channel
        assert w.quantization.quantized_dimension == 0
        assert len(w.quantization.scale) == w.shape[0]
        assert info.inputs[0].dtype == info.outputs[0].dtype == "uint8"
        assert info.float_tensors() == ()


def test_associated_files(coral_dir):
    files = read_model(coral_dir / CORAL_CPU[0]).associated_files()
    labels = files["imagenet_labels.txt"].decode().splitlines()
    assert len(labels) == 1001 and labels[0] == "background"
    assert read_model(coral_dir / CORAL_CPU[0]).metadata["TFLITE_METADATA"]


def test_bytes_input_and_identity(coral_dir):
    data = (coral_dir / CORAL_CPU[0]).read_bytes()
    info = read_model(data)
    assert info.path == "<bytes>" and info.size_bytes == len(data)
    assert info.main.operators == read_model(coral_dir / CORAL_CPU[0]).main.operators


def test_dynamic_batch_signature(tiny_models):
    info = read_model(tiny_models["dynamic"])
    assert info.inputs[0].shape_signature[0] == -1 and info.inputs[0].shape[0] == 1
    assert info.inputs[0] in info.dynamic_tensors()


@pytest.mark.parametrize(
    "content, words",
    [
        (None, "no such file"),
        (b"", "empty"),
        (b"hello world, not a model", "TFL3"),
        (b"\x10\x00\x00\x00TFL3", "corrupt"),
        (b"\xff\xff\xff\x7fTFL3" + b"\x00" * 64, "corrupt"),
    ],
)
def test_bad_files(tmp_path, content, words):
    p = tmp_path / "model.tflite"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(EdgekitError) as e:
        read_model(p)
    assert str(e.value).startswith(f"{p}: not a TFLite model") and words in str(e.value)
    assert "\n" not in str(e.value)


def test_directory_is_rejected(tmp_path):
    with pytest.raises(EdgekitError, match="directory"):
        read_model(tmp_path)


def test_truncated_and_corrupted_files_raise_edgekit_error_only(coral_dir):
    """Fuzz: every truncation point class and random byte flips give EdgekitError or a model."""
    data = (coral_dir / CORAL_CPU[0]).read_bytes()
    # Coral appends a zip of associated files (labels) after the flatbuffer: cutting that off
    # leaves a valid model, so only cut inside the flatbuffer.
    end = data.find(b"PK\x03\x04")
    assert end > 400_000
    rng = np.random.default_rng(1)
    cuts = list(range(0, 300, 7)) + sorted(rng.integers(300, end, 60).tolist())
    for n in cuts:
        with pytest.raises(EdgekitError):
            read_model(data[:n])
    # flips inside the flatbuffer metadata (the first and last KiB hold tables and vtables)
    head_tail = np.r_[np.arange(8, 1024), np.arange(len(data) - 4096, len(data))]
    for _ in range(300):
        buf = bytearray(data)
        for pos in rng.choice(head_tail, size=4, replace=False):
            buf[pos] = int(rng.integers(0, 256))
        try:
            read_model(bytes(buf))
        except EdgekitError:
            pass


def test_import_does_not_load_tensorflow():
    code = (
        "import sys, edgekit.tflite, edgekit.edgetpu.mapping; "
        "print(sorted(m for m in ('tensorflow', 'keras', 'numpy', 'click') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
