"""`[http] listen` (or `[mqtt] host`) without `enabled = true` served nothing and said nothing
(issue 15): setting where to serve now turns the section on; `enabled = false` still turns it
off. Checked on a real `edgekit serve` process with a real HTTP client and a real broker."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from edgekit.stream.config import from_dict

from .conftest import edgekit_cmd, free_port


@pytest.fixture
def serve_files(tmp_path, coral_dir, small_model):
    frames = tmp_path / "frames"
    frames.mkdir()
    shutil.copy(coral_dir / "parrot.jpg", frames / "a.jpg")
    return tmp_path, frames, small_model


def _start(tmp_path, frames, model, extra: str) -> subprocess.Popen:
    cfg = tmp_path / "edgekit.toml"
    cfg.write_text(f'[model]\npath = "{model}"\ndevice = "cpu"\n\n'
                   f'[source]\nuri = "{frames}"\nloop = true\n\n{extra}')  # fmt: skip
    return subprocess.Popen([*edgekit_cmd(), "serve", "--config", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def _stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


def test_http_listen_alone_serves_the_status_page(serve_files):
    tmp_path, frames, model = serve_files
    port = free_port()
    proc = _start(tmp_path, frames, model, f'[http]\nlisten = "127.0.0.1:{port}"\n')
    try:
        deadline, body = time.monotonic() + 60, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/latest", timeout=5) as r:
                    body = json.loads(r.read())
                break
            except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
                pass
            time.sleep(0.2)
        assert body is not None, f"nothing listens on 127.0.0.1:{port} (exit {proc.poll()})"
    finally:
        err = _stop(proc)
    assert "Traceback" not in err, err


def test_explicit_enabled_false_still_turns_http_off():
    c = from_dict({"http": {"listen": "127.0.0.1:9", "enabled": False}})
    assert not c.http.enabled
    assert from_dict({"http": {"listen": "127.0.0.1:9"}}).http.enabled
    assert not from_dict({"http": {"jpeg_quality": 50}}).http.enabled  # no address: as before
    assert from_dict({"mqtt": {"host": "broker.lan"}}).mqtt.enabled
    assert not from_dict({"mqtt": {"host": "broker.lan", "enabled": False}}).mqtt.enabled


def test_mqtt_host_alone_publishes(serve_files):
    import paho.mqtt.client as mqtt

    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.path.exists(exe):
        pytest.skip("mosquitto is not installed")
    tmp_path, frames, model = serve_files
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    broker = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    got = threading.Event()
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda *a: got.set()
    try:
        for _ in range(100):
            try:
                client.connect("127.0.0.1", port)
                break
            except OSError:
                time.sleep(0.05)
        client.subscribe("hostile/#")
        client.loop_start()
        mqtt_toml = f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\ntopic = "hostile"\n'
        proc = _start(tmp_path, frames, model, mqtt_toml)
        try:
            assert got.wait(60), "nothing published on hostile/#"
        finally:
            err = _stop(proc)
        assert "Traceback" not in err, err
    finally:
        client.loop_stop()
        client.disconnect()
        broker.terminate()
        broker.wait(10)
