"""Several output heads without TensorFlow: heads ordered by stride whatever the model's output
order (three heads: YOLOv3's anchors split 3 per head), .tflite outputs matched by grid size,
the quantization report's box steps, the loader's check of what counts as grid heads, and the
``yolov3`` decoder checking a bundle's recorded heads against the model and the anchors."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from edgekit.detect.decoders import HeadIO, OutputTensor, YoloV3
from edgekit.detect.yolov3 import TINY_ANCHORS, YOLOV3_ANCHORS
from edgekit.errors import EdgekitError
from edgekit.host.convert_heads import Head, grid_heads, match_outputs, quant_report
from edgekit.host.loaders.batch1 import check_grid_heads

C = 3 * (5 + 80)


def test_three_heads_in_any_model_order_take_their_anchors_by_stride():
    shapes = [(1, 26, 26, C), (1, 13, 13, C), (1, 52, 52, C)]  # strides 16, 32, 8
    heads = grid_heads(shapes, (416, 416), YOLOV3_ANCHORS)
    assert [(h.stride, h.grid, h.keras_index) for h in heads] == [
        (8, (52, 52), 2), (16, (26, 26), 0), (32, (13, 13), 1)]  # fmt: skip
    assert [h.anchors for h in heads] == [tuple(map(tuple, YOLOV3_ANCHORS[i : i + 3]))
                                          for i in (0, 3, 6)]  # fmt: skip
    # .tflite outputs in yet another order: matched by grid, not position
    details = [{"shape": np.array(s)} for s in ((1, 13, 13, C), (1, 52, 52, C), (1, 26, 26, C))]
    assert match_outputs(heads, details) == [1, 2, 0]
    with pytest.raises(EdgekitError, match="not the 3 heads' grids") as e:
        match_outputs(heads, details[:2] + [{"shape": np.array((1, 20, 20, C))}])
    assert "\n" not in str(e.value)


def test_quant_report_gives_the_box_steps_of_a_scale():
    head = Head(32, (13, 13), tuple(map(tuple, TINY_ANCHORS[3:])), 0)
    r = quant_report(head, "Identity", 0, (1, 13, 13, C), "uint8", 0.1, 128)
    assert r["logit_range"] == pytest.approx([-12.8, 12.7])
    assert r["xy_step_px"] == pytest.approx(0.1 / 4 * 32)  # sigmoid' <= 1/4, times the stride
    assert r["wh_step"] == pytest.approx(math.exp(0.1) - 1)
    r8 = quant_report(head, "Identity", 0, (1, 13, 13, C), "int8", 0.1, -3)
    assert r8["logit_range"] == pytest.approx([-12.5, 13.0])


def _outs(*shapes):
    return [SimpleNamespace(shape=s) for s in shapes]


@pytest.mark.parametrize("shapes", [
    [(1, 2), (1, 4)],  # a classifier with an extra output
    [(1, 13, 13, 255), (1, 26, 26, 254)],  # different channels
    [(1, 13, 13, 255), (1, 13, 13, 255)],  # the same stride twice
    [(1, 13, 13, 255), (1, 27, 27, 255)],  # not a grid of the 416 input
    [(1, 13, 13, 255), (1, 26, 13, 255)],  # strides differ between the axes
    [(1, 13, 13, 255)] * 5,
])  # fmt: skip
def test_outputs_that_are_not_grid_heads_are_refused_in_one_line(shapes, tmp_path):
    with pytest.raises(EdgekitError, match=f"model has {len(shapes)} outputs") as e:
        check_grid_heads(_outs(*shapes), tmp_path / "m.h5", (416, 416))
    assert "\n" not in str(e.value) and "grid heads" in str(e.value)


def test_grid_heads_pass_the_loader_check(tmp_path):
    check_grid_heads(_outs((1, 13, 13, 255), (1, 26, 26, 255)), tmp_path / "m.h5", (416, 416))
    check_grid_heads(_outs((1, 5, 7, 21), (1, 10, 14, 21), (1, 20, 28, 21)), tmp_path, (160, 224))


def _grids_io():
    outs = (OutputTensor(7, "Identity", (1, 5, 5, 21), "uint8", 0.1, 128),
            OutputTensor(9, "Identity_1", (1, 10, 10, 21), "uint8", 0.1, 128))  # fmt: skip
    return HeadIO((160, 160), outs)


TINY = [list(a) for a in TINY_ANCHORS]
HEADS = [{"stride": 16, "grid": [10, 10], "anchors": TINY[:3]},
         {"stride": 32, "grid": [5, 5], "anchors": TINY[3:]}]  # fmt: skip


def test_the_bundle_heads_are_checked_against_the_model_and_the_anchors():
    dec = YoloV3(_grids_io(), {"anchors": [list(a) for a in TINY_ANCHORS], "heads": HEADS})
    assert [lv[4] for lv in dec.levels] == [16, 32] and dec.num_classes == 2
    nine = [list(a) for a in YOLOV3_ANCHORS]
    with pytest.raises(EdgekitError, match="9 anchors for this model's 2 heads of 3") as e:
        YoloV3(_grids_io(), {"anchors": nine, "heads": HEADS})
    assert "\n" not in str(e.value) and "give 6" in str(e.value)
    moved = [dict(HEADS[0], grid=[12, 12]), HEADS[1]]
    with pytest.raises(EdgekitError, match=r"records heads of grids \[\[12, 12\], \[5, 5\]\]"):
        YoloV3(_grids_io(), {"heads": moved})
    for bad in ([HEADS[1], HEADS[0]], [dict(HEADS[0], extra=1)], [], "heads"):
        with pytest.raises(EdgekitError, match="not a list of heads"):
            YoloV3(_grids_io(), {"heads": bad})
