"""A minimal, bounds-checked reader of flatbuffer tables (what :mod:`edgekit.tflite` needs).

Layout (little-endian): a table starts with an int32 that, subtracted from the table position,
gives its vtable: uint16 vtable size, uint16 table size, then one uint16 per field slot with the
field's offset inside the table (0 = absent, use the schema default). Offset fields (tables,
vectors, strings) hold a uint32 relative to their own position; vectors and strings start with a
uint32 element count. Every read is bounds-checked: bad bytes raise :class:`Corrupt`, never
IndexError or struct.error.
"""

from __future__ import annotations

import struct
from typing import Any

U8, I8, U16 = struct.Struct("<B"), struct.Struct("<b"), struct.Struct("<H")
I32, U32, U64, F32 = (struct.Struct(f) for f in ("<i", "<I", "<Q", "<f"))


class Corrupt(Exception):
    """The bytes do not follow the flatbuffer layout."""


class Table:
    """A view of one flatbuffer table inside ``data`` (all reads bounds-checked)."""

    __slots__ = ("data", "pos", "vt", "vt_len")

    def __init__(self, data: bytes, pos: int):
        self.data, self.pos = data, pos
        self.vt = pos - read(data, I32, pos)
        self.vt_len = read(data, U16, self.vt)
        if self.vt_len < 4 or self.vt_len % 2 or self.vt + self.vt_len > len(data):
            raise Corrupt(f"bad vtable at byte {self.vt}")

    def _off(self, slot: int) -> int:
        o = 4 + 2 * slot
        return read(self.data, U16, self.vt + o) if o < self.vt_len else 0

    def present(self, slot: int) -> bool:
        return self._off(slot) != 0

    def scalar(self, slot: int, st: struct.Struct, default: Any = 0) -> Any:
        off = self._off(slot)
        return read(self.data, st, self.pos + off) if off else default

    def _target(self, slot: int) -> int | None:
        off = self._off(slot)
        if not off:
            return None
        at = self.pos + off
        return at + read(self.data, U32, at)

    def table(self, slot: int) -> Table | None:
        at = self._target(slot)
        return None if at is None else Table(self.data, at)

    def _vector(self, slot: int, elem_size: int) -> tuple[int, int]:
        """(start, count) of a vector field; (0, 0) when absent."""
        at = self._target(slot)
        if at is None:
            return 0, 0
        n = read(self.data, U32, at)
        if at + 4 + n * elem_size > len(self.data):
            raise Corrupt(f"vector of {n} elements at byte {at} runs past the end")
        return at + 4, n

    def numbers(self, slot: int, fmt: str, size: int) -> tuple:
        start, n = self._vector(slot, size)
        return struct.unpack_from(f"<{n}{fmt}", self.data, start) if n else ()

    def blob(self, slot: int) -> tuple[int, int] | None:
        """(start, length) of a [ubyte] field, or None when absent."""
        return self._vector(slot, 1) if self._off(slot) else None

    def string(self, slot: int) -> str | None:
        span = self.blob(slot)
        return None if span is None else self.data[span[0] : sum(span)].decode("utf-8", "replace")

    def tables(self, slot: int) -> list[Table]:
        start, n = self._vector(slot, 4)
        return [
            Table(self.data, p + read(self.data, U32, p)) for p in range(start, start + 4 * n, 4)
        ]


def read(data: bytes, st: struct.Struct, pos: int) -> Any:
    # The hot path of the reader: unpack_from checks the end itself (negative offsets would
    # count from the end, so those are refused first).
    if pos >= 0:
        try:
            return st.unpack_from(data, pos)[0]
        except struct.error:
            pass
    raise Corrupt(f"read at byte {pos} outside the {len(data)}-byte file")
