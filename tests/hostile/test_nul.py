"""NUL, the one character no file name holds: argv cannot carry it, but a TOML string can
(``"labels\\u0000.txt"``). Before: ``[model] labels`` or ``[mqtt] ca_file`` holding one raised
``ValueError: embedded null byte`` (a traceback) from os.open/os.stat. And a text file holding
NUL bytes (UTF-16 saved without its byte-order mark decodes as "valid" UTF-8) gave labels like
``\\x00c\\x00a\\x00t``."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .conftest import TINY, cli

KEYS = [("model", "path"), ("model", "labels"), ("model", "anchors"), ("source", "uri"),
        ("cascade", "classifier"), ("cascade", "labels"), ("mqtt", "ca_file"),
        ("fleet", "public_key")]  # fmt: skip


def _toml_string(s: str) -> str:
    return '"' + "".join(f"\\u{ord(c):04x}" if ord(c) < 32 or c in '"\\' else c
                         for c in s) + '"'  # fmt: skip


@pytest.mark.parametrize("section, key", KEYS)
@settings(max_examples=5)
@given(before=st.text(max_size=6), after=st.text(max_size=6))
def test_a_nul_in_any_path_of_the_config_is_one_line(tmp_path_factory, photo, section, key,
                                                     before, after):  # fmt: skip
    d = tmp_path_factory.mktemp("nul")
    tables = {"model": {"path": str(TINY)}, "source": {"uri": str(photo.parent)}}
    tables.setdefault(section, {})[key] = f"{d}/{before}\x00{after}"
    if section == "mqtt":
        tables["mqtt"]["enabled"] = True
    config = d / "edgekit.toml"
    config.write_text("".join(
        f"[{sec}]\n" + "".join(f"{k} = {_toml_string(v) if isinstance(v, str) else 'true'}\n"
                               for k, v in keys.items())
        for sec, keys in tables.items()))  # fmt: skip
    r = cli("serve", "--check", "--config", config)
    # [model] anchors count only for a yolov3 head: a classifier never reads them
    assert r.exit_code == (0 if key == "anchors" else 1), (config.read_text(), r.output)
    assert "\x00" not in r.output


def test_a_label_file_of_nul_bytes_is_refused(tmp_path, photo):
    labels = tmp_path / "labels.txt"
    labels.write_bytes("cat\ndog\n".encode("utf-16-le"))  # Notepad's "Unicode" minus its BOM
    r = cli("classify", TINY, photo, "--labels", labels, "-d", "cpu")
    assert r.exit_code == 1, r.output
    assert r.output.strip().splitlines()[-1] == (
        f"Error: {labels}: holds NUL bytes, not text (UTF-16 without a byte-order mark?); save "
        "the label file as UTF-8")
