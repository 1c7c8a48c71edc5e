"""Co-compilation facts: the compiler's stdout for several models parsed model by model (the
format of compiler 16's real output, as google-coral/edgetpu issue 458 shows it), the caching
that real co-compiled pairs record in their executables (../shared/data/coral/cocompilation,
Google's test data; skipped when absent) and `inspect --with`."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from edgekit.cli import main
from edgekit.edgetpu.cocompile import caching, parse_reports, predict_together
from edgekit.edgetpu.memory import ON_CHIP_BYTES
from edgekit.tflite import read_model
from tests.detect.conftest import shared

ROOT = Path(__file__).resolve().parents[2]
CORAL = ROOT / "tests" / "data" / "coral"

# edgetpu_compiler 16 on two models (the block layout of google-coral/edgetpu issue 458).
TWO = """Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Models compiled successfully in 524 ms.

Input model: temp_models/1.tflite
Input size: 1.91MiB
Output model: out/1_edgetpu.tflite
Output size: 2.52MiB
On-chip memory used for caching model parameters: 2.27MiB
On-chip memory remaining for caching model parameters: 1.07MiB
Off-chip memory used for streaming uncached model parameters: 0.00B
Number of Edge TPU subgraphs: 1
Total number of operations: 57
Operation log: out/1_edgetpu.log
See the operation log file for individual operation details.

