"""`bench --json` prints times to 1 us and frames/s to 2 decimals: it printed what the timer
gave ("p50_ms": 0.42364749999999995, "fps": 1192.8504361975713), for one model, a detector's
decode and a cascade."""

from __future__ import annotations

import json

from click.testing import CliRunner

from edgekit.cli import main
from tests.cascade.test_bench_cascade import photo  # noqa: F401  (fixture)
from tests.json_rounding import unrounded


def _too_precise(doc) -> list:
    return unrounded(doc, ("_ms", "fps"))


def _bench(*args):
    r = CliRunner().invoke(main, ["bench", *map(str, args), "-d", "cpu", "--runs", "7",
                                  "--warmup", "1", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_one_model(coral_dir):
    out = _bench(coral_dir / "mobilenet_v1_0.25_128_quant.tflite")
    assert out["p50_ms"] > 0 and out["fps"] > 0
    assert _too_precise(out) == []


def test_detector_and_cascade(detect_bundle, species_bundle, photo):  # noqa: F811
    det = _bench(detect_bundle, "--image", photo)
    assert det["decode"]["p50_ms"] >= 0 and _too_precise(det) == []
    casc = _bench(detect_bundle, "--classify", species_bundle, "--image", photo)
    assert casc["per_frame"]["wall"]["p50_ms"] > 0 and _too_precise(casc) == []
