"""The records :func:`edgekit.tflite.read_model` decodes a ``.tflite`` into (frozen, pure Python):
:class:`ModelInfo` (subgraphs, metadata, buffers; conveniences on the main subgraph),
:class:`SubgraphInfo`, :class:`TensorInfo` (shape, dtype, :class:`Quantization`, size),
:class:`OpInfo` and :class:`BufferInfo`."""

from __future__ import annotations

from dataclasses import dataclass, field

from edgekit.errors import EdgekitError

EDGETPU_CUSTOM_OP = "edgetpu-custom-op"
FLOAT_DTYPES = frozenset({"float16", "float32", "float64", "bfloat16"})
HINT = "pass a .tflite file written by TFLiteConverter or edgetpu_compiler"


def num_elements(shape) -> int:
    """Elements of a tensor of ``shape`` (negative, i.e. dynamic, dims count as 0)."""
    n = 1
    for d in shape:
        n *= max(d, 0)
    return n


@dataclass(frozen=True)
class Quantization:
    """Affine quantization ``real = scale * (q - zero_point)``; one entry per tensor, or one per
    channel along ``quantized_dimension`` (per-channel conv weights)."""

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    quantized_dimension: int = 0

    @property
    def per_channel(self) -> bool:
        return len(self.scale) > 1


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of a subgraph. ``shape`` is static (dynamic dims read as 1 there);
    ``shape_signature`` keeps -1 for dynamic dims (None when the converter wrote none)."""

    index: int
    name: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...] | None
    dtype: str
    quantization: Quantization | None
    buffer: int
    is_constant: bool
    nbytes: int
    is_variable: bool = False

    @property
    def is_dynamic(self) -> bool:
        return any(d < 0 for d in (self.shape_signature or ()))

    @property
    def num_elements(self) -> int:
        return num_elements(self.shape)


@dataclass(frozen=True)
class OpInfo:
    """One operator. ``opcode`` is the builtin name (``CONV_2D``) or, for custom ops, the custom
    code (``edgetpu-custom-op``); ``inputs``/``outputs`` are tensor indices (-1 = omitted)."""

    index: int
    opcode: str
    builtin: str
    is_custom: bool
    version: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict = field(default_factory=dict, hash=False)
    custom_options: bytes | None = None


@dataclass(frozen=True)
class SubgraphInfo:
    name: str
    tensors: tuple[TensorInfo, ...]
    operators: tuple[OpInfo, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclass(frozen=True)
class BufferInfo:
    """A constant-data buffer: ``size`` bytes at file offset ``offset``; ``external`` when stored
    after the flatbuffer (models > 2 GB use Buffer.offset/size instead of Buffer.data)."""

    index: int
    size: int
    offset: int
    external: bool = False


@dataclass(frozen=True)
class ModelInfo:
    """A decoded .tflite file. Conveniences refer to the main subgraph (``subgraphs[0]``)."""

    path: str
    size_bytes: int
    version: int
    description: str
    subgraphs: tuple[SubgraphInfo, ...]
    metadata: dict = field(hash=False)
    buffers: tuple[BufferInfo, ...] = ()
    _data: bytes = field(default=b"", repr=False, compare=False)

    @property
    def main(self) -> SubgraphInfo:
        return self.subgraphs[0]

    @property
    def inputs(self) -> tuple[TensorInfo, ...]:
        return tuple(self.main.tensors[i] for i in self.main.inputs)

    @property
    def outputs(self) -> tuple[TensorInfo, ...]:
        return tuple(self.main.tensors[i] for i in self.main.outputs)

    def op_counts(self) -> dict[str, int]:
        """Op name -> count over all subgraphs, in order of first appearance."""
        counts: dict[str, int] = {}
        for sg in self.subgraphs:
            for op in sg.operators:
                counts[op.opcode] = counts.get(op.opcode, 0) + 1
        return counts

    @property
    def is_edgetpu_compiled(self) -> bool:
        return any(op.opcode == EDGETPU_CUSTOM_OP for op in self.custom_ops())

    def custom_ops(self) -> tuple[OpInfo, ...]:
        return tuple(op for sg in self.subgraphs for op in sg.operators if op.is_custom)

    def float_tensors(self) -> tuple[TensorInfo, ...]:
        """Tensors of the main subgraph holding floating-point data."""
        return tuple(t for t in self.main.tensors if t.dtype in FLOAT_DTYPES)

    def dynamic_tensors(self) -> tuple[TensorInfo, ...]:
        """Tensors of the main subgraph with a dynamic (-1) dimension in their signature."""
        return tuple(t for t in self.main.tensors if t.is_dynamic)

    def buffer_bytes(self, index: int) -> bytes:
        """Raw bytes of buffer ``index`` (b"" for activations)."""
        if index == 0 and not self.buffers:
            return b""  # a model without a buffers vector: no tensor holds data
        b = self.buffers[index]
        if b.offset + b.size > len(self._data):
            raise EdgekitError(f"{self.path}: buffer {index} lies outside the file", HINT)
        return bytes(self._data[b.offset : b.offset + b.size])

    def associated_files(self) -> dict[str, bytes]:
        """Files packed after the flatbuffer as a zip by TFLite's metadata writer (Coral's models
        carry their labels this way): name -> bytes; {} when there are none."""
        import io
        import zipfile

        if b"PK\x05\x06" not in self._data[-65_600:]:  # no zip end-of-central-directory record
            return {}
        try:
            with zipfile.ZipFile(io.BytesIO(self._data)) as z:
                return {n: z.read(n) for n in z.namelist()}
        except (zipfile.BadZipFile, OSError, ValueError):
            return {}

    def constant(self, tensor: TensorInfo):
        """The raw (still quantized) values of a constant tensor as a numpy array."""
        import numpy as np  # lazy: the reader itself needs only the standard library

        raw = self.buffer_bytes(tensor.buffer)
        return np.frombuffer(raw, dtype=np.dtype(tensor.dtype)).reshape(tensor.shape)
