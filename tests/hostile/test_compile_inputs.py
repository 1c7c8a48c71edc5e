"""``edgekit compile``: a damaged model is refused before the compiler runs, and a refusal from
the compiler gives advice for this command, not convert's.

Before: a truncated .tflite went to edgetpu_compiler, whose failure was reported with the name of
edgekit's temporary link (``/tmp/edgekit-compile-xxxx/in/m.tflite``) and "pass --no-compile to
keep the CPU bundle", an option `compile` does not have (so was every compiler refusal:
"model not quantized", "could not be parsed", a crash); a folder that is not a bundle was
"no such model file or bundle"."""

from __future__ import annotations

import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .conftest import ROOT, TINY, cli, tree_digest

FAKE = ROOT / "tests" / "convert" / "fake_edgetpu_compiler"


@pytest.fixture(scope="module")
def tiny_bytes() -> bytes:
    return TINY.read_bytes()


def _compile(*args, env=None):
    from click.testing import CliRunner

    from edgekit.cli import main

    from .conftest import check_result

    argv = ["compile", *map(str, args), "--compiler", str(FAKE)]
    r = CliRunner(env=env).invoke(main, argv)
    check_result(r, argv)
    return r


@settings(max_examples=15)
@given(cut=st.integers(min_value=8, max_value=525_000))
def test_a_truncated_model_is_refused_before_the_compiler(tmp_path_factory, tiny_bytes, cut):
    d = tmp_path_factory.mktemp("cut")
    model = d / "m.tflite"
    model.write_bytes(tiny_bytes[:cut])
    args_file = d / "argv.txt"
    r = _compile(model, "-o", d / "out", env={"FAKE_EDGETPU_ARGS_FILE": str(args_file)})
    assert r.exit_code == 1, r.output
    last = r.output.strip().splitlines()[-1]
    assert last.startswith(f"Error: {model}: not a TFLite model"), r.output
    assert "edgekit-compile-" not in r.output and "--no-compile" not in r.output
    assert not args_file.exists()  # the compiler never ran
    assert not (d / "out").exists()


def test_a_truncated_model_after_a_good_one_writes_nothing(tmp_path, tiny_bytes):
    good = shutil.copy(TINY, tmp_path / "good.tflite")
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(tiny_bytes[:300_000])
    before = tree_digest(tmp_path)
    r = cli("compile", good, bad, "--compiler", FAKE)
    assert r.exit_code == 1 and f"{bad}: not a TFLite model" in r.output, r.output
    assert tree_digest(tmp_path) == before


def test_a_folder_that_is_not_a_bundle_is_named_as_such(tmp_path):
    (tmp_path / "photos").mkdir()
    r = cli("compile", tmp_path / "photos", "--compiler", FAKE)
    assert r.exit_code == 1, r.output
    assert "a folder but not an edgekit bundle (no edgekit.json)" in r.output, r.output


@pytest.mark.parametrize("mode, words", [
    ("not-quantized", "model not quantized"), ("parse-error", "could not be parsed"),
    ("internal-error", "internal compiler error"), ("crash", "crashed (SIGSEGV)"),
])  # fmt: skip
def test_compiler_refusals_give_advice_compile_can_follow(tmp_path, mode, words):
    model = shutil.copy(TINY, tmp_path / "m.tflite")
    r = _compile(model, "-o", tmp_path / "out", env={"FAKE_EDGETPU_MODE": mode})
    assert r.exit_code == 1, r.output
    assert words in r.output and "--no-compile" not in r.output and "--segments" not in r.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_convert_keeps_its_own_advice(tmp_path, monkeypatch):
    """The same refusal inside `convert` still points at --no-compile (its way to a CPU bundle)."""
    from edgekit.errors import EdgekitError
    from edgekit.host.compiler import compile_model

    model = shutil.copy(TINY, tmp_path / "m.tflite")
    monkeypatch.setenv("FAKE_EDGETPU_MODE", "not-quantized")
    with pytest.raises(EdgekitError, match="--no-compile"):
        compile_model(FAKE, model, tmp_path)
