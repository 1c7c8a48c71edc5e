"""Helpers shared by the CLI modules (output formatting only, no logic)."""

from __future__ import annotations

import json
from typing import Any

import click


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout (the ``--json`` contract of every command)."""
    click.echo(json.dumps(data, indent=2, default=_default))


def _default(o: Any) -> Any:
    if hasattr(o, "to_dict"):
        return o.to_dict()
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "__fspath__"):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def warn(message: str) -> None:
    """One-line warning on stderr."""
    click.echo(f"Warning: {message}", err=True)
