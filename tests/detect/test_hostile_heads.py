"""Hostile heads (Hypothesis): any output layout, dtype, quantization and content, any params.
A decoder either refuses with one EdgekitError line or returns at most ``max_detections``
finite boxes with scores >= the threshold; never another exception, never NaN in a result."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from edgekit.detect.decoders import HeadIO, OutputTensor, available_decoders, get_decoder
from edgekit.errors import EdgekitError

SETTINGS = settings(derandomize=True, database=None, deadline=None, max_examples=150,
                    suppress_health_check=[HealthCheck.too_slow])  # fmt: skip

dims = st.integers(0, 40)
shapes = st.one_of(
    st.tuples(st.just(1), dims, dims),  # rank 3: what every decoder wants
    st.tuples(st.integers(0, 3), dims, dims),
    st.lists(dims, min_size=0, max_size=4).map(tuple),
)
scales = st.one_of(
    st.sampled_from([0.0, 1 / 255, 0.1, 1e-30, 1e30, -0.5, math.nan, math.inf]),
    st.floats(0, 10, allow_nan=False),
)
dtypes = st.sampled_from(["int8", "uint8", "float32"])
odd_dtypes = st.sampled_from(["int8", "uint8", "float32", "string", "int4", "bool", "complex64"])
params = st.fixed_dictionaries(
    {},
    optional={
        "strides": st.one_of(st.lists(st.sampled_from([1, 2, 4, 8, 16, 32]), max_size=3),
                             st.just([8, math.nan])),
        "box_units": st.sampled_from(["auto", "normalized", "pixels", "cm"]),
        "max_candidates": st.sampled_from([1, 5, 10**7, 0]),
        "score_threshold": st.sampled_from([0.0, 0.5, math.nan, 2.0]),
        "letterbox": st.sampled_from([True, False, "yes"]),
        "bogus": st.just(1),
    },
)  # fmt: skip


@st.composite
def heads(draw):
    n = draw(st.integers(1, 3))
    outs, raw = [], {}
    for i in range(n):
        shape, dtype = draw(shapes), draw(odd_dtypes)
        zp = draw(st.integers(-128, 127)) if dtype == "int8" else draw(st.integers(0, 255))
        o = OutputTensor(10 + i, draw(st.sampled_from(["out", "TFLite_Detection_PostProcess:2",
                                                       "detection_boxes", "num_detections"])),
                         shape, dtype, draw(scales), zp)  # fmt: skip
        outs.append(o)
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        if dtype not in ("int8", "uint8", "float32"):  # declared oddly, raw bytes anyway
            data = rng.integers(0, 255, size=shape).astype(np.uint8)
        elif dtype == "float32":
            data = rng.choice(np.array([0, 0.3, 0.9, 1.5, 400, -1, np.nan, np.inf], np.float32),
                              size=shape)  # fmt: skip
        else:
            info = np.iinfo(dtype)
            data = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
        raw[o.index] = data
    size = draw(st.sampled_from([(32, 32), (320, 320), (30, 50), (1, 1)]))
    post = draw(st.sampled_from([None, tuple(o.index for o in outs)[:4], (10, 10, 10, 10)]))
    return HeadIO(size, tuple(outs), post), raw


def _data(draw, shape, dtype):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if dtype not in ("int8", "uint8", "float32"):  # a declared dtype no decoder reads
        return rng.integers(0, 255, size=shape).astype(np.uint8)
    if dtype == "float32":
        vals = np.array([0, 0.3, 0.9, 1.5, 400, -1, np.nan, np.inf, -np.inf], np.float32)
        return rng.choice(vals, size=shape)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


@st.composite
def valid_heads(draw, name):
    """A head of the right layout for ``name`` with arbitrary content and quantization."""
    dtype = draw(st.one_of(dtypes, dtypes, dtypes, odd_dtypes))
    scale = draw(st.sampled_from([0.0, 1 / 255, 0.05, 2.0, 1e30]))
    zp = draw(st.integers(-128, 127)) if dtype == "int8" else draw(st.integers(0, 255))
    nc = draw(st.integers(1, 6))
    if name == "ssd-postprocess":
        n = draw(st.integers(0, 20))
        shapes_ = [(1, n, 4), (1, n), (1, n), (1,)]
        outs = tuple(OutputTensor(20 + i, "x", s_, "float32") for i, s_ in enumerate(shapes_))
        raw = {o.index: _data(draw, o.shape, "float32") for o in outs}
        return HeadIO((32, 32), outs, (20, 21, 22, 23)), raw
    if name == "yolov8":
        shape = (1, 4 + nc, draw(st.integers(4 + nc + 1, 60)))
    elif name == "yolov5":
        shape = (1, draw(st.integers(5 + nc + 1, 60)), 5 + nc)
    else:
        shape = (1, 16, 4 + nc)  # strides [8] on 32x32
    o = OutputTensor(7, "out", shape, dtype, scale, zp)
    return HeadIO((32, 32), (o,)), {7: _data(draw, shape, dtype)}


@SETTINGS
@given(
    name=st.sampled_from(available_decoders()),
    data=st.data(),
    p=params,
    threshold=st.sampled_from([0.0, 0.25, 0.9999, 1.0]),
    max_det=st.sampled_from([1, 3, 100]),
)
def test_any_head_decodes_or_is_refused_in_one_line(name, data, p, threshold, max_det):
    io, raw = data.draw(st.one_of(valid_heads(name), valid_heads(name), heads()))
    if data.draw(st.booleans()):
        p = {"strides": [8]} if name == "edgekit-anchor-free" else {}
    try:
        dec = get_decoder(name)(io, p)
        boxes, scores, classes = dec.decode(raw, threshold, 0.45, max_det)
    except EdgekitError as e:
        assert "\n" not in str(e)
        event(f"{name}: refused")
        return
    event(f"{name}: decoded, {'some' if len(scores) else 'no'} detections")
    assert boxes.shape == (len(scores), 4) and len(classes) == len(scores) <= max_det
    assert np.isfinite(boxes).all() and np.isfinite(scores).all()
    assert (scores >= threshold).all()
    assert classes.dtype.kind == "i"


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
              st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=10,
)  # fmt: skip
detection_blocks = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"decoder": st.one_of(st.sampled_from(available_decoders()), json_values)},
        optional={
            "params": st.one_of(
                json_values,
                st.dictionaries(
                    st.sampled_from(["strides", "score_threshold", "iou", "max_detections",
                                     "letterbox", "fill", "box_units", "max_candidates", "x"]),
                    json_values, max_size=4,
                ),
            ),
            "extra": json_values,
        },
    ),
)  # fmt: skip


@settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(block=detection_blocks, task=st.sampled_from(["detect", "detect", "classify", 7]))
def test_hostile_detection_manifests_are_one_line(detect_bundle, tmp_path_factory, block, task):
    import json
    import shutil

    from click.testing import CliRunner
    from PIL import Image

    from edgekit.cli import main
    from tests.detect.conftest import scene

    d = tmp_path_factory.mktemp("hostile")
    b = d / "bundle"
    shutil.copytree(detect_bundle, b)
    m = json.loads((b / "edgekit.json").read_text())
    m["detection"], m["task"] = block, task
    (b / "edgekit.json").write_text(json.dumps(m))
    img = d / "x.png"
    Image.fromarray(scene(32, 32, [("red", 0, 0, 8, 8)])).save(img)
    before = (b / "edgekit.json").read_bytes()
    r = CliRunner().invoke(main, ["detect", str(b), str(img), "--json"])
    assert r.exit_code in (0, 1, 2), r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output
    if r.exit_code:
        errors = [ln for ln in r.stderr.splitlines() if ln.startswith("Error:")]
        assert len(errors) == 1, r.stderr
    else:
        assert json.loads(r.stdout)["detections"][0]["label"] == "red"
    assert (b / "edgekit.json").read_bytes() == before
