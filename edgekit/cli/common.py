"""Helpers shared by the CLI modules (output formatting only, no logic)."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import click

from edgekit.errors import one_line


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout (the ``--json`` contract of every command).
    NaN and infinity (a corrupt model's quantization scale, say) are written as ``null``: JSON
    has no such numbers, and strict parsers reject Python's ``NaN``."""
    try:
        text = json.dumps(data, indent=2, default=_default, allow_nan=False)
    except ValueError:
        plain = json.loads(json.dumps(data, default=_default))
        text = json.dumps(_finite_or_null(plain), indent=2, allow_nan=False)
    click.echo(text)


def _finite_or_null(v: Any) -> Any:
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _finite_or_null(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_finite_or_null(x) for x in v]
    return v


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


def compiler_options(timeout_flag: str):
    """``--compiler PATH``, ``TIMEOUT_FLAG SECONDS`` and ``--min-runtime N``: how to run
    edgetpu_compiler, the same for ``convert`` (``--compile-timeout``) and ``compile``
    (``--timeout``)."""
    from edgekit.cli.params import Finite
    from edgekit.limits import MAX_TIMEOUT_S

    def add(f):
        for option in reversed((
            click.option("--compiler", type=click.Path(),
                         help="Path of edgetpu_compiler [default: search PATH]."),
            click.option(timeout_flag, default=180.0,
                         type=Finite(min=0, max=MAX_TIMEOUT_S, min_open=True),
                         show_default=True, help="Seconds before the compiler is stopped."),
            click.option("--min-runtime", type=click.IntRange(1, 100),
                         help="Passed to edgetpu_compiler -m (oldest Edge TPU runtime to "
                         "support)."),
        )):  # fmt: skip
            f = option(f)
        return f

    return add


def warn(message: str) -> None:
    """One-line warning on stderr (a file name's newline escaped)."""
    click.echo(f"Warning: {one_line(message)}", err=True)


class LiveStderr:
    """A file-like view of *whatever* ``sys.stderr`` is at each call.

    Progress bars keep their file for the whole run, while host code swaps ``sys.stderr`` for a
    duplicate around TensorFlow calls (:func:`edgekit.host.tfenv.quiet_native_output`) and
    closes that duplicate afterwards: a bar holding the duplicate then writes to a closed file.
    Resolving ``sys.stderr`` on every write keeps the bar on the real terminal throughout."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        try:
            return sys.stderr.isatty()
        except (AttributeError, ValueError):
            return False

    def fileno(self) -> int:
        return sys.stderr.fileno()


class StageProgress:
    """``progress(stage, done, total)`` callback: one click bar per stage on a terminal; plain
    ``stage: total`` lines (no bar junk, no carriage returns) when stderr is a file or pipe."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.file = LiveStderr()
        self.tty = self.file.isatty()
        self.stage: str | None = None
        self.bar = None
        self.done = 0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if stage != self.stage:
            self.close()
            self.stage, self.done = stage, 0
            if not self.tty:
                click.echo(f"{stage}: {total}", err=True)
                return
            self.bar = click.progressbar(length=total, label=f"{stage:<15}", file=self.file)
            self.bar.__enter__()
        if self.bar is not None:
            self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            bar, self.bar = self.bar, None
            bar.__exit__(None, None, None)
