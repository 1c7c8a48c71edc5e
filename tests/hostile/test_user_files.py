"""Hostile input to what users write by hand for the cascade and several Edge TPUs (issue 17):
the darknet anchors file (--anchors, [model] anchors) and the device list (--device, [model]
device). Either a clean result or one EdgekitError line, never another exception, a hang on a
FIFO or a line of hundreds of numbers. ([cascade] keys are in test_serve_hostile's KEYS.)"""

from __future__ import annotations

import math
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgekit.detect.yolov3 import TINY_ANCHORS, read_anchors
from edgekit.errors import EdgekitError
from edgekit.stream.pool import expand_devices

NUMBERS = st.one_of(
    st.integers(-10, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "inf", "-0", "1e400", "0x10", "1_0", "", "  ", "10.5", "٣"]),
)
SEPARATORS = st.sampled_from([",", ", ", " ", "\n", ",,", "\t", "#", "=", "[yolo]\n"])
ANCHOR_TEXT = st.lists(st.tuples(NUMBERS, SEPARATORS), max_size=20).map(
    lambda parts: "".join(n + s for n, s in parts)
)


@given(text=ANCHOR_TEXT | st.text(max_size=200),
       prefix=st.sampled_from(["", "anchors = ", "\ufeff"]))
def test_anchors_file_random_text(tmp_path_factory, text, prefix):
    p = tmp_path_factory.mktemp("anchors") / "anchors.txt"
    p.write_text(prefix + text, encoding="utf-8")
    try:
        pairs = read_anchors(p)
    except EdgekitError as e:
        assert "\n" not in str(e) and len(str(e)) < 400 and str(p) in str(e), str(e)
        return
    assert 1 <= len(pairs) <= 64
    assert all(len(a) == 2 and all(math.isfinite(x) and 0 < x < 1e5 for x in a) for a in pairs)


@given(pairs=st.lists(st.tuples(st.integers(1, 999), st.integers(1, 999)), min_size=1,
                      max_size=9), sep=st.sampled_from([", ", ",", "  ", "\n"]),
       bom=st.booleans(), crlf=st.booleans())  # fmt: skip
def test_darknet_anchors_read_back_as_written(tmp_path_factory, pairs, sep, bom, crlf):
    """Windows editors save a BOM and CRLF: the anchors still read (the BOM was refused as
    'not darknet anchors')."""
    text = sep.join(f"{w},{h}" for w, h in pairs) + ("\r\n" if crlf else "\n")
    p = tmp_path_factory.mktemp("anchors") / "anchors.txt"
    p.write_bytes(("\ufeff" if bom else "").encode() + text.encode())
    assert read_anchors(p) == [[float(w), float(h)] for w, h in pairs]


def test_anchors_file_that_is_not_a_regular_file_or_is_huge(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # read_text blocked on it forever: detect --anchors FIFO hung
    with pytest.raises(EdgekitError, match="is a FIFO .named pipe., not an anchors file"):
        read_anchors(fifo)
    with pytest.raises(EdgekitError, match="is a folder, not an anchors file"):
        read_anchors(tmp_path)
    many = tmp_path / "many.txt"
    many.write_text(", ".join(["5"] * 1000))
    with pytest.raises(EdgekitError) as e:
        read_anchors(many)  # the whole list of 1000 numbers was the message
    assert "1000 numbers, not 1 to 64 anchor pairs" in str(e.value) and len(str(e.value)) < 300
    good = tmp_path / "good.txt"
    good.write_text("10,14, 23,27, 37,58, 81,82, 135,169, 344,319")
    assert read_anchors(good) == [list(map(float, a)) for a in TINY_ANCHORS]


DEVICE_PARTS = st.sampled_from(
    ["usb", "usb:0", "usb:1", "usb:00", "USB:1", "pci", "pci:0", ":0", ":1", "*", "usb:*",
     "pci:*", ":*", "cpu", "auto", "", " ", "usb:-1", "usb:x", "usb:99999999999999999999",
     "usb: 0", "usb:0:1", "\x00", "tpu"]
)  # fmt: skip


@given(parts=st.lists(DEVICE_PARTS, max_size=4), sep=st.sampled_from([",", ", ", ",,", ";"]))
def test_device_list_random_items(two_corals_root, parts, sep):
    spec = sep.join(parts)
    try:
        devices = expand_devices(spec, two_corals_root)
    except EdgekitError as e:
        assert "\n" not in str(e), str(e)
        return
    if devices is None:  # one device: handled by the single-device path
        return
    from edgekit.backends.devices import parse_device

    keys = [(k, i or 0) for k, i in map(parse_device, devices)]
    assert len(set(keys)) == len(keys), devices  # never the same Edge TPU twice
    assert "cpu" not in devices and "auto" not in devices


def test_the_same_device_spelled_twice_is_refused(two_corals_root):
    """usb:00 and usb:0 (or usb and usb:0) are one Coral: two workers on it and libedgetpu
    aborts the first process."""
    for spec in ("usb:0,usb:00", "usb,usb:0", "pci:0,pci"):
        with pytest.raises(EdgekitError, match="names a device twice"):
            expand_devices(spec, two_corals_root)
    assert expand_devices("usb:0,usb:1", two_corals_root) == ["usb:0", "usb:1"]


@pytest.fixture(scope="module")
def two_corals_root(tmp_path_factory):
    from tests.runtime.runtime_fakes import make_sysfs
    from tests.stream.test_pool import TWO

    return make_sysfs(tmp_path_factory.mktemp("root"), usb=TWO)
