"""Serve settings out of their meaningful range are refused, naming the TOML key and file, or
the flag the user typed (not an internal ``section.key``)."""

from __future__ import annotations

import pytest

from edgekit.errors import EdgekitError
from edgekit.stream.config import load_config, override


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[model]\nthreshold = 2\n", "model.threshold = 2.0 must be between 0 and 1"),
        ("[model]\ntop_k = 0\n", "model.top_k = 0 must be at least 1"),
    ],
)
def test_out_of_range_in_file(tmp_path, text, message):
    p = tmp_path / "edgekit.toml"
    p.write_text(text)
    with pytest.raises(EdgekitError, match=message) as e:
        load_config(p)
    assert str(e.value).startswith(f"{p}: ")


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("model__threshold", 1.5, "--threshold = 1.5 must be between 0 and 1"),
        ("model__top_k", 0, "--top-k = 0 must be at least 1"),
        ("pipeline__max_frames", -2, "--max-frames must not be negative"),
        ("model__threads", "x", "--threads must be an integer"),
    ],
)
def test_flag_errors_name_the_flag(flag, value, message):
    with pytest.raises(EdgekitError) as e:
        override(load_config(None), **{flag: value})
    assert str(e.value).startswith(message), str(e.value)
    assert "flag:" not in str(e.value)
