"""`edgekit compile A B`: one edgetpu_compiler call for several models (the compiler stand-in
tests/convert/fake_edgetpu_compiler, which prints what compiler 16 prints for co-compilation),
each model's on-chip/off-chip share, bundles updated with their partners, one-line refusals."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgekit.classify import Classifier
from edgekit.cli import main
from edgekit.manifest import load_bundle
from tests.runtime.conftest import tiny_models, write_bundle  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[2]
FAKE = ROOT / "tests" / "convert" / "fake_edgetpu_compiler"
CORAL = ROOT / "tests" / "data" / "coral"


def _cli(*args, env=None):
    return CliRunner(env=env).invoke(main, ["compile", *map(str, args), "--compiler", str(FAKE)])


@pytest.fixture
def models(tmp_path) -> list[Path]:
    """Four int8 MobileNets: v2 (3.4 MiB of buffers) three times and v1 0.25 (0.45 MiB)."""
    out = []
    for src, name in [("mobilenet_v2_1.0_224_quant", "detector"),
                      ("mobilenet_v1_0.25_128_quant", "species"),
                      ("mobilenet_v2_1.0_224_quant", "third"),
                      ("mobilenet_v2_1.0_224_quant", "fourth")]:  # fmt: skip
        dest = tmp_path / "in" / f"{name}.tflite"
        dest.parent.mkdir(exist_ok=True)
        shutil.copy(CORAL / f"{src}.tflite", dest)
        out.append(dest)
    return out


def test_two_models_go_through_one_compiler_call(models, tmp_path):
    args = tmp_path / "argv.txt"
    r = _cli(models[0], models[1], "-o", tmp_path / "out", "--json",
             env={"FAKE_EDGETPU_ARGS_FILE": str(args)})  # fmt: skip
    assert r.exit_code == 0, r.output
    argv = args.read_text().split()
    assert [Path(a).name for a in argv if a.endswith(".tflite")] == ["detector.tflite",
                                                                     "species.tflite"]
    out = json.loads(r.stdout)
    assert [Path(m["output"]).name for m in out["models"]] == [
        "detector_edgetpu.tflite", "species_edgetpu.tflite"]  # fmt: skip
    for m in out["models"]:
        rep = m["report"]
        assert Path(m["output"]).is_file() and Path(m["log"]).is_file()
        assert rep["success"] and rep["version"] == "16.0.384591198"
        assert rep["on_chip_bytes"] > 0 and rep["off_chip_bytes"] == 0
        assert rep["ops_total"] == rep["ops_tpu"] and rep["operators"]
    a, b = (m["report"] for m in out["models"])
    assert a["ops_total"] == 66 and b["ops_total"] == 31  # each block read as its own model
    assert a["on_chip_remaining_bytes"] == b["on_chip_remaining_bytes"]  # left after both
    assert a["compile_ms"] == b["compile_ms"] > 0


def test_what_does_not_fit_streams_from_the_later_model(models, tmp_path):
    r = _cli(*models, "-o", tmp_path / "out")
    assert r.exit_code == 0, r.output
    latency = [x for x in r.stdout.splitlines() if x.startswith("    latency predicted ")]
    assert len(latency) == 4  # one per model, under its line
    lines = [x for x in r.stdout.splitlines() if x not in latency]
    assert lines[0].startswith("co-compiled 4 models in ")
    assert "detector_edgetpu.tflite: on-chip 3.38 MiB, off-chip 0.00 MiB" in lines[1]
    assert "third_edgetpu.tflite: on-chip 3.38 MiB, off-chip 0.00 MiB" in lines[3]
    assert "fourth_edgetpu.tflite: on-chip 0.48 MiB, off-chip 2.90 MiB" in lines[4]
    # only the model that streams says so (every line said "(streamed every inference)")
    assert [("streamed every inference" in x) for x in lines[1:5]] == [False] * 3 + [True]
    assert lines[-1] == "  on-chip cache left: 0.00 MiB; streaming: fourth_edgetpu.tflite"


def test_bundles_get_their_twin_and_record_their_partners(tiny_models, tmp_path):  # noqa: F811
    a = write_bundle(tmp_path / "a", tiny_models / "u8_01.tflite", (0, 1))
    b = write_bundle(tmp_path / "b", tiny_models / "i8_01.tflite", (0, 1))
    r = _cli(a, b)
    assert r.exit_code == 0, r.output
    assert f"bundle {a} updated" in r.stdout
    for bundle, partner in ((a, "i8_01_int8"), (b, "u8_01_int8")):
        m = load_bundle(bundle).manifest
        assert m.models["edgetpu"].endswith("_int8_edgetpu.tflite")
        assert (bundle / m.models["edgetpu"]).is_file()
        assert (bundle / m.models["edgetpu_log"]).is_file()
        assert m.compile["cocompiled_with"] == [partner]
        assert m.compile["status"] == "compiled" and m.compile["required_runtime"] == 14
        assert m.compile["report"]["on_chip_bytes"] > 0
        Classifier(bundle, device="cpu").close()  # the bundle still opens (its CPU model)


def test_refusals_are_one_line(models, tmp_path):
    r = _cli(CORAL / "mobilenet_v1_0.25_128_quant_edgetpu.tflite", models[0])
    assert r.exit_code == 1 and "already compiled" in r.stderr and len(r.stderr.splitlines()) == 1
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(models[0], other / models[0].name)
    r = _cli(models[0], other / models[0].name)
    assert r.exit_code == 1 and "two models named detector.tflite" in r.stderr
    r = _cli(models[0], tmp_path / "missing.tflite")
    assert r.exit_code == 1 and "no such model file" in r.stderr
    r = _cli(models[0], models[1], env={"FAKE_EDGETPU_MODE": "not-quantized"})
    assert r.exit_code == 1 and "model not quantized" in r.stderr
    assert not list(models[0].parent.glob("*_edgetpu.tflite"))  # nothing half-written
    r = _cli(models[0], models[1], env={"FAKE_EDGETPU_MODE": "flood",
                                        "FAKE_EDGETPU_FLOOD_MB": "20"})  # fmt: skip
    assert r.exit_code == 1 and "wrote more than 16 MiB to its output" in r.stderr
    r = CliRunner(env={"PATH": str(tmp_path)}).invoke(main, ["compile", str(models[0])])
    assert r.exit_code == 1 and "edgetpu_compiler not found" in r.stderr
    r = CliRunner().invoke(main, ["compile"])
    assert r.exit_code == 2
    assert os.listdir(models[0].parent) == os.listdir(models[0].parent)  # inputs untouched


def test_an_existing_compiled_twin_is_never_replaced_without_force(models, tmp_path):
    """Coral ships X.tflite beside X_edgetpu.tflite: `compile X.tflite Y.tflite` (output beside
    the first by default) replaced Google's compiled twin with its own, read-only file or not."""
    twin = models[1].with_name("species_edgetpu.tflite")
    shutil.copy(CORAL / "mobilenet_v1_0.25_128_quant_edgetpu.tflite", twin)
    twin.chmod(0o444)
    before = twin.read_bytes()
    r = _cli(models[0], models[1])
    assert r.exit_code == 1, r.output
    assert r.stderr.splitlines() == [
        f"Error: {twin} already exists; pass --force to replace it, or -o DIR for another folder"
    ]
    assert twin.read_bytes() == before
    assert not models[0].with_name("detector_edgetpu.tflite").exists()  # nothing written
    r = _cli(models[0], models[1], "-o", tmp_path / "out")  # another folder: fine
    assert r.exit_code == 0, r.output
    r = _cli(models[0], models[1], "-o", tmp_path / "out")  # again: refused
    assert r.exit_code == 1 and "already exists" in r.stderr
    r = _cli(models[0], models[1], "--force")
    assert r.exit_code == 0, r.output
    assert twin.read_bytes() != before and (tmp_path / "in" / "detector_edgetpu.tflite").is_file()


def test_an_output_folder_that_cannot_be_made_is_one_line(models, tmp_path):
    """-o below a file, or where nothing can be created, was a FileNotFoundError /
    NotADirectoryError traceback from mkdir."""
    (tmp_path / "file").write_text("x")
    for out, says in [(tmp_path / "file" / "sub", "is a file, not a folder"),
                      ("/proc/edgekit-no/sub", "cannot write in /proc")]:  # fmt: skip
        r = _cli(models[0], "-o", out)
        assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
        lines = r.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Error: {out}/detector_edgetpu.tflite: ")
        assert says in lines[0], lines
    r = _cli(models[0], "-o", tmp_path / "new" / "deeper")  # a folder that can be made: made
    assert r.exit_code == 0 and (tmp_path / "new" / "deeper" / "detector_edgetpu.tflite").is_file()
