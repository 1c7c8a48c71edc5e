"""Signed bundles (edgekit.signing, `edgekit keygen/sign/verify`): real Ed25519 keys, real
bundle folders, OpenSSH interoperability checked with the real ssh-keygen when installed."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess

import pytest
from click.testing import CliRunner

from edgekit import signing
from edgekit.cli import main
from edgekit.errors import EdgekitError
from tests.stream.bundles import make_bundle
from tests.tty import EDGEKIT, run_in_pty


@pytest.fixture
def signed(tmp_path):
    key, pub, fp = signing.keygen(tmp_path / "key")
    bundle = make_bundle(tmp_path / "bundle", "a")
    (bundle / "sub").mkdir()
    (bundle / "sub" / "extra.txt").write_text("x")
    s = signing.sign(bundle, key)
    return bundle, key, pub, s


def test_keygen_writes_private_0600_and_an_openssh_public_line(tmp_path):
    key, pub, fp = signing.keygen(tmp_path / "k")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    line = pub.read_text()
    assert line.startswith("ssh-ed25519 AAAA") and line.endswith(" edgekit\n")
    with pytest.raises(EdgekitError, match="already exists"):
        signing.keygen(tmp_path / "k")
    assert key.read_text().startswith("-----BEGIN")  # the old key is untouched
    if shutil.which("ssh-keygen"):  # the same fingerprint as OpenSSH prints
        out = subprocess.run(["ssh-keygen", "-l", "-f", str(pub)], capture_output=True,
                             text=True, check=True).stdout  # fmt: skip
        assert fp in out
        derived = subprocess.run(["ssh-keygen", "-y", "-f", str(key)], capture_output=True,
                                 text=True, check=True).stdout  # fmt: skip
        assert derived.split()[:2] == line.split()[:2]


def test_sign_then_verify_every_file(signed, tmp_path):
    bundle, key, pub, s = signed
    sig = json.loads((bundle / "edgekit.sig").read_text())
    assert sig["format"] == "edgekit-sig-1"
    assert [f[0] for f in sig["files"]] == ["edgekit.json", "model_int8.tflite", "sub/extra.txt"]
    assert s.digest == signing.bundle_digest(bundle) == sig["digest"]
    import base64

    from cryptography.hazmat.primitives import serialization

    key_obj = signing.load_public_key(str(pub))
    raw = key_obj.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    for trusted in (pub, pub.read_text(), base64.b64encode(raw).decode()):  # path, line, raw
        assert signing.verify(bundle, str(trusted)).digest == s.digest


@pytest.mark.parametrize(
    "tamper, message",
    [
        (lambda b: (b / "sub" / "extra.txt").write_text("y"), "sub/extra.txt changed"),
        (lambda b: (b / "new.bin").write_bytes(b"1"), "new.bin was added"),
        (lambda b: (b / "sub" / "extra.txt").unlink(), "sub/extra.txt was removed"),
        (lambda b: (b / "edgekit.sig").unlink(), "not signed"),
        (lambda b: (b / "link").symlink_to(b / "edgekit.json"), "link is a symlink"),
        # the listed hashes edited to match a changed file: the signature no longer holds
        (lambda b: _forge(b), "bad signature: not signed by the trusted key"),
        (lambda b: (b / "edgekit.sig").write_text("{"), "unreadable signature file"),
        (
            lambda b: (b / "edgekit.sig").write_text('{"files": [["a", "b", 1e999]]}'),
            "unreadable signature file",
        ),  # an infinite size
    ],
)
def test_tampered_bundles_are_refused_naming_what_changed(signed, tamper, message):
    bundle, key, pub, s = signed
    tamper(bundle)
    with pytest.raises(EdgekitError, match=message):
        signing.verify(bundle, str(pub))


def _forge(bundle):
    (bundle / "sub" / "extra.txt").write_text("y")
    sig = json.loads((bundle / "edgekit.sig").read_text())
    sig["files"] = [[p, signing._sha256_file(bundle / p), (bundle / p).stat().st_size]
                    for p, _, _ in sig["files"]]  # fmt: skip
    (bundle / "edgekit.sig").write_text(json.dumps(sig))


def test_foreign_key_is_named(signed, tmp_path):
    bundle, key, pub, s = signed
    _, other_pub, other_fp = signing.keygen(tmp_path / "other")
    import re

    with pytest.raises(
        EdgekitError, match=f"signed by SHA256:.*trusted key is {re.escape(other_fp)}"
    ):
        signing.verify(bundle, str(other_pub))


def test_cli_keygen_sign_verify(tmp_path):
    bundle = make_bundle(tmp_path / "b", "a")
    code, out = run_in_pty([*EDGEKIT, "keygen", tmp_path / "k"], timeout=60)
    assert code == 0 and "fingerprint SHA256:" in out, out
    r = CliRunner().invoke(main, ["sign", str(bundle), "--key", str(tmp_path / "k"), "--json"])
    assert r.exit_code == 0, r.output
    signed = json.loads(r.output)
    assert signed["files"] == 2 and len(signed["sha256"]) == 64
    r = CliRunner().invoke(main, ["verify", str(bundle), "--public-key",
                                  str(tmp_path / "k.pub"), "--json"])  # fmt: skip
    assert r.exit_code == 0 and json.loads(r.output)["sha256"] == signed["sha256"]
    (bundle / "edgekit.json").write_text("{}")
    r = CliRunner().invoke(main, ["verify", str(bundle), "--public-key", str(tmp_path / "k.pub")])
    assert r.exit_code == 1
    assert r.output.strip().splitlines() == [
        f"Error: {bundle}: edgekit.json changed since it was signed; sign it again or ship the "
        "signed original"
    ]
    for args, msg in [
        (["sign", str(bundle), "--key", str(tmp_path / "k.pub")], "a public key, which cannot"),
        (["sign", str(bundle), "--key", str(tmp_path / "nope")], "nope"),
        (["verify", str(bundle), "--public-key", "ssh-ed25519 AAAAxx"], "not a public key"),
        (["keygen", str(tmp_path / "k")], "already exists"),
    ]:
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 1 and msg in r.output and "Traceback" not in r.output, r.output


def test_a_folder_that_is_not_a_bundle_is_not_signed(tmp_path):
    """`edgekit sign photos/` wrote photos/edgekit.sig over a folder of photos (any folder: a
    dataset, a read-only data folder as root) and said "signed"."""
    key, _, _ = signing.keygen(tmp_path / "k")
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "cat.jpg").write_bytes(b"\xff\xd8\xff\xe0 jpeg")
    r = CliRunner().invoke(main, ["sign", str(photos), "--key", str(key)])
    assert r.exit_code == 1 and r.stderr.count("Error:") == 1
    assert "not an edgekit bundle (no edgekit.json)" in r.stderr
    assert sorted(p.name for p in photos.iterdir()) == ["cat.jpg"]
    with pytest.raises(EdgekitError, match="not an edgekit bundle"):
        signing.sign(photos, key)
