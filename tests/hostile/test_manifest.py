"""edgekit.json validated field by field on load (issue 9): malformed, hostile or hand-edited
manifests are one line naming the field, never a traceback or a model outside the bundle."""

from __future__ import annotations

import json
import shutil

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgekit import manifest
from edgekit.errors import EdgekitError

from .conftest import cli, make_bundle


def _load_with(tmp_path, **changes):
    b = make_bundle(tmp_path / "b")
    d = json.loads((b / "edgekit.json").read_text())
    for dotted, value in changes.items():
        target, *path = dotted.split("__")
        node = d
        for key in [target, *path][:-1]:
            node = node[key]
        node[[target, *path][-1]] = value
    (b / "edgekit.json").write_text(json.dumps(d))
    return manifest.load_bundle(b)


@pytest.mark.parametrize(
    "field, value, named",
    [
        ("input__scale", float("nan"), "input.scale"),
        ("input__scale", float("inf"), "input.scale"),
        ("input__range", [0, float("nan")], "input.range"),
        ("input__range", [1, 0], "input.range"),
        ("input__range", "0,1", "input.range"),
        ("input__dtype", "float64", "input.dtype"),
        ("input__shape", [1, 128, 128], "input.shape"),
        ("input__shape", [1, -128, 128, 3], "input.shape"),
        ("input__shape", [1, 128.5, 128, 3], "input.shape"),
        ("input__zero_point", 300, "input.zero_point"),
        ("input__zero_point", True, "input.zero_point"),
        ("input__color", "hsv", "input.color"),
        ("output__scale", -1, "output.scale"),
        ("output__shape", "big", "output.shape"),
        ("output", [], "output"),
        ("models", {"cpu": 42}, "models.cpu"),
        ("models", {"cpu": "/etc/passwd"}, "models.cpu"),
        ("models", {"cpu": "../../etc/passwd"}, "models.cpu"),
        ("models", {"cpu": "tiny_int8.tflite", "edgetpu": "../x_edgetpu.tflite"}, "models.edgetpu"),
        ("models", {"edgetpu": "x.tflite"}, "models.cpu"),
        ("labels", "cat dog", "labels"),
        ("labels", [1, 2], "labels"),
        ("name", 7, "name"),
        ("calibration", [1], "calibration"),
        ("format_version", "1", "format_version"),
    ],
)
def test_bad_field_is_one_line_naming_it(tmp_path, field, value, named):
    with pytest.raises(EdgekitError, match="not a valid edgekit manifest") as e:
        _load_with(tmp_path, **{field: value})
    assert f"({named}" in str(e.value) and "\n" not in str(e.value)


def test_deeply_nested_json_is_not_a_recursion_error(tmp_path):
    b = make_bundle(tmp_path / "b")
    (b / "edgekit.json").write_text("[" * 100_000 + "]" * 100_000)
    r = cli("classify", b, tmp_path / "x.jpg")
    assert r.exit_code == 1 and "nested too deeply" in r.output


def test_manifest_not_utf8_is_one_line(tmp_path, photo):
    b = make_bundle(tmp_path / "b")
    (b / "edgekit.json").write_bytes(b'{"name": "\xff"}')
    r = cli("classify", b, photo)
    assert r.exit_code == 1 and "not UTF-8" in r.output


def test_model_symlinked_or_special_refused(tmp_path, photo):
    import os

    b = make_bundle(tmp_path / "b")
    os.remove(b / "tiny_int8.tflite")
    os.mkfifo(b / "tiny_int8.tflite")
    r = cli("classify", b, photo)
    assert r.exit_code == 1 and "FIFO" in r.output


def test_valid_bundle_still_loads_with_extra_fields(tmp_path):
    # A newer edgekit of the same format may add fields (detection): kept, not refused.
    b = _load_with(tmp_path, task="classify")
    assert b.manifest.input.range == (-1.0, 1.0) and b.manifest.models["cpu"] == "tiny_int8.tflite"


@pytest.mark.parametrize("fmt", ["edgekit-bundle-v2", "onnx-bundle", 42, None, "x" * 5000])
def test_unknown_format_refused_by_every_command(tmp_path, photo, fmt):
    """A manifest whose "format" is not edgekit's (a newer layout, another tool's bundle) was
    accepted and run as if it were one: classify, bench, inspect and serve now refuse it in one
    line naming the format, what this edgekit reads and what to do."""
    b = make_bundle(tmp_path / "b", format=fmt)
    frames = tmp_path / "frames"
    frames.mkdir()
    shutil.copy(photo, frames / "a.jpg")
    for args in (
        ["classify", b, photo],
        ["bench", b, "--runs", "1", "--warmup", "0"],
        ["inspect", b],
        ["serve", "--model", b, "--source", frames, "--device", "cpu", "--max-frames", "1"],
        ["serve", "--check", "--model", b, "--source", frames, "--device", "cpu"],
    ):
        r = cli(*args)
        assert r.exit_code == 1, (args, r.output)
        line = r.output.strip().splitlines()[-1]
        assert "unknown bundle format" in line and "'edgekit-bundle'" in line, (args, line)
        assert "upgrade edgekit" in line and "edgekit convert" in line, line
        assert len(line) < 400, line  # a huge value is cut, not echoed


@given(fmt=st.one_of(st.text(max_size=50), st.integers(), st.booleans(), st.floats(),
                     st.lists(st.integers(), max_size=3)))  # fmt: skip
def test_any_other_format_value_is_one_line(tmp_path_factory, fmt):
    b = make_bundle(tmp_path_factory.mktemp("fmt") / "b", format=fmt)
    if fmt == "edgekit-bundle":
        assert manifest.load_bundle(b).manifest.name == "tiny"
        return
    with pytest.raises(EdgekitError, match="unknown bundle format") as e:
        manifest.load_bundle(b)
    assert "\n" not in str(e.value)


def test_manifest_without_format_key_still_loads(tmp_path):
    b = make_bundle(tmp_path / "b")
    d = json.loads((b / "edgekit.json").read_text())
    del d["format"]
    (b / "edgekit.json").write_text(json.dumps(d))
    assert manifest.load_bundle(b).manifest.name == "tiny"
