"""Hostile input to signing and rollouts (issue 16): key files, signature files, public keys,
rollout options, bundle archives and fleet messages. Each is one line and exit 1/2 (or an
EdgekitError in the library), never a traceback, and nothing half-written stays behind."""

from __future__ import annotations

import io
import json
import shutil
import tarfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgekit import signing
from edgekit.errors import EdgekitError
from edgekit.stream import fleet_wire as wire
from tests.stream.bundles import make_bundle

from .conftest import cli

TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=60)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(TEXT, kids, max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    d = tmp_path_factory.mktemp("signed")
    key, pub, _ = signing.keygen(d / "key")
    bundle = make_bundle(d / "bundle", "a")
    signing.sign(bundle, key)
    return {"dir": d, "bundle": bundle, "key": key, "pub": pub}


@given(data=st.binary(max_size=400))
def test_random_private_key_files(data, signed, tmp_path_factory):
    d = tmp_path_factory.mktemp("k")
    (d / "k").write_bytes(data)
    b = shutil.copytree(signed["bundle"], d / "b")
    before = (b / "edgekit.sig").read_bytes()
    r = cli("sign", b, "--key", d / "k")
    assert r.exit_code == 1 and (b / "edgekit.sig").read_bytes() == before


@given(text=TEXT)
def test_random_public_keys(text, signed):
    r = cli("verify", signed["bundle"], "--public-key", text)
    assert r.exit_code in (1, 2)


SIG_LIKE = st.fixed_dictionaries(
    {"format": st.just("edgekit-sig-1"), "files": JSONISH, "signature": JSONISH,
     "public_key": JSONISH}
)  # fmt: skip


@given(content=st.one_of(st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
                         JSONISH.map(json.dumps), SIG_LIKE.map(json.dumps)))  # fmt: skip
def test_random_signature_files(content, signed, tmp_path_factory):
    b = shutil.copytree(signed["bundle"], tmp_path_factory.mktemp("s") / "b")
    (b / "edgekit.sig").write_text(content, encoding="latin-1")
    with pytest.raises(EdgekitError):
        signing.verify(b, str(signed["pub"]))
    cli("verify", b, "--public-key", signed["pub"])  # exit 1, one line


@given(topic=TEXT, canary=st.integers(-5, 10**7), wait=TEXT, timeout=TEXT)
def test_rollout_options(topic, canary, wait, timeout, signed):
    # an unreachable broker: nothing may be sent anywhere, every outcome is a one-line refusal
    r = cli("rollout", signed["bundle"], "--broker", "127.0.0.1:1", "--topic", topic,
            "--canary", canary, "--wait", wait, "--timeout", timeout)  # fmt: skip
    assert r.exit_code in (1, 2)


@given(data=st.binary(max_size=2000))
def test_random_archives(data, tmp_path_factory):
    dest = tmp_path_factory.mktemp("u") / "dest"
    with pytest.raises(EdgekitError):
        wire.unpack(data, dest, 10**6)
    assert not dest.exists()


@given(names=st.lists(TEXT, min_size=1, max_size=5),
       sizes=st.lists(st.integers(0, 3000), min_size=5, max_size=5))  # fmt: skip
def test_random_member_names(names, sizes, tmp_path_factory):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, size in zip(names, sizes):
            info = tarfile.TarInfo(name)
            info.size = size
            tar.addfile(info, io.BytesIO(bytes(size)))
    dest = tmp_path_factory.mktemp("n") / "dest"
    try:
        wire.unpack(buf.getvalue(), dest, 4000)
    except EdgekitError:
        assert not dest.exists()
        return
    for p in dest.rglob("*"):  # whatever was accepted stays inside dest, as regular files
        assert p.resolve().is_relative_to(dest.resolve()) and not p.is_symlink()


@given(payload=st.one_of(st.binary(max_size=300), JSONISH.map(lambda v: json.dumps(v).encode())))
def test_random_messages(payload):
    try:
        msg = wire.decode(payload, 10_000)
    except EdgekitError:
        return
    assert isinstance(msg, dict)
    if "archive" in msg:
        try:
            wire.unb64(msg["archive"], 1000)
        except EdgekitError:
            pass
