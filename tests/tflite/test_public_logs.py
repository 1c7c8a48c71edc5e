"""The mapping prediction against public edgetpu_compiler verdicts on models rebuilt from their
threads (tests/data/public_compiler_logs.json, builders in scripts/public_log_models.py): each
comparable case small enough for CI is built with random weights, converted full-int8 and must
agree with every logged row. The larger ones run in `scripts/bench_mapping.py --public-logs`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from edgekit.edgetpu.mapping import predict
from edgekit.tflite import read_model

ROOT = Path(__file__).resolve().parents[2]
CASES = json.loads((ROOT / "tests/data/public_compiler_logs.json").read_text())["cases"]
CI_CASES = [c for c in CASES if c["comparable"] and c.get("ci")]


def _models():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import public_log_models
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    return public_log_models


def test_case_table_is_well_formed():
    """Every case names its source and compiler; a comparable one a builder and logged rows
    in the compiler's words."""
    from edgekit.edgetpu.limits import STATUSES

    P = _models()
    assert len({c["id"] for c in CASES}) == len(CASES)
    for c in CASES:
        assert c["url"].startswith("https://github.com/") and c["compiler"]
        if not c["comparable"]:
            continue
        assert callable(getattr(P, c["builder"]))
        for r in c["logged"]:
            assert r["on"] in ("edgetpu", "cpu") and r["count"] >= 1
            assert r.get("status", STATUSES[0]) in STATUSES


@pytest.mark.parametrize("case", CI_CASES, ids=[c["id"] for c in CI_CASES])
def test_prediction_agrees_with_the_public_log(case, tmp_path):
    from edgekit.host.tfenv import load_tensorflow

    load_tensorflow()
    P = _models()
    path = tmp_path / "model.tflite"
    path.write_bytes(P.convert(getattr(P, case["builder"])(), case["io"]))
    s = P.score(case, predict(read_model(path)))
    assert s["exact"], [r for r in s["rows"] if r["agree"] < r["count"]]


def _mean_models():
    """coral#461's MEAN at op level (the model is not in the thread; a spatial mean assumed):
    a GlobalAveragePooling2D of [1,256,128,3], of [1,64,128,3], and the thread's fix: the
    [1,256,128,3] input cut into four [1,64,128,3] parts, averaged separately, then together."""
    import keras
    from keras import layers

    out = {}
    for h in (256, 64):
        inp = keras.Input((h, 128, 3), batch_size=1)
        out[f"gap{h}"] = keras.Model(inp, layers.GlobalAveragePooling2D()(inp))
    inp = keras.Input((256, 128, 3), batch_size=1)
    parts = [layers.Cropping2D(((64 * i, 192 - 64 * i), (0, 0)))(inp) for i in range(4)]
    means = [layers.GlobalAveragePooling2D()(p) for p in parts]
    out["split"] = keras.Model(inp, layers.Average()(means))
    return out


def _predicted(tmp_path, models: dict) -> dict:
    """{name: the predicted mapping} of each Keras model converted to int8 as the thread did."""
    from edgekit.host.tfenv import load_tensorflow

    load_tensorflow()
    P = _models()
    got = {}
    for name, model in models.items():
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(P.convert(model, "int8"))
        got[name] = predict(read_model(path))
    return got


def test_mean_over_many_positions_is_refused_and_the_split_maps(tmp_path):
    """coral#461 (compiler 16): a MEAN of a [1,256,128,3] input is not mapped; split into
    [1,64,128,3] pieces, every op maps."""
    from edgekit.edgetpu.limits import MAPPED, UNSPECIFIED

    got = _predicted(tmp_path, _mean_models())
    mean = lambda p: [o.status for o in p.ops if o.op == "MEAN"]  # noqa: E731
    assert mean(got["gap256"]) == [UNSPECIFIED]
    assert mean(got["gap64"]) == [MAPPED]
    split = got["split"]
    assert sum(o.op == "MEAN" for o in split.ops) == 4 and split.fully_mapped


def _status_models():
    """Op-level rebuilds of what a compiler 15 log of a yolov5s export shows
    (tetutaro/yolo_various_framework weights/README.md): a Focus layer's four [::2] slices,
    and the detect head's 5-D TRANSPOSE (plus a 4-D one, which shares its op version)."""
    import keras
    from keras import layers

    inp = keras.Input((64, 64, 3), batch_size=1)
    x = layers.Conv2D(8, 1)(inp)
    parts = [
        layers.Lambda(lambda t, a=a, b=b: t[:, a::2, b::2, :])(x) for a in (0, 1) for b in (0, 1)
    ]
    focus = keras.Model(inp, layers.Conv2D(16, 3, padding="same")(layers.Concatenate()(parts)))
    inp = keras.Input((20, 20, 32), batch_size=1)
    x = layers.Conv2D(255, 1)(inp)
    five = layers.Permute((3, 1, 2, 4))(layers.Reshape((20, 20, 3, 85))(x))
    four = layers.Permute((2, 1, 3))(x)
    head = keras.Model(inp, [five, four])
    return {"focus": focus, "head": head}


def test_compiler_15_statuses_for_strided_slices_and_5d_transposes(tmp_path):
    """The log: 'STRIDED_SLICE 4 Only Strided-Slice with unitary strides supported' and
    'TRANSPOSE 3 Operation not supported' (5-D); a 4-D TRANSPOSE in the same model carries
    the 5-D one's version (v4), which the compiler does not map."""
    from edgekit.edgetpu.limits import NOT_SUPPORTED, STRIDED, VERSION

    got = _predicted(tmp_path, _status_models())
    slices = [o for o in got["focus"].ops if o.op == "STRIDED_SLICE"]
    assert len(slices) == 4 and {o.status for o in slices} == {STRIDED}
    transposes = {o.status: o for o in got["head"].ops if o.op == "TRANSPOSE"}
    assert set(transposes) == {NOT_SUPPORTED, VERSION}
    assert transposes[NOT_SUPPORTED].reason.startswith("TRANSPOSE of a 5-D tensor")
    assert "works on a 5-D tensor" in transposes[VERSION].reason
