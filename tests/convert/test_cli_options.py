"""Option and output-path mistakes that `edgekit convert` must catch before any work."""

from __future__ import annotations

from edgekit.host import compiler

from .conftest import FAKE_COMPILER, assert_clean_failure, run_cli


def test_output_under_a_file_fails_before_loading_anything(tmp_path, apple_banana_dir):
    model = tmp_path / "m.h5"
    model.write_bytes(b"not looked at: the output check comes first")
    r = run_cli("convert", model, "--calib", apple_banana_dir, "-o", model / "bundle")
    assert_clean_failure(r, tmp_path, "is a file, not a folder")
    assert [p.name for p in tmp_path.iterdir()] == ["m.h5"]


def test_output_that_is_a_file_fails_early_even_with_force(tmp_path, apple_banana_dir):
    model, out = tmp_path / "m.h5", tmp_path / "labels.txt"
    model.write_bytes(b"x")
    out.write_text("a\n")
    r = run_cli("convert", model, "--calib", apple_banana_dir, "-o", out, "--force")
    assert_clean_failure(r, tmp_path, "not a directory")
    assert out.read_text() == "a\n"


def test_relative_compiler_path_is_a_path_not_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(FAKE_COMPILER.parent)
    found = compiler.find_compiler(f"./{FAKE_COMPILER.name}")
    assert found is not None and found.resolve() == FAKE_COMPILER
    assert found.is_absolute()  # it runs with the temporary bundle as working directory


def test_compile_timeout_must_be_positive(tmp_path):
    r = run_cli("convert", tmp_path / "m.h5", "-o", tmp_path / "b", "--compile-timeout", "-1")
    assert r.exit_code == 2 and "--compile-timeout" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_calib_given_a_file_says_it_is_a_file(tmp_path, apple_banana_dir):
    model = tmp_path / "m.h5"
    # HDF5 by its first bytes (what the file is comes first), not read any further
    model.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    photo = next(apple_banana_dir.rglob("*.png"))
    r = run_cli("convert", model, "--calib", photo, "-o", tmp_path / "b")
    assert_clean_failure(r, tmp_path, "a file, not a folder")
    assert [p.name for p in tmp_path.iterdir()] == ["m.h5"]
