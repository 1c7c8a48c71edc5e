"""TLS and a password on the broker ([mqtt] tls, ca_file, username, password): a real mosquitto
with a certificate made by the test, one real `edgekit serve` publishing results and taking a
rollout over it, and `edgekit rollout --cafile --username --password`."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from edgekit import signing

from .bundles import make_bundle, version_of
from .conftest import edgekit_cmd, free_port


def make_certs(d):
    """A CA and a server certificate for 127.0.0.1 signed by it (PEM files in ``d``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def cert(subject, issuer, key, sign_key, ca, san=None):
        b = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return b.sign(sign_key, hashes.SHA256())

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = cert(name("edgekit test CA"), name("edgekit test CA"), ca_key, ca_key, True)
    srv = cert(name("127.0.0.1"), name("edgekit test CA"), key, ca_key, False,
               [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])  # fmt: skip
    pem = serialization.Encoding.PEM
    (d / "ca.pem").write_bytes(ca.public_bytes(pem))
    (d / "server.pem").write_bytes(srv.public_bytes(pem))
    (d / "server.key").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))  # fmt: skip
    return d / "ca.pem"


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory):
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    assert os.path.exists(exe), "mosquitto is needed: apt-get install -y mosquitto"
    d = tmp_path_factory.mktemp("tls")
    ca = make_certs(d)
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(d / "pw"), "cam", "s3cret"], check=True)
    port = free_port()
    (d / "m.conf").write_text(
        f"listener {port} 127.0.0.1\ncafile {ca}\ncertfile {d / 'server.pem'}\n"
        f"keyfile {d / 'server.key'}\nallow_anonymous false\npassword_file {d / 'pw'}\n"
        "persistence false\nuser root\n"  # as root it would switch to "mosquitto", which
        # cannot read these files in the 0700 pytest folders
    )
    proc = subprocess.Popen([exe, "-c", str(d / "m.conf")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield {"port": port, "ca": ca}
    proc.terminate()
    proc.wait(10)


def test_results_and_rollout_over_tls_with_a_password(tls_broker, video_avi, tmp_path):
    import paho.mqtt.client as mqtt

    key, pub, _ = signing.keygen(tmp_path / "k")
    a, b = (make_bundle(tmp_path / v, v) for v in "ab")
    for x in (a, b):
        signing.sign(x, key)
    port, ca = tls_broker["port"], tls_broker["ca"]
    cfg = tmp_path / "serve.toml"
    cfg.write_text(
        f'[model]\npath = "{a}"\ndevice = "cpu"\ntop_k = 1\n'
        f'[source]\nuri = "{video_avi}"\nloop = true\nrealtime = true\n'
        f'[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {port}\ntopic = "tls-cam"\n'
        f'username = "cam"\npassword = "s3cret"\ntls = true\nca_file = "{ca}"\n'
        f'[fleet]\ntopic = "tls-fleet"\ndevice = "cam"\npublic_key = "{pub}"\n'
        f'state_dir = "{tmp_path / "state"}"\n'
    )
    seen, got = [], threading.Event()
    sub = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)
    sub.username_pw_set("cam", "s3cret")
    sub.tls_set(ca_certs=str(ca))
    sub.on_message = lambda c, u, m: (seen.append((m.topic, m.payload.decode())), got.set())
    sub.connect("127.0.0.1", port)
    sub.subscribe([("tls-cam/status", 1), ("tls-cam/event", 1), ("tls-fleet/+/status", 1)])
    sub.loop_start()
    proc = subprocess.Popen([*edgekit_cmd(), "serve", "--config", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert json.loads(proc.stdout.readline())["frame"] >= 1
        end = time.monotonic() + 30
        while not ({t for t, p in seen} >= {"tls-cam/status", "tls-fleet/cam/status"}):
            assert time.monotonic() < end, seen
            got.wait(0.5)
            got.clear()
        base = ["rollout", str(b), "--broker", f"127.0.0.1:{port}", "--topic", "tls-fleet",
                "--wait", "1", "--json"]  # fmt: skip
        refused = subprocess.run([*edgekit_cmd(), *base, "--cafile", str(ca)],
                                 capture_output=True, text=True, timeout=120)  # fmt: skip
        assert refused.returncode == 1 and "refused" in refused.stderr, refused.stderr
        out = subprocess.run([*edgekit_cmd(), *base, "--cafile", str(ca), "--username", "cam"],
                             capture_output=True, text=True, timeout=120,
                             env={**os.environ, "EDGEKIT_MQTT_PASSWORD": "s3cret"})  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert [r["state"] for r in json.loads(out.stdout)["devices"]] == ["deployed"]
        lines = []
        for raw in proc.stdout:
            lines.append(json.loads(raw))
            if version_of(lines[-1]) == "b":
                break
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
        sub.loop_stop()
        sub.disconnect()
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert ("tls-cam/status", "online") in seen
    # the reload is an MQTT event like the others
    reloaded = [json.loads(p) for t, p in seen if t == "tls-cam/event" and "model_reloaded" in p]
    assert reloaded and reloaded[0]["sha256"] == signing.bundle_digest(b)
