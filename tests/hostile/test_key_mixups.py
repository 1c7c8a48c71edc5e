"""The fleet commands' likeliest slips: the two halves of a key pair swapped, and a broker address
written wrong. Before: ``sign --key fleet.key.pub`` said "not a private key (Unable to load PEM
file. See https://cryptography.io/en/latest/faq/... for more details. MalformedFraming)",
``verify --public-key fleet.key`` "not a public key (Valid PEM but no BEGIN PUBLIC KEY/END
PUBLIC KEY delimiters...)", and ``rollout --broker mqtt.local`` "bad HTTP address"."""

from __future__ import annotations

import pytest

from .conftest import cli, make_bundle


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    cli("keygen", d / "fleet.key")
    bundle = make_bundle(d / "bundle")
    cli("sign", bundle, "--key", d / "fleet.key")
    return {"key": d / "fleet.key", "pub": d / "fleet.key.pub", "bundle": bundle, "dir": d}


def _last(r) -> str:
    return r.output.strip().splitlines()[-1]


def test_signing_with_the_public_half_says_so(keys):
    r = cli("sign", keys["bundle"], "--key", keys["pub"])
    assert r.exit_code == 1, r.output
    assert _last(r) == (f"Error: {keys['pub']}: a public key, which cannot sign; pass the private "
                        "key `edgekit keygen` wrote beside it (KEYFILE, not KEYFILE.pub)")


def test_a_pem_public_key_as_the_signing_key_says_so(keys, tmp_path):
    from cryptography.hazmat.primitives import serialization

    from edgekit.signing_keys import load_public_key

    pem = load_public_key(keys["pub"]).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "k.pem").write_bytes(pem)
    r = cli("sign", keys["bundle"], "--key", tmp_path / "k.pem")
    assert r.exit_code == 1 and "a public key, which cannot sign" in _last(r), r.output


def test_verifying_with_the_private_half_says_so_and_never_echoes_it(keys):
    r = cli("verify", keys["bundle"], "--public-key", keys["key"])
    assert r.exit_code == 1, r.output
    assert _last(r) == (f"Error: {keys['key']}: a private key, not the public one (keep it "
                        "secret); give the .pub file `edgekit keygen` wrote beside it")
    secret = keys["key"].read_text().splitlines()[1]
    assert secret not in r.output


def test_the_private_key_as_serve_fleet_public_key_is_refused(keys, tmp_path):
    config = tmp_path / "edgekit.toml"
    config.write_text(f'[model]\npath = "{keys["bundle"]}"\n[source]\nuri = "{keys["dir"]}"\n'
                      f'[fleet]\npublic_key = "{keys["key"]}"\n')  # fmt: skip
    r = cli("serve", "--check", "--config", config)
    assert r.exit_code == 1 and "a private key, not the public one" in _last(r), r.output


def test_a_damaged_private_key_is_one_short_line(keys, tmp_path):
    bad = tmp_path / "bad.key"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nnot base64\n")
    r = cli("sign", keys["bundle"], "--key", bad)
    assert r.exit_code == 1 and "not a private key" in _last(r), r.output
    assert "https://" not in r.output and "MalformedFraming" not in r.output


@pytest.mark.parametrize("broker", ["mqtt.local", "mqtt.local:99999", "mqtt.local:0", "::1:1883",
                                    "mqtt.local:port"])  # fmt: skip
def test_a_bad_broker_address_speaks_of_the_broker(keys, broker):
    r = cli("rollout", keys["bundle"], "--broker", broker, "--topic", "edgekit/fleet")
    assert r.exit_code == 1, r.output
    assert _last(r) == (f"Error: --broker {broker!r}: not HOST:PORT with a port 1-65535; "
                        "e.g. mqtt.local:1883 or [fd00::5]:1883")
