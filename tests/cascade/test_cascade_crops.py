"""The cascade's crop rule (pure numpy): margin, clamping, minimum size, labels, top-N."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.detect.cascade import CropRule, crop, crop_box, select
from edgekit.detect.records import Detection
from edgekit.errors import EdgekitError


def _det(label, score, box):
    return Detection(0, label, score, box)


def test_crop_box_grows_by_the_margin_and_clamps_to_the_image():
    assert crop_box((20, 10, 60, 30), (100, 50), 0.1) == (16, 8, 64, 32)
    assert crop_box((20, 10, 60, 30), (100, 50), 0.0) == (20, 10, 60, 30)
    # at the border: clamped, never outside
    assert crop_box((0, 0, 100, 50), (100, 50), 0.5) == (0, 0, 100, 50)
    # fractional boxes round outwards
    assert crop_box((10.4, 5.6, 20.2, 15.1), (100, 50), 0.0) == (10, 5, 21, 16)
    # a degenerate box still gives one pixel
    x0, y0, x1, y1 = crop_box((99.5, 49.5, 100, 50), (100, 50), 0.0)
    assert x1 - x0 >= 1 and y1 - y0 >= 1 and x1 <= 100 and y1 <= 50


def test_crop_is_a_view_of_the_pixels():
    img = np.arange(50 * 100 * 3, dtype=np.uint8).reshape(50, 100, 3)
    c = crop(img, (20, 10, 60, 30), 0.1)
    assert c.shape == (24, 48, 3) and np.array_equal(c, img[8:32, 16:64])


def test_select_filters_labels_and_sizes_and_keeps_the_best():
    dets = [_det("bird", 0.5, (0, 0, 40, 40)), _det("cat", 0.9, (0, 0, 40, 40)),
            _det("bird", 0.8, (0, 0, 10, 40)), _det("bird", 0.7, (0, 0, 40, 40)),
            _det("bird", 0.6, (0, 0, 40, 40))]  # fmt: skip
    assert select(dets, CropRule()) == [1, 3, 4, 0]  # the 10-px wide bird is too small
    assert select(dets, CropRule(labels=frozenset({"bird"}))) == [3, 4, 0]
    assert select(dets, CropRule(labels=frozenset({"bird"}), max_crops=2)) == [3, 4]
    assert select(dets, CropRule(min_size=0)) == [1, 2, 3, 4, 0]
    assert select(dets, CropRule(max_crops=0)) == []


@pytest.mark.parametrize("kw", [{"margin": -0.1}, {"margin": float("nan")},
                                {"min_size": float("inf")}, {"max_crops": -1},
                                {"max_crops": True}, {"max_crops": 2.5}])  # fmt: skip
def test_bad_rules_are_refused(kw):
    with pytest.raises(EdgekitError):
        CropRule(**kw)