Input model: temp_models/2.tflite
Input size: 1.87MiB
Output model: out/2_edgetpu.tflite
Output size: 2.06MiB
On-chip memory used for caching model parameters: 2.00MiB
On-chip memory remaining for caching model parameters: 1.07MiB
Off-chip memory used for streaming uncached model parameters: 158.06KiB
Number of Edge TPU subgraphs: 1
Total number of operations: 6
Operation log: out/2_edgetpu.log
See the operation log file for individual operation details.
Compilation child process completed within timeout period.
Compilation succeeded!
"""


def test_stdout_of_two_models_parses_model_by_model():
    a, b = parse_reports(TWO)
    assert (a.output, b.output) == ("out/1_edgetpu.tflite", "out/2_edgetpu.tflite")
    assert a.on_chip_bytes == round(2.27 * 2**20) and a.off_chip_bytes == 0
    assert b.on_chip_bytes == round(2.00 * 2**20) and b.off_chip_bytes == round(158.06 * 1024)
    assert a.on_chip_remaining_bytes == b.on_chip_remaining_bytes == round(1.07 * 2**20)
    assert (a.ops_total, b.ops_total) == (57, 6) and a.ops_cpu == b.ops_cpu == 0
    assert a.success and b.success and a.compile_ms == b.compile_ms == 524
    assert a.version == b.version == "16.0.384591198"
    assert a.log == "out/1_edgetpu.log"
    # one model: the singular header, same parser
    (one,) = parse_reports(TWO.split("\nInput model: temp_models/2")[0].replace("Models", "Model")
                           + "\nCompilation succeeded!\n")  # fmt: skip
    assert one.on_chip_bytes == a.on_chip_bytes and one.compile_ms == 524 and one.success


def test_real_cocompiled_pairs_share_a_caching_token_and_split_the_cache():
    d = shared("coral", "cocompilation")
    c = {p.name.replace("_edgetpu.tflite", ""): caching(read_model(p)) for p in d.glob("*.tflite")}
    small = caching(read_model(CORAL / "mobilenet_v1_0.25_128_quant_edgetpu.tflite"))
    pair = (c["mobilenet_v1_0.25_128_quant_cocompiled_with_mobilenet_v1_0.5_160_quant"],
            c["mobilenet_v1_0.5_160_quant_cocompiled_with_mobilenet_v1_0.25_128_quant"])
    four = (c["mobilenet_v1_0.25_128_quant_cocompiled_with_3quant"],
            c["mobilenet_v1_0.5_160_quant_cocompiled_with_3quant"])  # fmt: skip
    for x, y in (pair, four):
        assert len(x["tokens"]) == 1 and x["tokens"] == y["tokens"]  # compiled together
    assert pair[0]["tokens"] != four[0]["tokens"] != small["tokens"]
    # two small models fit: the 0.25 model keeps exactly what it had alone, nothing streams
    assert pair[0] | {"tokens": None} == small | {"tokens": None}
    assert small == {"on_chip_bytes": 566912, "off_chip_bytes": 0, "tokens": small["tokens"]}
    assert pair[1]["on_chip_bytes"] == 1473280 and pair[1]["off_chip_bytes"] == 0
    # with the 0.75 and 1.0 models too (above the cache), both small ones stream a part; their
    # totals are unchanged
    for part, whole in zip(four, pair):
        assert 0 < part["off_chip_bytes"] < part["on_chip_bytes"] + part["off_chip_bytes"]
        assert part["on_chip_bytes"] + part["off_chip_bytes"] == whole["on_chip_bytes"]


def test_inspect_with_says_whether_compiled_models_share_the_cache():
    d = shared("coral", "cocompilation")
    a = d / "mobilenet_v1_0.25_128_quant_cocompiled_with_mobilenet_v1_0.5_160_quant_edgetpu.tflite"
    b = d / "mobilenet_v1_0.5_160_quant_cocompiled_with_mobilenet_v1_0.25_128_quant_edgetpu.tflite"
    r = CliRunner().invoke(main, ["inspect", str(a), "--with", str(b), "--json"])
    out = json.loads(r.stdout)
    assert out["cocompiled_together"] is True and out["fits"] and out["streams"] == []
    alone = CORAL / "mobilenet_v1_0.25_128_quant_edgetpu.tflite"
    r = CliRunner().invoke(main, ["inspect", str(alone), "--with", str(b)])
    assert r.exit_code == 0 and "Compiled together: no" in r.stdout


def test_inspect_with_predicts_the_pair_without_the_compiler(tmp_path):
    v2 = CORAL / "mobilenet_v2_1.0_224_quant.tflite"
    v1 = CORAL / "mobilenet_v1_0.25_128_quant.tflite"
    r = CliRunner().invoke(main, ["inspect", str(v2), "--with", str(v1), "--json"])
    out = json.loads(r.stdout)
    assert out["fits"] and out["streams"] == [] and out["streamed_bytes"] == 0
    assert [m["model"] for m in out["models"]] == [v2.name, v1.name]
    other = tmp_path / "other.tflite"  # another model of v2's size
    other.write_bytes(v2.read_bytes())
    r = CliRunner().invoke(main, ["inspect", str(v2), "--with", str(other), "--with", str(v1)])
    assert r.exit_code == 0, r.output
    assert "Do not fit together" in r.stdout and f"from {v1.name}" in r.stdout
    # one model twice is a mistake (the compiler cannot take it twice): one line, exit 1
    r = CliRunner().invoke(main, ["inspect", str(v2), "--with", str(v1), "--with", str(v2)])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert r.stderr.strip() == (f"Error: {v2} is given twice; --with takes the other models "
                                "that share the Edge TPU")  # fmt: skip


def test_in_order_allotment():
    mib = 2**20
    r = predict_together([("det", 5 * mib), ("cls", 4 * mib)])
    assert not r["fits"] and r["streams"] == ["cls"]
    assert r["models"][0]["off_chip_bytes"] == 0
    assert r["models"][1]["on_chip_bytes"] == ON_CHIP_BYTES - 5 * mib
    assert r["streamed_bytes"] == 9 * mib - ON_CHIP_BYTES
    r = predict_together([("cls", 4 * mib), ("det", 5 * mib)])
    assert r["streams"] == ["det"]  # the order decides which one streams


def test_inspect_with_two_compiled_models_of_the_same_file_name(tmp_path):
    """Ultralytics names every export model_edgetpu.tflite: the second one's figures landed on
    the first's row (its parameters beside the other's on-chip share) and "Compiled together"
    was never said."""
    pair = []
    for folder, src in [("det", "mobilenet_v2_1.0_224_quant_edgetpu"),
                        ("species", "mobilenet_v1_0.25_128_quant_edgetpu")]:  # fmt: skip
        dest = tmp_path / folder / "model_edgetpu.tflite"
        dest.parent.mkdir()
        dest.write_bytes((CORAL / f"{src}.tflite").read_bytes())
        pair.append(dest)
    alone = [caching(read_model(p)) for p in pair]  # what each executable records
    r = CliRunner().invoke(main, ["inspect", str(pair[0]), "--with", str(pair[1]), "--json"])
    out = json.loads(r.stdout)
    assert [m["model"] for m in out["models"]] == [str(p) for p in pair]  # told apart
    for row, one in zip(out["models"], alone):
        assert row["parameters_bytes"] == one["on_chip_bytes"] + one["off_chip_bytes"]
        assert row["on_chip_bytes"] == one["on_chip_bytes"] and row["as_compiled"]
    assert out["cocompiled_together"] is False and len(out["compiled"]) == 2
    r = CliRunner().invoke(main, ["inspect", str(pair[0]), "--with", str(pair[1])])
    assert "Compiled together: no" in r.stdout
