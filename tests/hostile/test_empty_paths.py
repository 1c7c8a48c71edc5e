"""An empty path or value is refused by every command (issue 15): ``Path('')`` is ``.``, so
``--plot ''`` was silently ignored and ``convert --calib ''`` calibrated on whatever images were
in the working folder; ``--device ''`` ran on auto, ``stack --os ''`` was ignored. Every path and
string parameter of every command is found by introspection, so a new option is covered without
a new test. String options whose default is '' (rollout --username) and options also read from
an environment variable (--libedgetpu, where '' means unset) keep accepting it."""

from __future__ import annotations

import importlib

import click
import pytest

from edgekit.cli import COMMANDS

from .conftest import TINY, cli, tree_digest


def _path_params():
    for name, (module, attr, _) in sorted(COMMANDS.items()):
        command = getattr(importlib.import_module(module), attr)
        subs = getattr(command, "commands", None)
        pairs = [([name, s], c) for s, c in subs.items()] if subs else [([name], command)]
        for prefix, cmd in pairs:
            args = [p for p in cmd.params if isinstance(p, click.Argument)]
            for p in cmd.params:
                if getattr(p, "envvar", None) or (
                    not isinstance(p.type, click.Path)
                    and not (isinstance(p.type, click.types.StringParamType) and p.default != "")
                ):
                    continue  # '' means unset for an environment variable (--libedgetpu)
                if isinstance(p, click.Argument):
                    before = ["x"] * args.index(p)  # earlier positionals: any non-empty name
                    yield pytest.param([*prefix, *before, ""], id=f"{' '.join(prefix)}:{p.name}")
                else:
                    opt = p.opts[0]
                    yield pytest.param([*prefix, opt, ""], id=f"{' '.join(prefix)}:{opt}")


PARAMS = list(_path_params())


def test_the_introspection_finds_the_known_path_options():
    ids = {p.id for p in PARAMS}
    assert {"bench:--plot", "convert:--calib", "convert:-o", "classify:model", "serve:--config",
            "zoo build:-o", "train:-o", "bench:--device", "stack:--os", "doctor:--root",
            "serve:--decoder", "zoo build:name"} <= ids, ids  # fmt: skip
    assert "rollout:--username" not in ids  # '' is its default: no user name
    assert "classify:--libedgetpu" not in ids  # tests/hostile/test_stack_inputs.py


@pytest.mark.parametrize("argv", PARAMS)
def test_empty_path_is_a_usage_error(argv):
    r = cli(*argv)
    assert r.exit_code == 2, (argv, r.output)
    assert "is empty" in r.output.strip().splitlines()[-1], (argv, r.output)


def test_bench_plot_empty_writes_nothing_and_runs_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = tree_digest(tmp_path)
    r = cli("bench", TINY, "--runs", "1", "--warmup", "0", "--plot", "")
    assert r.exit_code == 2 and "--plot" in r.output and "steady" not in r.output, r.output
    assert tree_digest(tmp_path) == before
