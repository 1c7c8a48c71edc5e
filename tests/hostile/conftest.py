"""Shared fixtures and assertions of the hostile-input suite.

Every property here asserts the same contract (issue 9): exit status 0, 1 or 2 (never a signal),
no traceback, inputs untouched, no partial output. CLI properties run in-process through click's
CliRunner (fast: no interpreter start-up, TensorFlow imported at most once); a few tests run real
subprocesses for the signal and traceback guarantees that only a real process shows.

Hypothesis runs derandomized (a fixed seed derived from each test) with few examples, so the
whole folder stays within a few minutes on 2 cores and every run tries the same inputs; its
example database (.hypothesis/) is not used and stays out of git.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, settings

from edgekit.cli import main
from edgekit.manifest import InputSpec, Manifest, OutputSpec

ROOT = Path(__file__).resolve().parents[2]
CORAL = ROOT / "tests" / "data" / "coral"
TINY = CORAL / "mobilenet_v1_0.25_128_quant.tflite"  # 0.5 MB, uint8 I/O, 1001 classes

settings.register_profile(
    "hostile",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile("hostile")


def tree_digest(*paths: Path) -> str:
    """Hash of every file's path, mode and bytes below ``paths``: 'inputs untouched'."""
    h = hashlib.sha256()
    for root in paths:
        root = Path(root)
        items = [root] if not root.is_dir() else sorted(root.rglob("*"))
        for p in items:
            h.update(str(p).encode())
            if p.is_symlink() or not (p.is_file() or p.is_dir()):
                h.update(b"special")
            elif p.is_file():
                h.update(p.read_bytes())
    return h.hexdigest()


def cli(*args, input=None, error_line=True):
    """Run ``edgekit ARGS`` in-process; assert the hostile-input contract; return the result.
    ``error_line=False`` for commands whose exit 1 is a report, not an error (doctor)."""
    result = CliRunner().invoke(main, [str(a) for a in args], input=input)
    check_result(result, args, error_line)
    return result


def check_result(result, args=(), error_line=True) -> None:
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        import traceback

        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        raise AssertionError(f"edgekit {' '.join(map(str, args))} raised:\n{tb}")
    assert result.exit_code in (0, 1, 2), (args, result.exit_code, result.output)
    assert "Traceback" not in result.output, (args, result.output)
    if result.exit_code and error_line:
        # one clear line: the last line says what is wrong (click usage errors end in "Error:")
        assert "Error" in result.output, (args, result.output)


def run_edgekit(*args, timeout=120, env=None) -> subprocess.CompletedProcess:
    """A real ``edgekit`` process (for signals and tracebacks printed by the interpreter)."""
    cmd = [sys.executable, "-c", "from edgekit.cli import run; run()", *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))  # fmt: skip
    assert proc.returncode in (0, 1, 2), (args, proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="session")
def tiny_tflite(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tiny")
    return Path(shutil.copy(TINY, d / "tiny.tflite"))


def make_bundle(dest: Path, tflite: Path = TINY, **manifest_overrides) -> Path:
    """A bundle as `edgekit convert` lays it out, around the tiny Coral model."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(tflite, dest / "tiny_int8.tflite")
    m = Manifest(
        name="tiny",
        input=InputSpec((1, 128, 128, 3), "uint8", 0.0078125, 128, "rgb", (-1.0, 1.0)),
        output=OutputSpec((1, 1001), "uint8", 0.00390625, 0),
        models={"cpu": "tiny_int8.tflite", "edgetpu": None, "edgetpu_log": None},
        labels=None,
    )
    d = m.to_dict()
    d.update(manifest_overrides)
    import json

    (dest / "edgekit.json").write_text(json.dumps(d))
    return dest


@pytest.fixture(scope="session")
def bundle(tmp_path_factory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("bundle") / "b")


@pytest.fixture(scope="session")
def photo(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("photo")
    return Path(shutil.copy(CORAL / "parrot.jpg", d / "parrot.jpg"))


TINY_KERAS = """
import sys, keras
inp = keras.Input((16, 16, 3))
x = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")(inp)
x = keras.layers.GlobalAveragePooling2D()(x)
out = keras.layers.Dense(2, activation="softmax")(x)
model = keras.Model(inp, out)
model.save(sys.argv[1] + "/tiny.h5")
model.save(sys.argv[1] + "/tiny.keras")
"""


@pytest.fixture(scope="session")
def tiny_keras(tmp_path_factory) -> dict[str, Path]:
    """An untrained 16x16 Keras classifier saved as .h5 and .keras (built in a subprocess, so
    that TensorFlow is imported by the tests that convert, not by all of them)."""
    d = tmp_path_factory.mktemp("keras")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", TINY_KERAS, str(d)], capture_output=True,
                          text=True, timeout=300, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"h5": d / "tiny.h5", "keras": d / "tiny.keras"}


def tflite_schema():
    """TensorFlow's generated TFLite schema module, loaded by path (no TensorFlow import)."""
    import importlib.util

    tf_dir = importlib.util.find_spec("tensorflow").submodule_search_locations[0]
    spec = importlib.util.spec_from_file_location(
        "tflite_schema_generated", Path(tf_dir) / "lite" / "python" / "schema_py_generated.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rewrite_tflite(data: bytes, edit) -> bytes:
    """``edit(model_object, schema)`` on the object form of a .tflite, packed again."""
    import flatbuffers

    S = tflite_schema()
    model = S.ModelT.InitFromObj(S.Model.GetRootAs(data, 0))
    edit(model, S)
    b = flatbuffers.Builder(0)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())
