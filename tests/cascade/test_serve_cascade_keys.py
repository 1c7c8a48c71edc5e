"""serve's [cascade] as a user meets it: every key's error line names the key (the config says
where to look, not only "no such label file"), keys that would be ignored without a classifier
are refused, the classifier's labels and top-k are flags too, and the numbers of a cascade's
lines and /latest are rounded to what they mean (ms to 1 us, scores to 4 decimals)."""

from __future__ import annotations

import json
import subprocess
import urllib.request

import pytest
from click.testing import CliRunner
from PIL import Image

from edgekit.cli import main
from tests.cascade.conftest import serving
from tests.json_rounding import unrounded
from tests.stream.conftest import edgekit_cmd
from tests.stream.test_serve_detect import SCENES, write_video


@pytest.fixture(scope="module")
def scenes_avi(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("video") / "scenes.avi", SCENES)


def _check(tmp_path, detect_bundle, scenes_avi, cascade: str, *flags: str):
    cfg = tmp_path / "edgekit.toml"
    cfg.write_text(f'[model]\npath = "{detect_bundle}"\ndevice = "cpu"\n'
                   f'[source]\nuri = "{scenes_avi}"\n[cascade]\n{cascade}\n')  # fmt: skip
    return CliRunner().invoke(main, ["serve", "--config", str(cfg), "--check", *flags])


@pytest.mark.parametrize(
    "key, value, says",
    [
        ("labels", '"{tmp}/missing.txt"', "no such label file"),
        ("labels", '"{tmp}"', "is a folder"),
        ("labels", '"{bin}"', "not UTF-8"),
        ("crop_labels", '"dragon"', "not a label of the detector"),
        ("crop_labels", '",,"', "no label names"),
        ("classifier", '"{tmp}/missing.tflite"', "no such model file"),
        ("classifier", '"{bin}"', "not a TFLite model"),
        ("classifier", '"{detector}"', "is a detector, not a classifier"),
    ],
)
def test_each_cascade_key_error_names_the_key(tmp_path, detect_bundle, species_bundle,
                                             scenes_avi, key, value, says):  # fmt: skip
    binary = tmp_path / "junk.tflite"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    value = value.format(tmp=tmp_path, bin=binary, detector=detect_bundle)
    lines = f'{key} = {value}'
    if key != "classifier":
        lines += f'\nclassifier = "{species_bundle}"'
    r = _check(tmp_path, detect_bundle, scenes_avi, lines)
    assert r.exit_code == 1, r.output
    err = [x for x in r.stderr.splitlines() if x.startswith("Error:")]
    assert len(err) == 1 and err[0].startswith(f"Error: [cascade] {key}"), r.stderr
    assert says in err[0] and "Traceback" not in r.output


@pytest.mark.parametrize("lines", ['labels = "x.txt"', 'crop_labels = "red"', "top_k = 2",
                                   "max_crops = 3", "margin = 0.3"])  # fmt: skip
def test_cascade_keys_without_a_classifier_are_refused(tmp_path, detect_bundle, scenes_avi,
                                                       lines):  # fmt: skip
    """They were ignored without a word: a plain detector served as if the key did nothing."""
    r = _check(tmp_path, detect_bundle, scenes_avi, lines)
    key = lines.split(" ")[0]
    assert r.exit_code == 1 and f"[cascade] {key} is set but there is no crop classifier" \
        in r.stderr, r.output


def test_classify_labels_and_top_k_flags(tmp_path, detect_bundle, species_bundle, scenes_avi):
    """detect has --classify-labels and --classify-top-k; serve took them only from a config."""
    names = tmp_path / "names.txt"
    names.write_text("robin\nfinch\njay\n")
    base = ["serve", "--model", str(detect_bundle), "--device", "cpu", "--source",
            str(scenes_avi), "--worker", "inline", "--max-frames", "15"]  # fmt: skip
    r = CliRunner().invoke(main, [*base, "--classify", str(species_bundle), "--classify-labels",
                                  str(names), "--classify-top-k", "1"])  # fmt: skip
    assert r.exit_code == 0, r.output
    res = [json.loads(x) for x in r.stdout.splitlines() if x.startswith('{"frame"')][14]
    by = {d["label"]: d["classes"] for d in res["detections"]}
    assert by["red"] == [{"id": 0, "label": "robin", "score": by["red"][0]["score"]}]
    assert [c["label"] for c in by["green"]] == ["finch"]
    r = CliRunner().invoke(main, [*base, "--classify-labels", str(names), "--check"])
    assert r.exit_code == 2 and "--classify-labels needs --classify CLASSIFIER" in r.stderr
    r = CliRunner().invoke(main, [*base, "--classify", str(species_bundle), "--check",
                                  "--classify-labels", str(tmp_path / "no.txt")])  # fmt: skip
    assert r.exit_code == 1 and "[cascade] labels: " in r.stderr and "no.txt" in r.stderr


def _unrounded(doc) -> list:
    return unrounded(doc, ("_ms", "score"))


def test_lines_and_latest_are_rounded(detect_bundle, species_bundle, tmp_path):
    """/latest carried "crop_ms": 1.757214999999995 and scores with 5 decimals."""
    cascade = {"model": {"path": str(detect_bundle), "device": "cpu"},
               "cascade": {"classifier": str(species_bundle)}}
    with serving(cascade, tmp_path, want=8) as (base, got):
        latest = json.loads(urllib.request.urlopen(base + "/latest", timeout=10).read())
    results = [r.to_dict() for r in got]
    assert {"detect_ms", "classify_ms", "crop_ms", "decode_ms"} <= set(latest["result"])
    assert _unrounded(latest) == []
    assert [_unrounded(r) for r in results] == [[]] * len(results)
    scores = [c["score"] for r in results for d in r["detections"] for c in d["classes"]]
    assert scores and all(0 <= s <= 1 for s in scores)


def test_a_label_file_of_another_model_names_the_setting(tmp_path, detect_bundle, species_bundle,
                                                         scenes_avi):  # fmt: skip
    """"2 labels for 3 model outputs: is it the label file of this model?" - which of the two
    models? The warning names [cascade] labels (and detect's --classify-labels)."""
    two = tmp_path / "two.txt"
    two.write_text("robin\nfinch\n")
    cfg = tmp_path / "edgekit.toml"
    cfg.write_text(f'[model]\npath = "{detect_bundle}"\ndevice = "cpu"\n[source]\n'
                   f'uri = "{scenes_avi}"\n[cascade]\nclassifier = "{species_bundle}"\n'
                   f'labels = "{two}"\n')  # fmt: skip
    r = subprocess.run([*edgekit_cmd(), "serve", "--config", str(cfg), "--check"],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "[cascade] labels: 2 labels for 3 model outputs" in r.stderr
    photo = tmp_path / "frame.png"
    Image.new("RGB", (64, 64), (200, 20, 20)).save(photo)
    r = CliRunner().invoke(main, ["detect", str(detect_bundle), str(photo), "-d", "cpu",
                                  "--classify", str(species_bundle), "--classify-labels",
                                  str(two)])  # fmt: skip
    assert r.exit_code == 0 and "--classify-labels: 2 labels for 3 model outputs" in r.stderr
