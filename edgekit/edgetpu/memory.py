"""The Edge TPU's on-chip parameter memory: how many bytes a model's mapped parameters take there
and how many stream from the host on every inference (what the compiler reports as "On-chip
memory used for caching model parameters" / "Off-chip memory used for streaming uncached model
parameters"). Evidence for every figure: docs/DESIGN.md, "Edge TPU mapping rules".
"""

from __future__ import annotations

from edgekit.tflite import ModelInfo, OpInfo

# About 8 MB of SRAM caches parameters (Coral); the compiler's logs put the usable part at
# 7.69-7.73 MiB (used + remaining: 3.86 + 3.83 retinanet, 3.00 + 4.73 Coral's example).
ON_CHIP_BYTES = int(7.7 * 1024 * 1024)
# Part of the SRAM can go to activations: logs of larger-input models report less room (used +
# remaining): 6.16 MiB (ResNet-18 224, PINTO0309/openvino2tensorflow issue 28), 6.89 MiB
# (yolov5s 512, coral issue 512), 7.04-7.06 MiB (EfficientDet-Lite3, yolov7-tiny). Between this
# and ON_CHIP_BYTES the parameters may or may not stream.
ON_CHIP_MIN_BYTES = int(6.15 * 1024 * 1024)
_TILE = 64  # weights are laid out in 64x64 blocks (cout and cin padded to multiples of 64)
BLOB_BYTES_PER_CHANNEL = 8
_WEIGHTED = {"CONV_2D": 1, "DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 1, "TRANSPOSE_CONV": 1}


def _up(n: int, k: int = _TILE) -> int:
    return -(-max(n, 0) // k) * k


def parameter_memory(model: ModelInfo, on_tpu: list[bool]) -> dict:
    """Predicted parameter bytes of the mapped ops and how many fit in the on-chip cache.

    Rule (checked against retinanet-mathieugalle's log, 3.86 MiB on-chip, predicted within
    2%): weights are stored in 64x64 blocks, so a conv's output and input channels are padded
    to multiples of 64 (depthwise: its channels); biases take 4 bytes per padded channel; other
    constants count as they are. What does not fit in ~7.7 MiB streams from the host on every
    inference ("Off-chip memory used for streaming uncached model parameters"); above ~6.15 MiB
    it may already stream, when the compiler keeps SRAM for large activations.
    ``parameters_blob_bytes``: the same parameters as the compiled executable stores them
    (:func:`_blob_bytes`: input channels not padded), the bytes that cross the link when they
    stream; the cache holds the padded layout (retinanet: 2.99 MiB blob, 3.86 MiB on-chip).
    """
    ts = model.main.tensors
    total, blob, seen = 0, 0, set()
    for op, tpu in zip(model.main.operators, on_tpu):
        if not tpu:
            continue
        for k, i in enumerate(op.inputs):
            if i < 0 or i in seen or not ts[i].is_constant:
                continue
            seen.add(i)
            total += _padded_bytes(op, k, ts[i].shape, ts[i].dtype, ts[i].nbytes)
            blob += _blob_bytes(op, k, ts[i].shape, ts[i].dtype, ts[i].nbytes)
    on_chip = min(total, ON_CHIP_BYTES)
    return {
        "parameters_bytes": total,
        "parameters_blob_bytes": blob,
        "on_chip_bytes": on_chip,
        "off_chip_bytes": total - on_chip,
        "on_chip_capacity_bytes": ON_CHIP_BYTES,
        "streams": total > ON_CHIP_BYTES,
        "may_stream": ON_CHIP_MIN_BYTES < total <= ON_CHIP_BYTES,
    }


def _blob_bytes(op: OpInfo, k: int, shape: tuple, dtype: str, nbytes: int) -> int:
    """Bytes of one constant in the compiled executable's parameter blob: what crosses the link
    when it streams. Output channels padded to 64, input channels not; 8 bytes per padded output
    channel (an int32 bias and an int32 requantization word). Fitted on the parameter blobs of
    15 real compiled twins (mean error 4%, worst 13%: docs/DESIGN.md, "Parameter memory")."""
    if op.opcode in _WEIGHTED and dtype == "int32" and len(shape) == 1:
        return _up(shape[0]) * BLOB_BYTES_PER_CHANNEL
    if op.opcode in _WEIGHTED and k == _WEIGHTED[op.opcode]:
        if op.opcode in ("CONV_2D", "TRANSPOSE_CONV") and len(shape) == 4:
            return _up(shape[0]) * shape[1] * shape[2] * shape[3]
        if op.opcode == "DEPTHWISE_CONV_2D" and len(shape) == 4:
            return shape[1] * shape[2] * _up(shape[3])
        if op.opcode == "FULLY_CONNECTED" and len(shape) == 2:
            return _up(shape[0]) * shape[1]
    if dtype == "int32":
        return 0
    return nbytes


def _padded_bytes(op: OpInfo, k: int, shape: tuple, dtype: str, nbytes: int) -> int:
    if op.opcode in _WEIGHTED and dtype == "int32" and len(shape) == 1:
        return _up(shape[0]) * 4  # bias
    if op.opcode in _WEIGHTED and k == _WEIGHTED[op.opcode]:
        if op.opcode in ("CONV_2D", "TRANSPOSE_CONV") and len(shape) == 4:
            return _up(shape[0]) * shape[1] * shape[2] * _up(shape[3])
        if op.opcode == "DEPTHWISE_CONV_2D" and len(shape) == 4:
            return shape[1] * shape[2] * _up(shape[3])
        if op.opcode == "FULLY_CONNECTED" and len(shape) == 2:
            return _up(shape[0]) * _up(shape[1])
    if dtype == "int32":
        return 0  # shape/axis arguments are compiled into the instructions
    return nbytes
