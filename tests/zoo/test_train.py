"""Training: grouped split, end-to-end run on a subset of apple-banana, and its errors."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from edgekit.cli import main
from edgekit.errors import EdgekitError
from edgekit.host import train as tr

GROUP = r"(?:apple|bana)[-_](\d+)"


@pytest.fixture(scope="session")
def subset(tmp_path_factory, apple_banana_dir):
    """3 original photos per class x 5 variants, plus one corrupt file in 'apple'."""
    root = tmp_path_factory.mktemp("ab-subset")
    pattern = re.compile(GROUP)
    for cls in ("apple", "banana"):
        (root / cls).mkdir()
        per_group: dict[str, int] = {}
        for f in sorted((apple_banana_dir / cls).glob("*.png")):
            g = list(pattern.finditer(f.name))[-1].group(1)
            if g in ("1", "2", "3") and per_group.get(g, 0) < 5:
                per_group[g] = per_group.get(g, 0) + 1
                shutil.copy(f, root / cls / f.name)
    (root / "apple" / "broken_apple_9.png").write_bytes(b"\x89PNG not really")
    return root


@pytest.fixture(scope="session")
def trained(subset, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "fruit.h5"
    res = CliRunner().invoke(
        main,
        [
            "train", str(subset), "--model", "inception_lite", "-o", str(out), "--epochs", "3",
            "--batch-size", "8", "--val-split", "0.3", "--group-pattern", GROUP, "--json",
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output[res.output.index("{") :])
    return out, summary


def test_grouped_split_never_splits_a_group(apple_banana_dir):
    classes, samples, unmatched = tr.scan(apple_banana_dir, GROUP)
    assert classes == ["apple", "banana"] and unmatched == 0 and len(samples) == 328
    assert {s.group for s in samples} == {str(i) for i in range(1, 9)}  # original photos 1..8
    for seed in range(5):
        train, val, val_groups = tr.split(samples, 0.25, seed)
        assert len(train) + len(val) == 328
        for label in (0, 1):
            tg = {s.group for s in train if s.label == label}
            vg = {s.group for s in val if s.label == label}
            assert tg and vg and not tg & vg
            assert vg == set(val_groups[label])
        assert 0.2 <= len(val) / 328 <= 0.35
    a = tr.split(samples, 0.25, 1)[2]
    assert a == tr.split(samples, 0.25, 1)[2]  # seeded: reproducible


def test_split_without_pattern_is_by_file_and_seeded(apple_banana_dir):
    _, samples, _ = tr.scan(apple_banana_dir)
    train, val, _ = tr.split(samples, 0.25, seed=3)
    assert {s.path for s in train}.isdisjoint({s.path for s in val})
    assert [s.path for s in val] == [s.path for s in tr.split(samples, 0.25, seed=3)[1]]
    assert [s.path for s in val] != [s.path for s in tr.split(samples, 0.25, seed=4)[1]]


def test_training_writes_model_labels_curves_and_summary(trained, subset):
    out, summary = trained
    assert out.exists()
    assert (out.parent / "labels.txt").read_text() == "0 apple\n1 banana\n"
    assert (out.parent / "fruit_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out.parent / "fruit_train.json").read_text())["classes"] == [
        "apple",
        "banana",
    ]
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "fruit.h5",
        "fruit_curves.png",
        "fruit_split.json",
        "fruit_train.json",
        "labels.txt",
    ]
    assert summary["unreadable"] == [str(subset / "apple" / "broken_apple_9.png")]
    counts = summary["counts"]
    assert sum(c["train"] + c["val"] for c in counts.values()) == 30
    for cls in ("apple", "banana"):
        assert counts[cls]["val"] == 5 * len(summary["val_groups"][cls])
    assert 0.0 <= summary["val_accuracy"] <= 1.0
    assert 1 <= summary["best_epoch"] <= summary["epochs_run"] <= 3
    assert len(summary["history"]["loss"]) == summary["epochs_run"]
    # Keras' float32 logs to 4 decimals (0.4545454680919647 before)
    numbers = [v for vals in summary["history"].values() for v in vals]
    numbers += [summary["val_accuracy"], *summary["val_accuracy_per_class"].values()]
    assert numbers and all(v == round(v, 4) for v in numbers)


def test_saved_model_has_no_augmentation_and_predicts_like_training(trained, subset):
    import keras

    from edgekit import images

    out, summary = trained
    model = keras.saving.load_model(out, compile=False)
    kinds = {layer.__class__.__name__ for layer in model.layers}
    assert not any(k.startswith("Random") for k in kinds) and "Sequential" not in kinds
    assert model.input_shape == (None, 28, 28, 3) and model.output_shape == (None, 2)
    # Same pixel path as the device: load_rgb -> prepare -> to_float(0..1).
    val_group = summary["val_groups"]["banana"][0]
    f = next(p for p in sorted((subset / "banana").glob("*.png")) if f"_{val_group}." in p.name)
    x = images.to_float(images.prepare(images.load_rgb(f), (28, 28)))[None]
    p = model(x, training=False).numpy()
    assert p.shape == (1, 2) and np.isclose(p.sum(), 1.0, atol=1e-4)


@pytest.mark.parametrize(
    "layout, kwargs, message",
    [
        ({}, {}, "no images found"),
        ({"apple": 3}, {}, "only one class"),
        ({"apple": 2, "banana": 2}, {"group_pattern": r"cherry_(\d+)"}, "matches none"),
        ({"apple": 2, "banana": 2}, {"group_pattern": r"("}, "invalid regex"),
        ({"apple": 2, "banana": 2}, {"model": "dsconv"}, "not a classifier"),
        ({"apple": 2, "banana": 2}, {"input_range": (1.0, 0.0)}, "high must be above low"),
    ],
)
def test_training_errors(tmp_path, apple_banana_dir, layout, kwargs, message):
    data = tmp_path / "data"
    data.mkdir()
    for cls, n in layout.items():
        (data / cls).mkdir()
        for f in sorted((apple_banana_dir / cls).glob("*.png"))[:n]:
            shutil.copy(f, data / cls / f.name)
    kwargs = {"model": "inception_lite", **kwargs}
    with pytest.raises(EdgekitError, match=re.escape(message)):
        tr.train(data, output=tmp_path / "m.h5", **kwargs)
    assert not (tmp_path / "m.h5").exists()


def test_all_unreadable_images_is_an_error(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        (tmp_path / cls / "x.png").write_bytes(b"junk")
    with pytest.raises(EdgekitError, match="none of the 2 images could be read"):
        tr.train(tmp_path, "inception_lite", tmp_path / "m.h5")


def test_single_group_class_cannot_be_held_out(apple_banana_dir):
    _, samples, _ = tr.scan(apple_banana_dir, GROUP)
    only_one = [s for s in samples if s.label == 1 or s.group == "1"]
    with pytest.raises(EdgekitError, match="single group"):
        tr.split(only_one, 0.25)


def test_cli_train_refuses_existing_output_and_reports_one_line(tmp_path, subset):
    out = tmp_path / "m.h5"
    out.write_bytes(b"keep me")
    res = CliRunner().invoke(
        main, ["train", str(subset), "--model", "inception_lite", "-o", str(out)]
    )
    assert (
        res.exit_code == 1 and res.output.strip().startswith("Error:") and "--force" in res.output
    )
    assert out.read_bytes() == b"keep me"
    res = CliRunner().invoke(main, ["train", str(tmp_path / "nope"), "--model", "inception_lite",
                                    "-o", str(tmp_path / "n.h5")])  # fmt: skip
    assert res.exit_code == 1 and "no such dataset folder" in res.output
    bad_range = ["--input-range", "0;1"]
    res = CliRunner().invoke(main, ["train", str(subset), "--model", "inception_lite",
                                    "-o", str(tmp_path / "n.h5"), *bad_range])  # fmt: skip
    assert res.exit_code == 1 and "--input-range" in res.output


def test_train_does_not_clobber_another_models_labels(tmp_path, subset):
    """labels.txt goes beside the model: one holding other labels is refused before training
    (nothing written), unless --force."""
    (tmp_path / "labels.txt").write_text("0 cat\n1 dog\n2 bird\n")
    res = CliRunner().invoke(
        main, ["train", str(subset), "--model", "inception_lite", "-o", str(tmp_path / "m.h5")]
    )
    assert res.exit_code == 1 and "already holds other labels" in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.txt"]
    assert (tmp_path / "labels.txt").read_text() == "0 cat\n1 dog\n2 bird\n"


def test_train_on_a_terminal_shows_progress_and_exits_0(subset, tmp_path):
    from tests.tty import EDGEKIT, run_in_pty

    out = tmp_path / "m.h5"
    code, output = run_in_pty(
        [*EDGEKIT, "train", subset, "--model", "inception_lite", "-o", out, "--epochs", "2",
         "--batch-size", "8", "--group-pattern", GROUP],
        timeout=300,
    )  # fmt: skip
    assert code == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert "epoch 1/2" in output and "epoch 2/2" in output, output[-3000:]
    assert out.is_file() and "Held-out accuracy" in output


def test_train_split_file_is_what_convert_verifies_on(trained, subset, tmp_path):
    from edgekit.groups import read_split, split_file_for
    from edgekit.manifest import load_bundle

    model, summary = trained
    split_path = split_file_for(model)
    assert summary["outputs"]["split"] == str(split_path)
    recorded = read_split(split_path)
    assert recorded["held_out"] and recorded["trained"]
    assert not recorded["held_out"] & recorded["trained"]
    val_files = json.loads(split_path.read_text())["held_out"]
    assert len(val_files) == sum(c["val"] for c in summary["counts"].values())

    out = tmp_path / "bundle"
    r = CliRunner().invoke(main, ["convert", str(model), "--calib", str(subset), "-o", str(out),
                                  "--no-compile", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    cal = load_bundle(out).manifest.calibration
    assert cal["split_file"] == str(split_path)
    assert set(cal["verify_files"]) == recorded["held_out"]  # exactly train's held-out photos
    assert cal["used"] + cal["verify"] + cal["unreadable"] <= cal["found"]
    assert cal["used"] <= len(recorded["trained"])  # calibration saw only training photos
    assert "training held out" in cal["split"]
