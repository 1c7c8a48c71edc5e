"""``doctor --model`` given something that is no model. Before: a photo, a truncated .tflite or a
folder of photos was reported as a WARN, "no Edge TPU runtime requirement recorded (not a bundle
compiled by edgekit convert ...)", among the machine's checks, exit 1 as if the setup had
failed; a missing path was already a usage error (exit 2). Now all of them are."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .conftest import CORAL, TINY, cli, make_bundle


@pytest.mark.parametrize("kind, words", [
    ("photo", "not a TFLite model (no 'TFL3' file identifier)"),
    ("empty", "not a TFLite model (the file is empty)"),
    ("folder", "a folder but not a bundle (no edgekit.json)"),
])  # fmt: skip
def test_a_model_that_is_no_model_is_a_usage_error(tmp_path, kind, words):
    path = tmp_path / "m.tflite"
    if kind == "photo":
        path.write_bytes((CORAL / "parrot.jpg").read_bytes())
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        path.mkdir()
    r = cli("doctor", "--no-probe", "--model", path)
    assert r.exit_code == 2, r.output
    assert r.output.strip().splitlines() == [f"Error: --model {path}: {words}; pass the bundle "
                                             "`edgekit convert` or `edgekit compile` wrote, or a "
                                             ".tflite"]  # fmt: skip


@settings(max_examples=10)
@given(cut=st.integers(min_value=1, max_value=520_000))
def test_a_truncated_model_is_a_usage_error(tmp_path_factory, cut):
    path = tmp_path_factory.mktemp("cut") / "m.tflite"
    path.write_bytes(TINY.read_bytes()[:cut])
    r = cli("doctor", "--no-probe", "--model", path)
    assert r.exit_code == 2 and "not a TFLite model" in r.output, r.output


@pytest.mark.parametrize("which", ["tflite", "bundle"])
def test_a_real_model_is_still_checked(tmp_path, which):
    model = TINY if which == "tflite" else make_bundle(tmp_path / "b")
    r = cli("doctor", "--no-probe", "--model", model, error_line=False)
    assert r.exit_code in (0, 1) and "model runtime" in r.output, r.output
