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


def _use_libedgetpu(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value:
        from edgekit.backends.probe import set_library

        return set_library(value)  # also exported to child processes (probe, serve's worker)
    return value


def libedgetpu_option(f):
    """``--libedgetpu PATH`` (or $EDGEKIT_LIBEDGETPU): the libedgetpu.so.1 file to load."""
    return click.option(
        "--libedgetpu",
        metavar="PATH",
        envvar="EDGEKIT_LIBEDGETPU",
        expose_value=False,
        is_eager=True,
        callback=_use_libedgetpu,
        help="libedgetpu.so.1 to load for --device usb/pci [default: $EDGEKIT_LIBEDGETPU, else "
        "the system's, as dlopen finds it (LD_LIBRARY_PATH honoured)].",
    )(f)


def warn(message: str) -> None:
    """One-line warning on stderr."""
    click.echo(f"Warning: {message}", err=True)
