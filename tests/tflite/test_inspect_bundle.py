"""`edgekit inspect BUNDLE` works like `classify`/`bench` on a bundle: it inspects the compiled
model when the bundle has one, else the int8 model."""

from __future__ import annotations

import json
import shutil

from click.testing import CliRunner

from edgekit.cli import main
from edgekit.manifest import InputSpec, Manifest, OutputSpec

V1 = "mobilenet_v1_0.25_128_quant"


def _bundle(coral_dir, dest, compiled: bool):
    dest.mkdir()
    cpu, tpu = f"{V1}_int8.tflite", f"{V1}_int8_edgetpu.tflite"
    shutil.copy(coral_dir / f"{V1}.tflite", dest / cpu)
    if compiled:
        shutil.copy(coral_dir / f"{V1}_edgetpu.tflite", dest / tpu)
    manifest = Manifest(
        name=V1,
        input=InputSpec(shape=(1, 128, 128, 3), dtype="uint8", scale=0.0078125, zero_point=128,
                        color="rgb", range=(-1.0, 1.0), resize="stretch"),
        output=OutputSpec(shape=(1, 1001), dtype="uint8", scale=0.00390625, zero_point=0),
        models={"cpu": cpu, "edgetpu": tpu if compiled else None, "edgetpu_log": None},
    )  # fmt: skip
    (dest / "edgekit.json").write_text(manifest.to_json())
    return dest


def test_inspect_bundle_picks_compiled_then_int8(coral_dir, tmp_path):
    for compiled, name in ((True, f"{V1}_int8_edgetpu.tflite"), (False, f"{V1}_int8.tflite")):
        b = _bundle(coral_dir, tmp_path / str(compiled), compiled)
        r = CliRunner().invoke(main, ["inspect", str(b), "--json"])
        assert r.exit_code == 0, r.output
        report = json.loads(r.stdout)
        assert report["model"] == str(b / name) and report["compiled"] is compiled
        assert report["format"] == "tflite"
