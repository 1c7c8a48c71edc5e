"""A crop label that differs from the detector's only in case (`--crop-labels Kite` for COCO's
`kite`) is refused naming the label to use; it only said "use the detector's own label names"."""

from __future__ import annotations

from click.testing import CliRunner
from PIL import Image

from edgekit.cli import main
from tests.detect.conftest import scene


def test_a_crop_label_in_another_case_names_the_right_one(detect_bundle, species_bundle,
                                                          tmp_path):  # fmt: skip
    photo = tmp_path / "p.png"
    Image.fromarray(scene(128, 128, [("red", 64, 0, 96, 32)])).save(photo)
    r = CliRunner().invoke(main, ["detect", str(detect_bundle), str(photo), "-d", "cpu",
                                  "--classify", str(species_bundle), "--crop-labels",
                                  "Red,blue,owl"])  # fmt: skip
    assert r.exit_code == 1 and len(r.stderr.splitlines()) == 1, r.output
    assert "crop labels Red, owl: not a label of the detector" in r.stderr
    assert "use red for Red" in r.stderr
