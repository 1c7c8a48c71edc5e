"""Detection dataset class names become labels.txt lines. Before: ``names: ['apple', '']`` in a
YOLO data.yaml, a ``- ''`` item, or a COCO category named ``""`` or ``"great\\ntit"`` trained a
model whose labels.txt had a blank line (then refused by every command that reads it: "blank
line in labels") or an extra one (every later label shifted, silently)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from edgekit.detect.dataset import load_dataset
from edgekit.errors import EdgekitError


def _yolo(root, yaml_text):
    (root / "images" / "train").mkdir(parents=True)
    (root / "labels" / "train").mkdir(parents=True)
    Image.new("RGB", (100, 50)).save(root / "images" / "train" / "a.jpg")
    (root / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (root / "data.yaml").write_text(yaml_text)
    return root


def _coco(root, names):
    (root / "annotations").mkdir(parents=True)
    (root / "images" / "train").mkdir(parents=True)
    Image.new("RGB", (100, 50)).save(root / "images" / "train" / "x.jpg")
    doc = {"images": [{"id": 1, "file_name": "x.jpg"}],
           "annotations": [{"image_id": 1, "category_id": 0, "bbox": [10, 10, 20, 20]}],
           "categories": [{"id": k, "name": n} for k, n in enumerate(names)]}  # fmt: skip
    (root / "annotations" / "instances_train.json").write_text(json.dumps(doc))
    return root


@pytest.mark.parametrize("yaml_text", ["names: ['apple', '']\n", "names:\n  - apple\n  - ''\n",
                                       "names:\n  0: apple\n  1: ' '\n"])  # fmt: skip
def test_an_empty_yolo_class_name_is_refused(tmp_path, yaml_text):
    with pytest.raises(EdgekitError, match="class 1 is named .*: a label needs a name on one"):
        load_dataset(_yolo(tmp_path / "ds", yaml_text))


@settings(max_examples=30)
@given(names=st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=8),
                      min_size=1, max_size=4))  # fmt: skip
def test_coco_category_names_are_one_label_each_or_refused(tmp_path_factory, names):
    root = _coco(tmp_path_factory.mktemp("coco"), names)
    try:
        data = load_dataset(root)
    except EdgekitError as e:
        assert any(not n.strip() or n.splitlines() != [n] for n in names), (names, e)
        return
    text = "".join(f"{n}\n" for n in data.names)  # as train writes labels.txt
    assert len(text.splitlines()) == len(names) and all(n.strip() for n in data.names)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
              st.text(max_size=5), st.just("x.jpg")),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(
        st.sampled_from(["id", "name", "file_name", "image_id", "category_id", "bbox"]), inner,
        max_size=4)),
    max_leaves=10,
)  # fmt: skip


@settings(max_examples=60)
@given(images=st.one_of(json_values, st.just([{"id": 1, "file_name": "x.jpg"}])),
       annotations=json_values,
       categories=st.one_of(json_values, st.just([{"id": 0, "name": "a"}])))  # fmt: skip
def test_any_coco_json_is_read_or_refused_in_one_line(tmp_path_factory, images, annotations,
                                                      categories):  # fmt: skip
    """Before: ``"annotations": false`` (or any non-list) raised TypeError from the loop."""
    root = _coco(tmp_path_factory.mktemp("coco"), ["a"])
    doc = {"images": images, "annotations": annotations, "categories": categories}
    (root / "annotations" / "instances_train.json").write_text(json.dumps(doc))
    try:
        load_dataset(root)
    except EdgekitError as e:
        assert "\n" not in e.message


def test_annotations_that_are_not_a_list_are_refused(tmp_path):
    root = _coco(tmp_path / "coco", ["a"])
    doc = {"images": [{"id": 1, "file_name": "x.jpg"}], "annotations": False,
           "categories": [{"id": 0, "name": "a"}]}  # fmt: skip
    (root / "annotations" / "instances_train.json").write_text(json.dumps(doc))
    with pytest.raises(EdgekitError, match="not a COCO detection file .annotations is bool"):
        load_dataset(root)
