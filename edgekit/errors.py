"""The one exception type users see.

Library code raises :class:`EdgekitError` for anything the user can fix (bad file, wrong model,
missing device, missing compiler...). The CLI prints ``str(err)`` as a single line and exits with
``err.exit_code``; it never shows a traceback for these.
"""

from __future__ import annotations

import re

# C0/C1 controls, DEL and the Unicode line/paragraph separators: any of them in a file name would
# split (or rewrite, \r) the one line an error is. Tab included: terminals expand it unpredictably.
_BREAKS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def one_line(text: str) -> str:
    """``text`` with every character that could break a terminal line escaped as Python writes it
    (``\\n``, ``\\x1b``, ``\\u2028``): a file name holding a newline or an escape sequence
    stays inside the one ``Error: ...`` line and cannot recolour or rewrite the terminal."""
    return _BREAKS.sub(lambda m: _NAMED.get(m[0]) or repr(m[0])[1:-1], text)


class EdgekitError(Exception):
    """A problem the user can act on.

    Args:
        message: what is wrong, e.g. ``"model.h5: not a Keras model"``.
        hint: what to do about it, e.g. ``"pass a .h5, .keras file or a SavedModel directory"``.
        exit_code: process exit status the CLI uses (1 unless a command documents otherwise).
    """

    def __init__(self, message: str, hint: str | None = None, exit_code: int = 1):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}; {self.hint}"
        return self.message


class named:
    """Context manager: an EdgekitError raised inside gets ``NAME: `` in front of its message,
    e.g. ``[model] labels: /x.txt: no such label file``, so a config error points at its line."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        return self

    def __exit__(self, kind, e, tb):
        if isinstance(e, EdgekitError) and not e.message.startswith(self.name):
            raise EdgekitError(f"{self.name}: {e.message}", e.hint, e.exit_code) from None
        return False
