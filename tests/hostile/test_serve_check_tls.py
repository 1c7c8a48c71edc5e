"""``[mqtt] ca_file``: before, ``serve --check`` passed a file that is no certificate (a photo,
a missing path) and serve stopped at start; a FIFO there hung --check, serve and ``rollout
--cafile`` forever (OpenSSL opens the file itself, blocking)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from .conftest import CORAL, TINY, cli, make_bundle, run_edgekit


def _config(tmp_path, ca_file):
    shutil.copy(CORAL / "parrot.jpg", tmp_path / "parrot.jpg")
    c = tmp_path / "edgekit.toml"
    c.write_text(f'[model]\npath = "{TINY}"\n[source]\nuri = "{tmp_path}"\n'
                 f'[mqtt]\nenabled = true\ntls = true\nca_file = "{ca_file}"\n')  # fmt: skip
    return c


@pytest.mark.parametrize("kind, words", [
    ("photo", "cannot load the CA certificate"),
    ("missing", "no such CA certificate file"),
    ("fifo", "is a FIFO (named pipe), not a CA certificate file"),
])  # fmt: skip
def test_check_refuses_a_ca_file_serve_cannot_load(tmp_path, kind, words):
    ca = tmp_path / "ca.pem"
    if kind == "photo":
        shutil.copy(CORAL / "parrot.jpg", ca)
    elif kind == "fifo":
        os.mkfifo(ca)
    r = cli("serve", "--check", "--config", _config(tmp_path, ca))
    assert r.exit_code == 1 and words in r.output.strip().splitlines()[-1], r.output


def test_serve_and_rollout_do_not_hang_on_a_fifo_ca_file(tmp_path):
    ca = tmp_path / "ca.pem"
    os.mkfifo(ca)
    try:
        p = run_edgekit("serve", "--config", _config(tmp_path, ca), "--max-frames", "1",
                        "--worker", "inline", timeout=60)  # fmt: skip
        assert p.returncode == 1 and "is a FIFO" in p.stderr.strip().splitlines()[-1], p.stderr
        b = make_bundle(tmp_path / "b")
        cli("keygen", tmp_path / "k")
        cli("sign", b, "--key", tmp_path / "k")
        p = run_edgekit("rollout", b, "--broker", "127.0.0.1:1", "--topic", "t", "--cafile", ca,
                        timeout=60)  # fmt: skip
        assert p.returncode == 1 and "is a FIFO" in p.stderr.strip().splitlines()[-1], p.stderr
    except subprocess.TimeoutExpired:
        pytest.fail("hung on a FIFO named as the CA certificate")
