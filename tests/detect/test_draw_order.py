"""Overlapping boxes: the best one's tag is drawn last, so it is the one left readable (the
annotated copies of `edgekit detect` and serve's thumbnails)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from edgekit.cli.detect import _PALETTE, _write_annotated
from edgekit.detect import Detection, Detections
from edgekit.stream.draw import draw_boxes, label_color

BOX = (20.0, 40.0, 150.0, 140.0)


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))


def test_thumbnail_tags_show_the_best_of_overlapping_boxes():
    weak, best = {"label": "pear", "score": 0.3, "box": BOX}, {"label": "fig", "score": 0.9,
                                                                "box": BOX}  # fmt: skip
    assert label_color("pear") != label_color("fig")
    for order in ([best, weak], [weak, best]):
        img = Image.new("RGB", (200, 160))
        draw_boxes(img, order)
        # just inside the tag's top-left corner, above the box
        assert np.asarray(img)[int(BOX[1]) - 3, int(BOX[0]) + 1].tolist() == list(
            _rgb(label_color("fig"))
        )


def test_annotated_copy_tags_show_the_best_of_overlapping_boxes(tmp_path):
    weak, best = Detection(0, "pear", 0.3, BOX), Detection(1, "fig", 0.9, BOX)
    for i, order in enumerate(([best, weak], [weak, best])):
        out = tmp_path / f"a{i}.png"
        _write_annotated(np.zeros((160, 200, 3), np.uint8),
                         Detections(tuple(order), 1.0, 1.0, 1.0, (200, 160)), out)  # fmt: skip
        px = np.asarray(Image.open(out).convert("RGB"))[int(BOX[1]) - 3, int(BOX[0]) + 1]
        assert tuple(px.tolist()) == _PALETTE[1]
