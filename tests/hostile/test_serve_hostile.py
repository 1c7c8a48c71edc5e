"""Hostile input to ``edgekit serve``: random and extreme values for every config key and
option, random bytes and truncations as the config file. Each time: exit 0, 1 or 2, no
traceback, one ``Error`` line, the config untouched; a config that loads holds only finite,
in-range numbers."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil

from hypothesis import given
from hypothesis import strategies as st

from edgekit.errors import EdgekitError
from edgekit.stream import config as cfg

from .conftest import CORAL, TINY, cli, tree_digest

KEYS = [
    (section.name, f.name, f.default)
    for section in dataclasses.fields(cfg.ServeConfig)
    for f in dataclasses.fields(section.default_factory())
]
EXTREME_NUMBERS = [
    0, -1, 1, 2, 3, 65535, 65536, 10**6, 10**9, 2**31, 2**63 - 1, -(2**63),
    0.0, -0.0, 1e-300, 1e300, -1e300, math.nan, math.inf, -math.inf, 0.5, 1.5,
]  # fmt: skip
values = st.one_of(
    st.sampled_from(EXTREME_NUMBERS),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=30),
    st.sampled_from(["0", "[::1]:8080", "::1:80", "127.0.0.1:0", ":99999", "nan", "yes", ""]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # JSON string escapes are TOML basic-string escapes
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + "}"


def assert_sane(c: cfg.ServeConfig) -> None:
    """Whatever loads is usable: numbers finite and inside the documented ranges."""
    for section in dataclasses.fields(c):
        part = getattr(c, section.name)
        for f in dataclasses.fields(part):
            v = getattr(part, f.name)
            assert type(v) is type(f.default), (section.name, f.name, v)
            if isinstance(v, float):
                assert math.isfinite(v), (section.name, f.name, v)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                lo, hi = cfg._RANGES.get((section.name, f.name), (0, None))
                assert v >= lo and (hi is None or v <= hi), (section.name, f.name, v)
    if c.http.listen:
        from edgekit.stream.http import parse_listen

        parse_listen(c.http.listen)


@given(choices=st.lists(st.tuples(st.sampled_from(KEYS), values), min_size=1, max_size=4))
def test_random_values_for_every_key(tmp_path_factory, choices):
    tables: dict[str, dict[str, str]] = {}
    for (section, key, _), v in choices:
        tables.setdefault(section, {})[key] = toml_value(v)
    text = "".join(
        f"[{s}]\n" + "".join(f"{k} = {v}\n" for k, v in kv.items()) for s, kv in tables.items()
    )
    p = tmp_path_factory.mktemp("cfg") / "edgekit.toml"
    p.write_text(text)
    try:
        c = cfg.load_config(p)
    except EdgekitError as e:
        assert "\n" not in str(e) and str(p) in str(e)
        return
    assert_sane(c)


@given(data=st.binary(max_size=300))
def test_random_bytes_as_config(tmp_path_factory, data):
    p = tmp_path_factory.mktemp("cfg") / "edgekit.toml"
    p.write_bytes(data)
    try:
        assert_sane(cfg.load_config(p))
    except EdgekitError as e:
        assert "\n" not in str(e)


EXAMPLE = (CORAL.parent.parent.parent / "systemd" / "edgekit.toml").read_bytes()


@given(cut=st.integers(0, len(EXAMPLE)), flip=st.integers(0, len(EXAMPLE) - 1))
def test_truncated_and_corrupted_example_config(tmp_path_factory, cut, flip):
    p = tmp_path_factory.mktemp("cfg") / "edgekit.toml"
    body = bytearray(EXAMPLE[:cut])
    if flip < len(body):
        body[flip] ^= 0x80  # one byte turned non-ASCII (often invalid UTF-8)
    p.write_bytes(bytes(body))
    try:
        assert_sane(cfg.load_config(p))
    except EdgekitError as e:
        assert "\n" not in str(e)


OPTIONS = ["--threads", "--top-k", "--threshold", "--max-frames", "--smoothing", "--http"]
option_values = st.one_of(
    st.sampled_from(
        [
            "1000000000",
            "-1",
            "0",
            "nan",
            "inf",
            "-inf",
            "1e308",
            "[::1]:8080",
            "0",
            "65536",
            "x:y",
            "",
            "1",
            "2",
        ]
    ),  # fmt: skip
    st.text(max_size=12),
)


@given(opts=st.lists(st.tuples(st.sampled_from(OPTIONS), option_values), min_size=1, max_size=3))
def test_serve_check_with_random_options(tmp_path_factory, opts):
    d = tmp_path_factory.mktemp("serve")
    model = shutil.copy(TINY, d / "tiny.tflite")
    frames = d / "frames"
    frames.mkdir()
    shutil.copy(CORAL / "cat.bmp", frames / "cat.bmp")
    before = tree_digest(d)
    args = ["serve", "--check", "--model", model, "--source", frames, "--device", "cpu"]
    for opt, v in opts:
        args += [opt, v]
    r = cli(*args)
    assert r.exit_code in (0, 1, 2)
    if r.exit_code == 0:
        assert r.output.startswith("OK: ") or "\nOK: " in r.output
    assert tree_digest(d) == before  # inputs untouched
