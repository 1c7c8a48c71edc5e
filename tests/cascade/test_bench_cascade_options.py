"""`edgekit bench DETECTOR --classify CLASSIFIER` takes what `detect` takes for the same pair:
`--anchors` reaches the detector (it was dropped: a yolov3 head's anchors file was ignored
without a word) and `--classify-labels` names a bare classifier's label file (it was 'No such
option', so the README's detect line could not be timed as it is)."""

from __future__ import annotations

from click.testing import CliRunner

from edgekit.cli import main


def _bench(*args):
    return CliRunner().invoke(main, ["bench", *map(str, args), "-d", "cpu", "--runs", "3",
                                     "--warmup", "0"])  # fmt: skip


def test_anchors_reach_the_cascades_detector(detect_bundle, species_bundle, tmp_path):
    anchors = tmp_path / "anchors.txt"
    anchors.write_text("10,14, 23,27, 37,58, 81,82, 135,169, 344,319\n")
    alone = _bench(detect_bundle, "--anchors", anchors)
    assert alone.exit_code != 0 and "anchors" in alone.stderr  # an anchor-free head
    r = _bench(detect_bundle, "--classify", species_bundle, "--anchors", anchors)
    assert r.exit_code == alone.exit_code, r.output
    assert alone.stderr.splitlines()[-1] in r.stderr  # the same refusal, not silence


def test_classify_labels_name_a_bare_classifiers_labels(detect_bundle, species_bundle,
                                                        species_labels, tmp_path):  # fmt: skip
    bare = next(species_bundle.glob("*.tflite"))
    r = _bench(detect_bundle, "--classify", bare, "--classify-labels", species_labels, "--json")
    assert r.exit_code == 0, r.output
    two = tmp_path / "two.txt"
    two.write_text("cardinal\nparakeet\n")
    r = _bench(detect_bundle, "--classify", bare, "--classify-labels", two)
    assert r.exit_code == 0, r.output
    assert "2 labels for 3" in r.stderr  # the file is read, as detect reads it
    r = _bench(detect_bundle, "--classify", bare, "--classify-labels", tmp_path / "none.txt")
    assert r.exit_code != 0 and "none.txt" in r.stderr and "Traceback" not in r.output
    r = _bench(detect_bundle, "--classify-labels", species_labels)
    assert r.exit_code == 2 and "needs --classify" in r.stderr
