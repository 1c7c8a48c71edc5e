"""A file name is user input too: one holding a newline, a carriage return or an escape sequence
(``touch $'a\\nb.jpg'``, a name copied from a web page) must stay inside the one ``Error: ...``
line that names it, and must not rewrite or recolour the terminal. Before: ``Error: x`` on one
line and ``y.jpg: no such image file; check the path`` on the next (classify, sign, serve,
inspect, ...); a per-image error of classify/detect and their result lines split the same way.

Each example names a file that does not exist (or a truncated photo) at every file-taking
argument and option of the commands below, the rest of the command line valid."""

from __future__ import annotations

import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgekit.errors import one_line

from .conftest import CORAL, ROOT, TINY, cli

# '{}' is the hostile name; the other arguments are valid so the name is what gets refused.
# Every file-taking argument and option of the runtime and fleet commands (convert, train and
# zoo refuse their paths through the same Error line: tests/hostile/test_properties.py).
SLOTS = {
    "classify:model": ["classify", "{}", "{photo}", "-d", "cpu"],
    "classify:images": ["classify", "{tiny}", "{}", "-d", "cpu"],
    "classify:--labels": ["classify", "{tiny}", "{photo}", "-d", "cpu", "--labels", "{}"],
    "detect:model": ["detect", "{}", "{photo}", "-d", "cpu"],
    "detect:--anchors": ["detect", "{tiny}", "{photo}", "--anchors", "{}"],
    "bench:model": ["bench", "{}", "-d", "cpu", "-n", "1"],
    "bench:--image": ["bench", "{tiny}", "-d", "cpu", "-n", "1", "--image", "{}"],
    "bench:--classify": ["bench", "{tiny}", "-d", "cpu", "-n", "1", "--classify", "{}"],
    "inspect:model": ["inspect", "{}"],
    "inspect:--compiled": ["inspect", "{tiny}", "--compiled", "{}"],
    "inspect:--log": ["inspect", "{tiny}", "--log", "{}"],
    "inspect:--with": ["inspect", "{tiny}", "--with", "{}"],
    "compile:models": ["compile", "{}", "--compiler", "{compiler}"],
    "sign:bundle": ["sign", "{}", "--key", "{key}"],
    "verify:--public-key": ["verify", "{dir}", "--public-key", "{}"],
    "serve:--model": ["serve", "--check", "--model", "{}", "--source", "{dir}"],
    "serve:--source": ["serve", "--check", "--model", "{tiny}", "--source", "{}"],
    "serve:--labels": ["serve", "--check", "--model", "{tiny}", "--source", "{dir}",
                       "--labels", "{}"],
    "serve:--config": ["serve", "--check", "--config", "{}"],
    "doctor:--model": ["doctor", "--no-probe", "--model", "{}"],
}  # fmt: skip

# Characters a name can hold that break or rewrite a line (no NUL: argv cannot carry it).
BREAKERS = ["\n", "\r", "\x1b[2K", "\x1b]0;title\x07", "\t", "\x0b", "\x0c", "\x85", "\u2028"]
names = st.tuples(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00/"),
            max_size=8),
    st.sampled_from(BREAKERS),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00/"),
            max_size=8),
).map(lambda t: f"{t[0]}{t[1]}TAIL{t[2]}")  # fmt: skip


def _names_escaped(output: str, name: str) -> None:
    """No output line begins inside the name, and no raw control character leaks."""
    for line in output.splitlines():
        assert not line.startswith("TAIL"), output
    assert not any(c in output for c in "\r\x1b\x0b\x0c\x85\u2028\x07"), repr(output)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("names")
    cli("keygen", d / "fleet.key")
    return {"key": d / "fleet.key", "dir": d, "tiny": shutil.copy(TINY, d / "tiny.tflite"),
            "photo": shutil.copy(CORAL / "parrot.jpg", d / "parrot.jpg"),
            "compiler": ROOT / "tests" / "convert" / "fake_edgetpu_compiler"}  # fmt: skip


@pytest.mark.parametrize("slot", sorted(SLOTS))
@settings(max_examples=6)
@given(name=names)
def test_a_missing_file_named_with_a_line_break_is_one_line(slot, world, name):
    path = world["dir"] / "missing" / name
    argv = [a.format(**world) if a != "{}" else str(path) for a in SLOTS[slot]]
    r = cli(*argv)
    assert r.exit_code in (1, 2), (argv, r.output)
    _names_escaped(r.output, name)
    assert one_line(str(path)) in r.output or r.exit_code == 2, r.output


@settings(max_examples=10)
@given(name=names)
def test_an_unreadable_photo_named_with_a_line_break_keeps_one_line_per_image(tmp_path_factory,
                                                                             name):  # fmt: skip
    d = tmp_path_factory.mktemp("photo")
    bad = d / f"{name}.jpg"
    bad.write_bytes((CORAL / "parrot.jpg").read_bytes()[:1000])  # truncated
    good = shutil.copy(CORAL / "parrot.jpg", d / f"good{name}.jpg")
    r = cli("classify", TINY, bad, good, "-d", "cpu")
    assert r.exit_code == 1, r.output
    _names_escaped(r.output, name)
    lines = r.output.splitlines()
    assert sum(line.startswith("Error: ") for line in lines) == 1, r.output
    assert sum(one_line(str(good)) + ": " in line for line in lines) == 1, r.output


def test_one_line_escapes_what_breaks_a_line_and_keeps_the_rest():
    assert one_line("a\nb\rc\td") == "a\\nb\\rc\\td"
    assert one_line("\x1b[31mred\x00\x7f\x85\u2028") == "\\x1b[31mred\\x00\\x7f\\x85\\u2028"
    assert one_line("ü é 猫 ∞ 'quoted' \\") == "ü é 猫 ∞ 'quoted' \\"
