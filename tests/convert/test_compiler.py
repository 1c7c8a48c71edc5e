"""edgetpu_compiler boundary: the runner and parser against the fake compiler, which reproduces
the documented command line, stdout, .log and failure modes; plus the CLI's handling of each."""

from __future__ import annotations

import json
import os

import pytest

from edgekit.errors import EdgekitError
from edgekit.host import compiler

from .conftest import FAKE_COMPILER, assert_clean_failure, convert_cli

# Real v16 output of a partly mapped model (layout as published in Coral's issue tracker).
REAL_PARTIAL = """Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 3133 ms.

Input model: best-int8.tflite
Input size: 6.00MiB
Output model: best-int8_edgetpu.tflite
Output size: 6.47MiB
On-chip memory used for caching model parameters: 5.90MiB
On-chip memory remaining for caching model parameters: 1.16MiB
Off-chip memory used for streaming uncached model parameters: 41.75KiB
Number of Edge TPU subgraphs: 1
Total number of operations: 246
Operation log: best-int8_edgetpu.log

{NOT_ALL}
Number of operations that will run on Edge TPU: 240
Number of operations that will run on CPU: 6

Operator                       Count      Status

ADD                            3          Mapped to Edge TPU
DEQUANTIZE                     2          Operation is working on an unsupported data type
CONCATENATION                  1          More than one subgraph is not supported
CONV_2D                        236        Mapped to Edge TPU
LOGISTIC                       1          {UNSPECIFIED}
RESHAPE                        3          Operation version not supported
Compilation child process completed within timeout period.
Compilation succeeded!
""".format(
    NOT_ALL="Model successfully compiled but not all operations are supported by the Edge TPU. "
    "A percentage of the model will instead run on the CPU, which is slower. If possible, "
    "consider updating your model to use only operations supported by the Edge TPU. "
    "For details, visit g.co/coral/model-reqs.",
    UNSPECIFIED="Operation is otherwise supported, but not mapped due to some unspecified "
    "limitation",
)


def test_parse_real_output():
    r = compiler.parse_output(REAL_PARTIAL)
    assert r.success and r.version == "16.0.384591198" and r.compile_ms == 3133
    assert (r.ops_total, r.ops_tpu, r.ops_cpu, r.subgraphs) == (246, 240, 6, 1)
    assert r.on_chip_bytes == round(5.90 * 2**20) and r.off_chip_bytes == round(41.75 * 1024)
    assert r.on_chip_remaining_bytes == round(1.16 * 2**20)
    assert len(r.operators) == 6
    assert r.operators[1] == {
        "operator": "DEQUANTIZE",
        "count": 2,
        "status": "Operation is working on an unsupported data type",
    }
    assert set(r.cpu_reasons) == {"DEQUANTIZE", "CONCATENATION", "LOGISTIC", "RESHAPE"}


def test_sizes():
    assert compiler.to_bytes("0.00B") == 0
    assert compiler.to_bytes("3.00MiB") == 3 * 2**20
    with pytest.raises(ValueError):
        compiler.to_bytes("3 MB")


