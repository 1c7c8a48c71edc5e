"""Every command's --help ends with examples a user can type, and every example parses against
its command (an option renamed or removed breaks this test, not the user's first try)."""

from __future__ import annotations

import shlex

import click
import pytest
from click.testing import CliRunner

from edgekit.cli import COMMANDS, main
from edgekit.cli.examples import EXAMPLES


def _command(path: list[str]) -> click.Command:
    ctx = click.Context(main)
    cmd = main.get_command(ctx, path[0])
    for name in path[1:]:
        cmd = cmd.get_command(ctx, name)
    return cmd


@pytest.mark.parametrize("name", sorted(COMMANDS) + ["zoo build", "zoo list"])
def test_help_shows_examples(name):
    r = CliRunner().invoke(main, [*name.split(), "--help"])
    assert r.exit_code == 0, r.output
    if name == "zoo list":  # nothing to add to `edgekit zoo list [--json]`
        return
    tail = r.output.split("Examples:\n", 1)[1].splitlines()
    assert tail and all(x.startswith(f"    edgekit {name} ") or x == f"    edgekit {name}"
                        for x in tail if x.strip()), tail  # fmt: skip


@pytest.mark.parametrize("name, line", [(n, x) for n, xs in EXAMPLES.items() for x in xs])
def test_every_example_parses(name, line):
    argv = shlex.split(line)
    assert argv[0] == "edgekit"
    words = name.split()
    assert argv[1 : 1 + len(words)] == words
    rest = argv[1 + len(words):]
    if isinstance(_command(words), click.Group):  # `edgekit zoo build ...`: the subcommand's
        words, rest = [*words, rest[0]], rest[1:]
    cmd = _command(words)
    cmd.make_context(" ".join(words), list(rest))  # raises UsageError on an unknown option
