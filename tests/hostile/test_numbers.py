"""Numbers are checked for range and finiteness before they reach native code or a long loop
(issue 9): each case was a segfault, a hang, a traceback or a silently wrong value before."""

from __future__ import annotations

import pytest

from edgekit import limits
from edgekit.classify import Classifier
from edgekit.errors import EdgekitError

from .conftest import cli, run_edgekit


@pytest.mark.parametrize(
    "args",
    [
        ["classify", "{bundle}", "{photo}", "--threads", "1000000000"],
        ["bench", "{bundle}", "--threads", "1000000000"],
        ["bench", "{bundle}", "--warmup", "2147483648"],
        ["bench", "{bundle}", "--runs", "99999999999"],
        ["classify", "{bundle}", "{photo}", "--threshold", "nan"],
        ["classify", "{bundle}", "{photo}", "--top-k", "99999999999"],
    ],
)
def test_runtime_numbers_refused_before_native_code(args, bundle, photo):
    args = [a.format(bundle=bundle, photo=photo) for a in args]
    r = cli(*args)
    assert r.exit_code == 2 and "Invalid value" in r.output


def test_threads_of_a_billion_is_a_clean_exit_not_a_segfault(bundle, photo):
    # A real process: a segfault would be exit -11 (run_edgekit asserts 0/1/2, no traceback).
    p = run_edgekit("classify", bundle, photo, "--threads", "1000000000", "-d", "cpu")
    assert p.returncode == 2 and "--threads" in p.stderr


def test_library_refuses_threads_and_nan_threshold(bundle):
    with pytest.raises(EdgekitError, match="--threads 1000000000"):
        Classifier(bundle, device="cpu", threads=1_000_000_000)
    with pytest.raises(EdgekitError, match="threshold nan"):
        Classifier(bundle, device="cpu", threshold=float("nan"))


@pytest.mark.parametrize(
    "option, value",
    [
        ("--input-range", "0,inf"),
        ("--input-range", "nan,1"),
        ("--input-range", "-1e308,1e308"),
        ("--compile-timeout", "nan"),
        ("--compile-timeout", "inf"),
        ("--compile-timeout", "-1"),
        ("--min-agreement", "nan"),
        ("--num-calib", "99999999999"),
        ("--input-size", "100000x100000"),
        ("--segments", "1000000"),
    ],
)
def test_convert_numbers_refused_first(option, value, tmp_path):
    model = tmp_path / "m.h5"
    model.write_bytes(b"not read: the option fails first")
    r = cli("convert", model, "-o", tmp_path / "out", "--synthetic-calib", option, value)
    assert r.exit_code == 2 and option in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.h5"]


def test_convert_input_range_inf_is_not_a_segfault(tmp_path):
    model = tmp_path / "m.h5"
    model.write_bytes(b"x")
    p = run_edgekit("convert", model, "-o", tmp_path / "o", "--synthetic-calib",
                    "--input-range", "0,inf")  # fmt: skip
    assert p.returncode == 2


@pytest.mark.parametrize(
    "option, value",
    [
        ("--learning-rate", "nan"),
        ("--learning-rate", "inf"),
        ("--learning-rate", "0"),
        ("--dropout", "nan"),
        ("--val-split", "inf"),
        ("--epochs", "0"),
        ("--batch-size", "-3"),
        ("--alpha", "nan"),
        ("--input-range", "0,nan"),
        ("--input-size", "100000"),
    ],
)
def test_train_numbers_refused_first(option, value, tmp_path):
    r = cli("train", tmp_path, "--model", "squeezenet", "-o", tmp_path / "m.h5", option, value)
    assert r.exit_code in (1, 2) and option in r.output
    assert list(tmp_path.iterdir()) == []


def test_library_train_refuses_nan_learning_rate(tmp_path):
    from edgekit.host.train import train

    with pytest.raises(EdgekitError, match="--learning-rate nan"):
        train(tmp_path, "squeezenet", tmp_path / "m.h5", learning_rate=float("nan"))


@pytest.mark.parametrize(
    "param, message",
    [
        ("bypass=no", None),  # was True: any non-empty string
        ("bypass=maybe", "bypass takes true or false"),
        ("dropout=nan", "dropout takes float"),
        ("dropout=inf", "dropout takes float"),
        ("dropout=abc", "dropout takes float"),
        ("classes=2.5", "classes takes int"),
        ("nosuch=1", "has no option 'nosuch'"),
    ],
)
def test_zoo_params_parsed_strictly(param, message, tmp_path, monkeypatch):
    from edgekit import zoo

    built = {}

    def fake_build(name, input_size=None, **options):  # records what the CLI parsed
        built.update(options)
        raise EdgekitError("stop here")

    monkeypatch.setattr(zoo, "build", fake_build)
    r = cli("zoo", "build", "squeezenet", "-o", tmp_path / "m.h5", "-p", param)
    assert r.exit_code == 1
    if message is None:
        assert built == {"bypass": False}
    else:
        assert message in r.output and built == {}


def test_parse_bool_is_strict():
    assert [limits.parse_bool(v) for v in ("true", "Yes", "ON", "1")] == [True] * 4
    assert [limits.parse_bool(v) for v in ("false", "No", "off", "0")] == [False] * 4
    with pytest.raises(ValueError):
        limits.parse_bool("")
