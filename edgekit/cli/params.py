"""Click parameter types that refuse what native code must never see.

``click.FloatRange`` lets NaN through (every comparison with NaN is false) and, without a
maximum, infinity; ``click.IntRange`` without a maximum lets ``--threads 1000000000`` reach the
interpreter, which segfaults allocating a thread pool. Every numeric option uses these instead:
finite, bounded, and the bounds shown in the error.
"""

from __future__ import annotations

import math

import click

from edgekit.limits import MAX_COUNT, MAX_THREADS, parse_bool


class Finite(click.FloatRange):
    """A finite float in [min, max] (open ends with ``min_open``/``max_open``)."""

    name = "number"

    def convert(self, value, param, ctx):
        rv = value
        if isinstance(rv, str):
            try:
                rv = float(rv.strip())
            except ValueError:
                self.fail(f"{value!r} is not a number", param, ctx)
        if isinstance(rv, (int, float)) and not math.isfinite(float(rv)):
            self.fail(f"{value!r}: must be a finite number", param, ctx)
        return super().convert(rv, param, ctx)


class Bool(click.ParamType):
    """true/false, yes/no, on/off, 1/0 (case-insensitive); anything else is an error."""

    name = "boolean"

    def convert(self, value, param, ctx):
        if isinstance(value, bool):
            return value
        try:
            return parse_bool(str(value))
        except ValueError as e:
            self.fail(str(e), param, ctx)


def count(min: int = 1, max: int = MAX_COUNT) -> click.IntRange:
    """An integer count with an upper bound (runs, images, epochs...)."""
    return click.IntRange(min=min, max=max)


THREADS = click.IntRange(min=1, max=MAX_THREADS)
PROBABILITY = Finite(0.0, 1.0)


class NonEmptyPath(click.Path):
    """``click.Path`` that refuses ``''``: ``Path('')`` is ``.``, the working folder, so an
    empty value (an unset shell variable: ``--calib "$DIR"``) silently meant "here" - convert
    calibrated on whatever images were there, ``bench --plot ''`` wrote nothing and said so
    nowhere. :func:`refuse_empty_values` gives every path parameter this check."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and value == "":
            self.fail(f"{value!r} is empty, not a path; pass a file or folder name", param, ctx)
        return super().convert(value, param, ctx)


class NonEmptyString(click.types.StringParamType):
    """A string option that refuses ``''`` (``--device ''`` ran on ``auto``, ``stack --os ''``
    and ``doctor --root ''`` were ignored: an unset shell variable, silently)."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and value == "":
            self.fail("'' is empty; pass a value (or leave the option out)", param, ctx)
        return super().convert(value, param, ctx)


NON_EMPTY_STRING = NonEmptyString()


def refuse_empty_values(command: click.Command) -> click.Command:
    """Make every path parameter of ``command`` (and of its subcommands) a
    :class:`NonEmptyPath` and every string one a :class:`NonEmptyString`, in place: one rule for
    all commands instead of a check per option. Kept as they are: a string option whose
    default is ``''`` (an MQTT user name: none) and an option read from an environment variable
    too (``--libedgetpu``: empty means unset, as for the variable). Returns ``command``."""
    for p in command.params:
        if getattr(p, "envvar", None):
            continue
        if type(p.type) is click.Path:  # same settings, one more check
            p.type.__class__ = NonEmptyPath
        elif type(p.type) is click.types.StringParamType and p.default != "":
            p.type = NON_EMPTY_STRING
    for sub in getattr(command, "commands", {}).values():
        refuse_empty_values(sub)
    return command
