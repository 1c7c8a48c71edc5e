"""What one inference does, as the latency model counts it: :class:`OpWork` per op, :class:`Work`
per model, and the per-op MACs of convolutions / depthwise / dense layers padded to the Edge
TPU's 64 lanes (shared by the TFLite and Keras front-ends)."""

from __future__ import annotations

from dataclasses import dataclass, field

from edgekit.edgetpu.latency_figures import LANES
from edgekit.edgetpu.memory import ON_CHIP_BYTES


@dataclass(frozen=True)
class OpWork:
    """One op: ``op`` name, where it runs, its ``macs`` (0 for non-weighted ops), the MACs the
    64-lane array really spends on it (``padded_macs``: channels rounded up to 64; for a
    depthwise conv its padded MACs before the depthwise cost) and ``elements`` it writes."""

    op: str
    on_tpu: bool
    macs: int = 0
    padded_macs: int = 0
    elements: int = 0
    depthwise: bool = False


@dataclass(frozen=True)
class Work:
    """What one inference does. Bytes are int8 (1 byte per element)."""

    ops: tuple[OpWork, ...]
    parameter_bytes: int  # of the mapped ops, padded as they sit in the on-chip cache
    input_bytes: int
    output_bytes: int
    source: str = "tflite"  # tflite | compiled | keras
    notes: tuple[str, ...] = field(default=())
    # the same parameters as the executable's blob (input channels unpadded): what crosses the
    # link for the part that does not fit; None = parameter_bytes
    parameter_blob_bytes: int | None = None
    # known bytes streamed per inference (a compiled model's EXECUTION_ONLY parameters): used
    # as they are instead of the cache estimate
    streamed_bytes: int | None = None


def streamed_parameter_bytes(work: Work) -> int:
    """Parameter bytes crossing the link on every inference: the blob of the share of the
    padded parameters beyond the on-chip cache (:mod:`edgekit.edgetpu.memory`)."""
    if work.streamed_bytes is not None:
        return max(0, int(work.streamed_bytes))
    excess = max(0, work.parameter_bytes - ON_CHIP_BYTES)
    if not excess:
        return 0
    blob = work.parameter_blob_bytes
    return int(excess * (blob / work.parameter_bytes)) if blob else excess


def up_to_lanes(n: int, k: int = LANES) -> int:
    """``n`` rounded up to whole multiples of the array's ``k`` lanes (channels as it runs them)."""
    return -(-max(int(n), 0) // k) * k


_up = up_to_lanes  # the short name of the MAC formulas below


def conv_work(op: str, out_hw: int, kh: int, kw: int, cin: int, cout: int, groups: int = 1,
              on_tpu: bool = True) -> OpWork:  # fmt: skip
    """A convolution producing ``out_hw`` positions (for TRANSPOSE_CONV: its input positions).
    The array takes ``kh * kw * cin`` (im2col) inputs and ``cout`` outputs per position, each
    rounded up to 64 lanes."""
    macs = out_hw * kh * kw * (cin // groups) * cout
    padded = out_hw * _up(kh * kw * cin // groups) * _up(cout) * groups
    return OpWork(op, on_tpu, macs, padded, out_hw * cout)


def depthwise_work(op: str, out_hw: int, kh: int, kw: int, channels: int,
                   on_tpu: bool = True) -> OpWork:  # fmt: skip
    macs = out_hw * kh * kw * channels
    return OpWork(op, on_tpu, macs, out_hw * kh * kw * _up(channels), out_hw * channels, True)


def dense_work(op: str, cin: int, cout: int, rows: int = 1, on_tpu: bool = True) -> OpWork:
    return OpWork(op, on_tpu, rows * cin * cout, rows * _up(cin) * _up(cout), rows * cout)
