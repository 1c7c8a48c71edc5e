"""Hostile input to the Edge TPU stack surface (issue 10): `edgekit stack` options, doctor's and
the runtime's library/timeout choices, the probe cache file. Each is one line and exit 1/2, or a
value the code can use, never a traceback, a hang or a trusted lie."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgekit.backends import probe
from edgekit.errors import EdgekitError

from .conftest import cli

TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=40)


@given(os_name=TEXT, arch=TEXT, python=TEXT)
def test_stack_options(os_name, arch, python):
    r = cli("stack", "--os", os_name, "--arch", arch, "--python", python, "--json")
    if r.exit_code == 0:
        assert json.loads(r.stdout)["status"] in ("proven", "documented", "experimental")


@given(value=TEXT)
def test_probe_timeout_env(value, monkeypatch_env):
    monkeypatch_env("EDGEKIT_PROBE_TIMEOUT", value)
    try:
        t = probe.probe_timeout()
    except EdgekitError as e:
        assert e.exit_code == 2 and "EDGEKIT_PROBE_TIMEOUT" in str(e)
    else:
        assert 1 <= t <= 600


@given(content=st.one_of(TEXT, st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(TEXT, kids, max_size=4),
    max_leaves=12).map(json.dumps)))  # fmt: skip
def test_probe_cache_content_is_never_trusted_blindly(content, tmp_path_factory):
    base = tmp_path_factory.mktemp("cache")
    lib = base / "libedgetpu.so.1"
    lib.write_bytes(b"\x7fELF not really")
    saved = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(base)
    try:
        key = probe.cache_key(lib)
        for text in (content, json.dumps({key: _maybe_json(content)})):
            (base / "edgekit").mkdir(exist_ok=True)
            (base / "edgekit/probe.json").write_text(text)
            hit = probe._cached(probe._read_cache().get(key))
            assert hit is None or (hit.status in probe.CACHEABLE and isinstance(hit.detail, str))
    finally:
        if saved is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = saved


def _maybe_json(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


@pytest.mark.parametrize("value", ["", "/nonexistent/libedgetpu.so.1", "/dev/null", "/"])
def test_libedgetpu_option_values(value, bundle, photo):
    r = cli("classify", bundle, photo, "-d", "cpu", "--libedgetpu", value)
    if value:
        assert r.exit_code == 2 and "--libedgetpu" in r.output
    else:
        assert r.exit_code == 0  # empty: the option is not given


@pytest.fixture
def monkeypatch_env():
    """setenv that survives Hypothesis' repeated calls within one test (restored at the end)."""
    saved = os.environ.get("EDGEKIT_PROBE_TIMEOUT")

    def set_(name, value):
        os.environ[name] = value

    yield set_
    if saved is None:
        os.environ.pop("EDGEKIT_PROBE_TIMEOUT", None)
    else:
        os.environ["EDGEKIT_PROBE_TIMEOUT"] = saved