@pytest.fixture(scope="module")
def int8_model(trained, apple_banana_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("c") / "b"
    r = convert_cli(trained["h5"], out, apple_banana_dir, "--no-compile", num_calib=30)
    assert r.exit_code == 0, r.stderr
    return out / "tiny_int8.tflite"


def test_runner_passes_flags_and_reads_log(int8_model, tmp_path, monkeypatch):
    args = tmp_path / "args.txt"
    monkeypatch.setenv("FAKE_EDGETPU_ARGS_FILE", str(args))
    monkeypatch.setenv("FAKE_EDGETPU_MODE", "partial")
    monkeypatch.setenv("FAKE_EDGETPU_CPU_OP", "MEAN")
    rep = compiler.compile_model(
        FAKE_COMPILER, int8_model, tmp_path, min_runtime=13, segments=1, timeout=30
    )
    argv = args.read_text().split()
    assert argv[:3] == ["-s", "-o", str(tmp_path)] and argv[-1] == str(int8_model)
    assert argv[argv.index("-m") + 1] == "13" and argv[argv.index("-t") + 1] == "30"
    assert "-n" not in argv  # one segment: the default, not passed
    assert rep.output == "tiny_int8_edgetpu.tflite" and rep.log == "tiny_int8_edgetpu.log"
    assert rep.ops_cpu == 4 and rep.ops_tpu + rep.ops_cpu == rep.ops_total
    mean = [r for r in rep.operators if r["operator"] == "MEAN"]
    assert mean and mean[0]["status"].startswith("Operation is otherwise supported")
    assert any(r["status"] == "More than one subgraph is not supported" for r in rep.operators)


def test_cli_partial_mapping_warns(trained, apple_banana_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_EDGETPU_MODE", "partial")
    r = convert_cli(
        trained["h5"],
        tmp_path / "o",
        apple_banana_dir,
        "--compiler",
        FAKE_COMPILER,
        "--json",
        num_calib=30,
    )
    assert r.exit_code == 0, r.stderr
    assert "1 of 9 ops will run on the CPU" in r.stderr and "QUANTIZE" in r.stderr
    rep = json.loads(r.stdout)["manifest"]["compile"]["report"]
    assert rep["ops_cpu"] == 1
    # what the Pi needs: edgetpu_compiler 16 without -m -> Edge TPU runtime 14
    comp = json.loads(r.stdout)["manifest"]["compile"]
    assert comp["compiler_version"] == rep["version"] and rep["version"].startswith("16.")
    assert (comp["min_runtime"], comp["required_runtime"]) == (None, 14)
    # the bundle keeps what the compiler did beside the prediction (its log's rows)
    c = json.loads(r.stdout)["manifest"]["compile"]["comparison"]
    assert (c["predicted_cpu_ops"], c["actual_cpu_ops"], c["agree"]) == (0, 1, False)
    row = next(x for x in c["summary"] if x["status"] != "Mapped to Edge TPU")
    assert (row["operator"], row["predicted"], row["actual"]) == ("QUANTIZE", 0, 1)
    m = json.loads((tmp_path / "o" / "edgekit.json").read_text())
    assert m["compile"]["comparison"] == c
    # the predicted latency, from the compiled model placed as the compiler did (1 CPU op)
    lat = m["compile"]["latency"]
    assert lat == comp["latency"] and lat["source"] == "compiled" and lat["cpu_ops"] == 1
    assert lat["latency_ms"]["usb2"] >= lat["latency_ms"]["usb3"] > 0
    assert lat["parts_ms"]["usb3"]["cpu_ops"] > 0


def test_cli_prints_the_compiler_vs_prediction_comparison(
    trained, apple_banana_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv("FAKE_EDGETPU_MODE", "partial")
    r = convert_cli(trained["h5"], tmp_path / "o", apple_banana_dir, "--compiler", FAKE_COMPILER,
                    num_calib=30)  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert "Compiler vs prediction: prediction DISAGREES" in r.stdout
    assert "  latency predicted " in r.stdout and "per inference on a USB 3 Coral" in r.stdout
    assert any(ln.split()[:2] == ["!!", "QUANTIZE"] for ln in r.stdout.splitlines())


@pytest.mark.parametrize(
    "mode,needles",
    [
        ("not-quantized", ["not quantized"]),
        ("parse-error", ["could not be parsed", "version"]),
        ("internal-error", ["internal compiler error"]),
        ("crash", ["crashed", "SIGSEGV"]),
    ],
)
def test_compiler_failures(mode, needles, trained, apple_banana_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_EDGETPU_MODE", mode)
    r = convert_cli(trained["h5"], tmp_path / "o", apple_banana_dir, "--compiler", FAKE_COMPILER)
    line = assert_clean_failure(r, tmp_path, "edgetpu_compiler", *needles)
    assert "--no-compile" in line
    assert not (tmp_path / "o").exists()


def test_compiler_timeout_kills_it(int8_model, trained, apple_banana_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_EDGETPU_MODE", "hang")
    monkeypatch.setattr(compiler, "GRACE_S", 0.5)
    with pytest.raises(EdgekitError, match="timed out after 1 s"):
        compiler.compile_model(FAKE_COMPILER, int8_model, tmp_path, timeout=1)
    r = convert_cli(
        trained["h5"],
        tmp_path / "o",
        apple_banana_dir,
        "--compiler",
        FAKE_COMPILER,
        "--compile-timeout",
        1,
    )
    assert_clean_failure(r, tmp_path, "timed out", "--compile-timeout")
    assert not (tmp_path / "o").exists()
    # the hung process group was killed, not left behind
    out = os.popen("ps -eo args").read()
    assert "fake_edgetpu_compiler" not in out


def test_missing_compiler_still_writes_cpu_bundle(
    trained, apple_banana_dir, tmp_path, no_compiler_path
):
    assert compiler.find_compiler() is None
    r = convert_cli(trained["h5"], tmp_path / "o", apple_banana_dir)
    assert r.exit_code == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "edgetpu_compiler" in ln]
    assert len(lines) == 1 and "x86-64" in lines[0] and "edgetpu-compiler" in lines[0]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "edgekit.json",
        "labels.txt",  # found beside the model
        "tiny_int8.tflite",
    ]
    m = json.loads((tmp_path / "o" / "edgekit.json").read_text())
    assert m["models"]["edgetpu"] is None and m["compile"]["status"] == "compiler-missing"
    assert m["compile"]["prediction"]["cpu_ops"] == 0
    assert "predicted" in r.stdout


def test_no_compile_is_quiet(trained, apple_banana_dir, tmp_path, no_compiler_path):
    r = convert_cli(trained["h5"], tmp_path / "o", apple_banana_dir, "--no-compile", num_calib=120)
    assert r.exit_code == 0 and "edgetpu_compiler" not in r.stderr
    # not compiled: the latency is predicted from the int8 model's predicted mapping
    lat = json.loads((tmp_path / "o" / "edgekit.json").read_text())["compile"]["latency"]
    assert lat["source"] == "tflite" and set(lat["latency_ms"]) == {"usb3", "usb2", "pci"}
