"""Pure-python reader of ``.tflite`` flatbuffers: no TensorFlow, no ``flatbuffers`` package.

``read_model(path_or_bytes) -> ModelInfo`` decodes what edgekit needs to reason about a model
(subgraphs, operators, tensors with shapes, dtypes and quantization, buffer sizes, metadata),
on the host (to check a conversion) and on the Pi (to inspect a bundle), where TensorFlow is
absent.

The file starts with a uint32 offset to the root table (``Model``), then the 4-byte file
identifier ``TFL3``; tables are read with :mod:`edgekit.flatbuffer`, whose bounds checks turn
truncated or corrupt files into an :class:`~edgekit.errors.EdgekitError`.

Schema tables live in :mod:`edgekit.tflite_schema`, the records decoded into in
:mod:`edgekit.tflite_records`.
"""

from __future__ import annotations

import os
import struct
from typing import Any, Union

from edgekit import tflite_schema as S
from edgekit.errors import EdgekitError
from edgekit.flatbuffer import F32, I8, I32, U8, U32, U64, Corrupt, Table, read
from edgekit.safeio import read_bytes
from edgekit.tflite_records import (  # noqa: F401  (re-exported: the records' one import path)
    EDGETPU_CUSTOM_OP,
    FLOAT_DTYPES,
    BufferInfo,
    ModelInfo,
    OpInfo,
    Quantization,
    SubgraphInfo,
    TensorInfo,
    num_elements,
)
from edgekit.tflite_records import HINT as _HINT

MAX_MODEL_BYTES = 2 * 1024**3  # flatbuffers address at most 2 GiB


