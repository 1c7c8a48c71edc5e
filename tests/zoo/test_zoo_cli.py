"""`edgekit zoo list` and `edgekit zoo build`, through the real CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from edgekit import zoo
from edgekit.cli import main


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_list_text_and_json():
    res = run("zoo", "list")
    assert res.exit_code == 0
    assert "3,335,842" in res.output and "4,253,864" in res.output
    for name in zoo.REGISTRY:
        assert name in res.output
    data = json.loads(run("zoo", "list", "--json").output)
    rows = {r["name"]: r for r in data["models"]}
    assert rows["inception_lite"]["params"] == 3_335_842
    assert rows["mobilenet_v1"]["macs"] == zoo.REGISTRY["mobilenet_v1"].macs
    assert rows["mobilenet_v1"]["default_input"] == 224
    assert set(rows["dsconv"]) >= {"description", "paper", "default_classes"}


def test_list_does_not_import_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys; from click.testing import CliRunner; from edgekit.cli import main; "
        "r = CliRunner().invoke(main, ['zoo', 'list']); assert r.exit_code == 0; "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_build_writes_a_loadable_model_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "m.h5"
    res = run(
        "zoo", "build", "mobilenet_v1", "--alpha", "0.25", "--input-size", "64",
        "--classes", "3", "-o", str(out), "--json",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["input_shape"] == [64, 64, 3]
    from edgekit.host.keras_stats import inspect_keras

    stats = inspect_keras(out)
    assert stats["params"] == summary["params"]
    assert stats["layers"][-2]["output_shape"] == [None, 3]  # logits
    # the predicted latency of what was built, as zoo list and inspect give it
    from edgekit.edgetpu.latency import latency_of_keras_stats

    assert summary["latency_ms"] == latency_of_keras_stats(stats)["latency_ms"]
    other = tmp_path.parent / f"{tmp_path.name}-text"
    other.mkdir()
    text = run("zoo", "build", "mobilenet_v1", "--alpha", "0.25", "--input-size", "64",
               "--classes", "3", "-o", str(other / "t.h5")).output  # fmt: skip
    assert f"predicted {summary['latency_ms']['usb3']:.2f} ms per inference on a USB 3" in text
    before = out.read_bytes()
    again = run("zoo", "build", "mobilenet_v1", "--alpha", "0.5", "-o", str(out))
    assert again.exit_code == 1
    assert again.output.strip().startswith("Error:") and "--force" in again.output
    assert out.read_bytes() == before
    forced = run(
        "zoo", "build", "squeezenet", "--input-size", "32", "-p", "bypass=true", "-o", str(out),
        "--force",
    )  # fmt: skip
    assert forced.exit_code == 0, forced.output
    assert inspect_keras(out)["params"] != stats["params"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.h5"]  # no temp files left


@pytest.mark.parametrize(
    "args, message",
    [
        (["zoo", "build", "resnet50"], "unknown zoo model 'resnet50'"),
        (["zoo", "build", "inception_lite", "--alpha", "0.5"], "has no option 'alpha'"),
        (["zoo", "build", "dsconv", "--classes", "3"], "has no option 'classes'"),
        (["zoo", "build", "squeezenet", "-p", "bypass"], "use KEY=VALUE"),
        (["zoo", "build", "mobilenet_v1", "--input-size", "8"], "too small"),
    ],
)
def test_build_errors_are_one_line(tmp_path, args, message):
    out = tmp_path / "x.h5"
    res = CliRunner().invoke(main, [*args, "-o", str(out)])
    assert res.exit_code == 1
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0], res.output
    assert not out.exists()


def test_build_rejects_unknown_suffix(tmp_path):
    res = CliRunner().invoke(main, ["zoo", "build", "dsconv", "-o", str(tmp_path / "m.tflite")])
    assert res.exit_code == 1 and "FILE.h5" in res.output


def test_inspect_command_reproduces_the_counts(tmp_path):
    """`edgekit inspect` (another area) reads the zoo's files with inspect_keras."""
    for name, options, expected in [
        ("inception_lite", ["--classes", "2"], 3_335_842),
        ("dsconv", [], 1_000_900),
    ]:
        out = tmp_path / f"{name}.h5"
        assert run("zoo", "build", name, *options, "-o", str(out)).exit_code == 0
        res = CliRunner().invoke(main, ["inspect", str(out), "--json"])
        assert res.exit_code == 0, res.output
        assert json.loads(res.output)["params"] == expected
