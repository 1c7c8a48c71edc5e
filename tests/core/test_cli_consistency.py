"""The same thing has the same option name in every command (a user who learnt `classify -k 3`
types `serve -k 3`)."""

from __future__ import annotations

import click
import pytest

from edgekit.cli import main


def _command(name: str) -> click.Command:
    ctx = click.Context(main)
    cmd = main.get_command(ctx, name)
    assert cmd is not None
    return cmd


def _opts(cmd: click.Command) -> dict[str, set[str]]:
    """dest name -> all its spellings."""
    return {p.name: set(p.opts) for p in cmd.params if isinstance(p, click.Option)}


@pytest.mark.parametrize("name", ["classify", "bench", "serve"])
def test_device_commands_share_option_spellings(name):
    opts = _opts(_command(name))
    assert {"-d", "--device"} <= next(v for v in opts.values() if "--device" in v)
    if name != "bench":
        assert {"-k", "--top-k"} <= opts["top_k"]
        assert {"-t", "--threshold"} <= opts["threshold"]
        assert "--labels" in opts["labels"]


def test_output_option_is_spelled_the_same_everywhere():
    zoo = _command("zoo")
    for cmd in (_command("convert"), _command("train"), zoo.commands["build"]):
        spellings = next(v for v in _opts(cmd).values() if "-o" in v)
        assert "--output" in spellings, cmd.name