def read_model(source: Union[str, os.PathLike, bytes, bytearray, memoryview]) -> ModelInfo:
    """Decode a .tflite file (path) or its bytes. Raises EdgekitError when it is not one."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        name, data = "<bytes>", bytes(source)
    else:
        name = os.fspath(source)
        if os.path.isdir(name):
            raise EdgekitError(f"{name}: not a TFLite model (it is a directory)", _HINT)
        if not os.path.exists(name):
            raise EdgekitError(f"{name}: not a TFLite model (no such file)", "check the path")
        data = read_bytes(name, "model", MAX_MODEL_BYTES)
    if not data:
        raise EdgekitError(f"{name}: not a TFLite model (the file is empty)", _HINT)
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise EdgekitError(f"{name}: not a TFLite model (no 'TFL3' file identifier)", _HINT)
    try:
        return _parse(name, data)
    except (Corrupt, struct.error, IndexError, ValueError, OverflowError, MemoryError) as e:
        raise EdgekitError(
            f"{name}: not a TFLite model (corrupt or truncated flatbuffer: {e})", _HINT
        ) from None


def _parse(name: str, data: bytes) -> ModelInfo:
    root = Table(data, read(data, U32, 0))
    buffers = tuple(_buffer(i, t) for i, t in enumerate(root.tables(S.MODEL["buffers"])))
    codes = [_opcode(t) for t in root.tables(S.MODEL["operator_codes"])]
    subgraphs = tuple(_subgraph(t, codes, buffers) for t in root.tables(S.MODEL["subgraphs"]))
    if not subgraphs:
        raise Corrupt("the model has no subgraph")
    metadata = {}
    for t in root.tables(S.MODEL["metadata"]):
        idx = _index(t.scalar(S.METADATA["buffer"], U32), len(buffers), "metadata buffer")
        b = buffers[idx]
        metadata[t.string(S.METADATA["name"]) or ""] = data[b.offset : b.offset + b.size]
    return ModelInfo(
        path=name,
        size_bytes=len(data),
        version=root.scalar(S.MODEL["version"], U32),
        description=root.string(S.MODEL["description"]) or "",
        subgraphs=subgraphs,
        metadata=metadata,
        buffers=buffers,
        _data=data,
    )


def _index(i: int, n: int, what: str) -> int:
    if not 0 <= i < n:
        raise Corrupt(f"{what} index {i} out of range (0..{n - 1})")
    return i


def _buffer(index: int, t: Table) -> BufferInfo:
    span = t.blob(S.BUFFER["data"])
    if span is not None and span[1]:
        return BufferInfo(index, span[1], span[0])
    offset = t.scalar(S.BUFFER["offset"], U64)
    # Buffer.offset is only meaningful when > 1 (0/1 are placeholders written by the converter).
    if offset > 1:
        return BufferInfo(index, t.scalar(S.BUFFER["size"], U64), offset, external=True)
    return BufferInfo(index, 0, 0)


def _opcode(t: Table) -> tuple[str, str, bool, int]:
    """(opcode, builtin name, is_custom, version) of an OperatorCode."""
    f = S.OPERATOR_CODE
    # Old files only set the int8 deprecated field, new ones both; codes >= 127 only the int32.
    code = max(t.scalar(f["deprecated_builtin_code"], I8), t.scalar(f["builtin_code"], I32))
    version = t.scalar(f["version"], I32, 1)
    builtin = S.BUILTIN_OPERATORS[code] if 0 <= code < len(S.BUILTIN_OPERATORS) else f"OP_{code}"
    if code == S.CUSTOM_CODE:
        return t.string(f["custom_code"]) or "CUSTOM", "CUSTOM", True, version
    return builtin, builtin, False, version


def _subgraph(t: Table, codes: list, buffers: tuple[BufferInfo, ...]) -> SubgraphInfo:
    f = S.SUBGRAPH
    tensors = tuple(_tensor(i, tt, buffers) for i, tt in enumerate(t.tables(f["tensors"])))
    ops = tuple(
        _operator(i, ot, codes, len(tensors)) for i, ot in enumerate(t.tables(f["operators"]))
    )
    ins, outs = t.numbers(f["inputs"], "i", 4), t.numbers(f["outputs"], "i", 4)
    for i in ins + outs:
        _index(i, len(tensors), "subgraph tensor")
    return SubgraphInfo(t.string(f["name"]) or "", tensors, ops, ins, outs)


_NO_DATA = BufferInfo(0, 0, 0)


def _tensor(index: int, t: Table, buffers: tuple[BufferInfo, ...]) -> TensorInfo:
    f = S.TENSOR
    shape = t.numbers(f["shape"], "i", 4)
    sig = t.numbers(f["shape_signature"], "i", 4) if t.present(f["shape_signature"]) else None
    type_id = t.scalar(f["type"], I8)
    dtype, bits = (
        S.TENSOR_TYPES[type_id] if 0 <= type_id < len(S.TENSOR_TYPES) else (f"type_{type_id}", 0)
    )
    b = t.scalar(f["buffer"], U32)
    # Buffer 0 is the conventional empty buffer; a model may omit the buffers vector entirely
    # (Coral's model_invoking_error.tflite), which TFLite loads: no buffer means no data.
    buf = _NO_DATA if b == 0 and not buffers else buffers[_index(b, len(buffers), "buffer")]
    n = num_elements(shape)
    return TensorInfo(
        index=index,
        name=t.string(f["name"]) or "",
        shape=shape,
        shape_signature=sig,
        dtype=dtype,
        quantization=_quantization(t.table(f["quantization"])),
        buffer=buf.index,
        is_constant=buf.size > 0,
        nbytes=(n * bits + 7) // 8 if bits else buf.size,
        is_variable=bool(t.scalar(f["is_variable"], U8)),
    )


def _quantization(q: Table | None) -> Quantization | None:
    if q is None:
        return None
    f = S.QUANTIZATION
    scale = q.numbers(f["scale"], "f", 4)
    if not scale:
        return None  # min/max only, or custom details: not affine-quantized
    zp = q.numbers(f["zero_point"], "q", 8) or (0,) * len(scale)
    return Quantization(scale, zp, q.scalar(f["quantized_dimension"], I32))


def _operator(index: int, t: Table, codes: list, n_tensors: int) -> OpInfo:
    f = S.OPERATOR
    opcode, builtin, is_custom, version = codes[
        _index(t.scalar(f["opcode_index"], U32), len(codes), "opcode")
    ]
    ins, outs = t.numbers(f["inputs"], "i", 4), t.numbers(f["outputs"], "i", 4)
    for i in ins + outs:
        if i != -1:
            _index(i, n_tensors, "operator tensor")
    custom = None
    span = t.blob(f["custom_options"])
    if span is not None:
        custom = t.data[span[0] : sum(span)]
    elif t.scalar(f["large_custom_options_offset"], U64) > 1:
        start = t.scalar(f["large_custom_options_offset"], U64)
        custom = t.data[start : start + t.scalar(f["large_custom_options_size"], U64)]
    options = _options(t.scalar(f["builtin_options_type"], U8), t.table(f["builtin_options"]))
    return OpInfo(index, opcode, builtin, is_custom, version, ins, outs, options, custom)


def _options(union_type: int, t: Table | None) -> dict:
    """Decode the builtin option table into {field: value} (enums as names); {} if unknown."""
    spec = S.BUILTIN_OPTIONS.get(union_type)
    if spec is None or t is None:
        return {}
    out: dict[str, Any] = {}
    for name, slot, kind, default in spec[1]:
        if kind == "i32":
            out[name] = t.scalar(slot, I32, default)
        elif kind == "f32":
            out[name] = t.scalar(slot, F32, default)
        elif kind == "bool":
            out[name] = bool(t.scalar(slot, U8, default))
        elif kind == "ints":
            out[name] = t.numbers(slot, "i", 4)
        elif kind == "dtype":
            v = t.scalar(slot, I8, default)
            out[name] = S.TENSOR_TYPES[v][0] if 0 <= v < len(S.TENSOR_TYPES) else f"type_{v}"
        else:  # enum tuple stored as a byte
            v = t.scalar(slot, I8, default)
            out[name] = kind[v] if 0 <= v < len(kind) else v
    return out
