"""`edgekit train` in a fresh process: its stderr is edgekit's progress, not TensorFlow's C++
start-up banner (oneDNN, absl), and --json leaves stdout parseable."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys


def test_train_stderr_has_no_tensorflow_banner(apple_banana_dir, tmp_path):
    data = tmp_path / "data"
    for cls in ("apple", "banana"):
        (data / cls).mkdir(parents=True)
        for f in sorted((apple_banana_dir / cls).glob("*.png"))[:6]:
            shutil.copy(f, data / cls / f.name)
    cmd = [sys.executable, "-c", "from edgekit.cli import run; run()", "train", str(data),
           "--model", "inception_lite", "-o", str(tmp_path / "m.h5"), "--epochs", "1",
           "--val-split", "0", "--json"]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["model"] == "inception_lite"
    for noise in ("oneDNN", "absl::InitializeLog", "cpu_feature_guard", "I0000"):
        assert noise not in r.stderr, r.stderr
