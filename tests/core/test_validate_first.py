"""Bad arguments are reported before the 4-5 s TensorFlow import: each case runs the CLI in a
fresh interpreter and checks that it failed with one Error line and never imported TensorFlow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "apple-banana"

PROBE = """
import sys
from edgekit.cli import main
try:
    main(sys.argv[1:], prog_name="edgekit", standalone_mode=True)
except SystemExit as e:
    code = e.code
print("TF_LOADED" if "tensorflow" in sys.modules else "TF_NOT_LOADED", file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.parametrize(
    "args",
    [
        ["convert", "{tmp}/missing.h5", "-o", "{tmp}/out"],
        ["convert", "{model}", "-o", "{tmp}/out", "--calib", "{tmp}/nowhere"],
        ["convert", "{model}", "-o", "{tmp}/out", "--calib", DATA, "--labels", "{tmp}/none.txt"],
        ["convert", "{model}", "-o", "{tmp}/out", "--calib", DATA, "--input-range", "0,inf"],
        ["convert", "{model}", "-o", "{tmp}/out", "--calib", DATA, "--group-pattern", "("],
        ["train", "{tmp}/nowhere", "--model", "inception_lite", "-o", "{tmp}/m.h5"],
        ["train", DATA, "--model", "no_such_model", "-o", "{tmp}/m.h5"],
        ["train", DATA, "--model", "inception_lite", "-o", "{tmp}/m.txt"],
        ["train", DATA, "--model", "inception_lite", "-o", "{tmp}/m.h5", "--learning-rate", "nan"],
        ["zoo", "build", "no_such_model", "-o", "{tmp}/z.h5"],
    ],
)
def test_bad_arguments_fail_before_tensorflow_loads(tmp_path, args):
    model = tmp_path / "model.h5"
    model.write_bytes(b"not really hdf5, but it exists")
    argv = [str(a).format(tmp=tmp_path, model=model) for a in args]
    out = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)  # fmt: skip
    assert out.returncode in (1, 2), out.stderr
    assert out.stderr.rstrip().endswith("TF_NOT_LOADED"), (argv, out.stderr[-2000:])
    errors = [ln for ln in out.stderr.splitlines() if "Error" in ln]
    assert len(errors) == 1 and "Traceback" not in out.stderr, out.stderr
