"""Class folder names become labels.txt lines (``"<id> <name>"``, one per line). Before: a folder
named with a line break (``$'great\\ntit'``) trained a 2-class model whose labels.txt had 3 lines,
every label after it shifted by one, and nothing said so. Now `train` refuses it up front."""

from __future__ import annotations

import shutil

from hypothesis import given, settings
from hypothesis import strategies as st

from edgekit.errors import EdgekitError
from edgekit.host.train_data import scan
from edgekit.host.train_outputs import labels_file
from edgekit.labels import parse_labels

from .conftest import CORAL, cli

names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"),
                min_size=1, max_size=12).filter(lambda n: not n.startswith(".")
                                                and n not in (".", ".."))  # fmt: skip


@settings(max_examples=30)
@given(a=names, b=names)
def test_every_class_name_that_trains_reads_back_as_one_label(tmp_path_factory, a, b):
    if a == b:
        return
    root = tmp_path_factory.mktemp("data")
    for n in (a, b):
        (root / n).mkdir()
        shutil.copy(CORAL / "parrot.jpg", root / n / "x.jpg")
    try:
        found, _, _ = scan(root)
    except EdgekitError as e:
        assert "line break" in e.message and "\n" not in str(e).replace(a, "").replace(b, "")
        assert a.splitlines() != [a] or b.splitlines() != [b] or not a.strip() or not b.strip()
        return
    _, text = labels_file(tmp_path_factory.mktemp("out") / "m.h5", found, force=True)
    labels = parse_labels(text)
    assert len(labels) == 2, (found, text)  # one label per class, in order
    assert [labels[0], labels[1]] == [n.strip() for n in found]


def test_train_refuses_a_class_folder_named_with_a_newline_before_any_work(tmp_path):
    for n in ("great\ntit", "robin"):
        (tmp_path / "data" / n).mkdir(parents=True)
        shutil.copy(CORAL / "parrot.jpg", tmp_path / "data" / n / "x.jpg")
    r = cli("train", tmp_path / "data", "--model", "squeezenet", "-o", tmp_path / "m.h5")
    assert r.exit_code == 1, r.output
    assert "great\\ntit" in r.output and "cannot be a label" in r.output, r.output
    assert not (tmp_path / "m.h5").exists() and not (tmp_path / "labels.txt").exists()
