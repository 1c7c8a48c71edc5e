"""`edgekit compile` on a bundle updates the predicted latency it carries (`compile.latency`):
co-compiled, a partner may take the on-chip cache the model had alone, and its parameters then
stream over USB on every inference. Google's real co-compiled MobileNet v1 0.25 (it streams
0.24 MiB beside three partners; alone it streams nothing) stands for the compiler's output:
the compiler stand-in runs, then its copy is replaced by that real compiled file."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgekit.cli import main
from edgekit.edgetpu.latency import latency_of_model
from edgekit.tflite import read_model
from tests.detect.conftest import shared
from tests.runtime.conftest import write_bundle

ROOT = Path(__file__).resolve().parents[2]
FAKE = ROOT / "tests" / "convert" / "fake_edgetpu_compiler"
CORAL = ROOT / "tests" / "data" / "coral"
V1 = "mobilenet_v1_0.25_128_quant"

WRAPPER = """#!{python}
import os, shutil, subprocess, sys
r = subprocess.run([{fake!r}, *sys.argv[1:]])
out = sys.argv[sys.argv.index("-o") + 1]
shutil.copy({real!r}, os.path.join(out, "{v1}_int8_edgetpu.tflite"))
sys.exit(r.returncode)
"""


@pytest.fixture
def compiler(tmp_path) -> Path:
    real = shared("coral", "cocompilation") / f"{V1}_cocompiled_with_3quant_edgetpu.tflite"
    exe = tmp_path / "edgetpu_compiler"
    exe.write_text(WRAPPER.format(python=sys.executable, fake=str(FAKE), real=str(real), v1=V1))
    exe.chmod(0o755)
    return exe


def test_a_bundle_compiled_with_a_partner_carries_its_new_latency(compiler, tmp_path):
    species = write_bundle(tmp_path / "species", CORAL / f"{V1}.tflite", (0, 1))
    twin = read_model(species / f"{V1}_int8.tflite")
    alone = latency_of_model(read_model(CORAL / f"{V1}_edgetpu.tflite"), cpu_twin=twin)
    assert alone["streamed_bytes"] == 0
    m = json.loads((species / "edgekit.json").read_text())
    m["compile"] = {"status": "compiled", "latency": alone}  # as convert wrote it, compiled alone
    (species / "edgekit.json").write_text(json.dumps(m))
    r = CliRunner(env={"PATH": os.environ["PATH"]}).invoke(
        main, ["compile", str(CORAL / "mobilenet_v2_1.0_224_quant.tflite"), str(species),
               "-o", str(tmp_path / "out"), "--compiler", str(compiler)])  # fmt: skip
    assert r.exit_code == 0, r.output
    got = json.loads((species / "edgekit.json").read_text())["compile"]
    assert got["cocompiled_with"] == ["mobilenet_v2_1.0_224_quant"]
    lat = got["latency"]
    want = latency_of_model(read_model(species / f"{V1}_int8_edgetpu.tflite"), cpu_twin=twin)
    assert lat == json.loads(json.dumps(want))
    assert lat["streamed_bytes"] > 0 and lat["parts_ms"]["usb3"]["parameters_streamed"] > 0
    assert lat["latency_ms"]["usb3"] > alone["latency_ms"]["usb3"]


def test_the_report_gives_each_models_latency_as_compiled_together(compiler, tmp_path):
    """Text and --json: the streaming a partner causes shows as milliseconds per model."""
    species = tmp_path / "in" / f"{V1}_int8.tflite"
    species.parent.mkdir()
    species.write_bytes((CORAL / f"{V1}.tflite").read_bytes())
    args = ["compile", str(CORAL / "mobilenet_v2_1.0_224_quant.tflite"), str(species),
            "-o", str(tmp_path / "out"), "--compiler", str(compiler)]  # fmt: skip
    r = CliRunner().invoke(main, [*args, "--json"])
    assert r.exit_code == 0, r.output
    first, second = json.loads(r.stdout)["models"]
    twin = read_model(species)
    want = latency_of_model(read_model(tmp_path / "out" / f"{V1}_int8_edgetpu.tflite"),
                            cpu_twin=twin)  # fmt: skip
    assert second["latency"] == json.loads(json.dumps(want))
    assert second["latency"]["parts_ms"]["usb3"]["parameters_streamed"] > 0
    assert first["latency"]["latency_ms"]["usb3"] > 0
    text = CliRunner().invoke(main, [*args, "--force"]).stdout.splitlines()
    i = next(k for k, line in enumerate(text) if line.strip().startswith(str(tmp_path / "out" /
                                                                          f"{V1}_int8_edgetpu")))
    assert text[i + 1].strip().startswith("latency predicted ")
    assert "parameters streamed" in text[i + 1]
