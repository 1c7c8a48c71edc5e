"""Per-op limits of ``edgetpu_compiler`` 16 and the words it reports them in (no TensorFlow).

Data plus small helpers: the compiler's status strings, the size limits (each with its
evidence), :class:`Verdict` and the tensor layout helpers. The check per op type with a
limitation (Coral's operations table, refined by what the compiled pairs in ``../shared/data``
show; evidence in docs/DESIGN.md, "Edge TPU mapping rules") is in
:mod:`edgekit.edgetpu.limit_checks`; :mod:`edgekit.edgetpu.ops` runs them after the data-type,
op-type, version and rank checks.

Tensor layout: the Edge TPU holds a tensor as its 3 innermost dimensions ``(y, x, z)``
(``z`` = channels); outer dimensions must be 1. A "row" is ``x * z`` elements (bytes at int8).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from edgekit.tflite import ModelInfo, OpInfo, TensorInfo

# ---- the compiler's status strings (its log's "Status" column) --------------------------------
MAPPED = "Mapped to Edge TPU"
NOT_SUPPORTED = "Operation not supported"
UNSPECIFIED = "Operation is otherwise supported, but not mapped due to some unspecified limitation"
SUBGRAPH = "More than one subgraph is not supported"
VERSION = "Operation version not supported"
DTYPE = "Operation is working on an unsupported data type"
RANK = "Tensor has unsupported rank (up to 3 innermost dimensions mapped)"
# A STRIDED_SLICE with a stride other than 1 (compiler 15 log of a yolov5s Focus layer's 4
# slices, tetutaro/yolo_various_framework weights/README.md)
STRIDED = "Only Strided-Slice with unitary strides supported"
# The compiler's words when its TFLite cannot read the model ("Invalid model: X / Model could
# not be parsed"): no op maps (edgekit.edgetpu.ops.UNREADABLE_VERSION)
PARSE = "Model could not be parsed"
STATUSES = (MAPPED, NOT_SUPPORTED, UNSPECIFIED, SUBGRAPH, VERSION, DTYPE, RANK, STRIDED, PARSE)

# Largest row (x * z bytes) of any tensor the compiler maps. Evidence: rows up to 199,920 B
# mapped (yolov5s@224's [1,2352,85] in coral issue 512's size sweep); 230,400 B (yolov8
# RESHAPE to [1,144,1600]) and more never (yolov8 [1,64..144,8400], yolov5 [1,4800,85],
# [1,25200,85]; yolov5s@256's [1,3072,85]). 200 KiB lies between.
MAX_ROW_BYTES = 200 * 1024
# TRANSPOSE maps up to this many elements. Evidence: [1,20,20,144] (57,600, yolov8) and
# [1,784,3,85] (199,920, yolov5s@224) mapped; [1,40,40,144] (230,400, yolov8) and
# [1,1024,3,85] (261,120, yolov5s@256) did not.
MAX_TRANSPOSE_ELEMENTS = 200 * 1024
# A TRANSPOSE that moves the innermost (channel) axis, e.g. NHWC -> NCHW (0, 3, 1, 2) in YOLOv8
# heads, maps up to far fewer. Evidence: [1,20,20,68] (27,200) and [1,20,20,144] (57,600)
# mapped in two twins, a 224 export's [1,28,28,79] (61,936) and [1,16,4,1029] (65,856) too
# (ultralytics issue 4754: all 5 TRANSPOSEs mapped), and YOLOv8n maps completely up to 192x192
# ([1,24,24,144], 82,944; jveitchmichaelis/edgetpu-yolo issue 17); [1,40,40,68] (108,800,
# yolov8n-ppe-giovanimn) and [1,40,40,144] (230,400, yolov8n-640-maxwell) did not. 96 Ki lies
# between 82,944 and 108,800.
MAX_CHANNEL_TRANSPOSE_ELEMENTS = 96 * 1024
# A RESHAPE that moves data between y, x and z maps up to this many elements ("certain
# reshapes might not be mapped for large tensor sizes", Coral). Evidence: [1,40,40,255] ->
# [1,1600,3,85] (408,000, yolov5n) mapped; [1,48,48,255] -> [1,2304,3,85] (587,520,
# yolov5s@384) and [1,80,80,255] -> [1,6400,3,85] (1,632,000, yolov5n) did not.
MAX_RELAYOUT_ELEMENTS = 512 * 1024
# A RESIZE_NEAREST_NEIGHBOR / RESIZE_BILINEAR maps only up to this many output elements (Coral:
# "depending on input/output size, this operation may not be mapped"). Evidence: 80x80x128
# (819,200, nearest, yolov8n twins, compiler 16) and 128x128x32 (524,288, bilinear, coral issue
# 31) mapped; 1024x1024x3 (3,145,728, nearest) and 1024x1024x6 (bilinear) did not, "due to their
# size" (coral issue 597, compiler 16), nor did 512x512x32 (bilinear, issue 31). 2 Mi lies
# between 819,200 and 3,145,728; where exactly is not known.
MAX_RESIZE_OUTPUT_ELEMENTS = 2 * 1024 * 1024
# A MEAN over y and/or x maps up to this many reduced positions (y * x averaged into one value).
# Evidence: the Coral maintainer on a MEAN of a [1,256,128,3] input (32,768 positions, compiler
# 16): "not able to mapped"; split into four [1,64,128,3] MEANs (8,192 each) every op mapped
# (coral issue 461). A GlobalAveragePooling2D of [1,256,256,32] (65,536) made compiler 14 abort
# (coral issue 183). 16 Ki lies between 8,192 and 32,768; where exactly is not known. Read as a
# spatial mean (a channel mean of 3 values would break the multiple-of-4 rule before and after
# the split alike); classifier heads (7x7 .. 20x20) and SE blocks up to 128x128 stay inside.
MAX_MEAN_POSITIONS = 16 * 1024
# Coral's table: SOFTMAX over at most 16,000 elements; the yolov8 pair shows a softmax over the
# innermost 16 of a [1,4,8400,16] tensor is otherwise accepted, so the limit is on that axis.
MAX_SOFTMAX_DEPTH = 16_000


@dataclass(frozen=True)
class Verdict:
    """Why one op cannot be mapped: ``status`` in the compiler's words, ``reason`` with the
    numbers, ``fix`` what to change (None when there is nothing to say)."""

    status: str
    reason: str
    fix: str | None = None
    # For a size limit: limit / actual size (< 1), by which the tensor must shrink to map.
    shrink: float | None = None


# ---- tensors -----------------------------------------------------------------------------------


def yxz(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """The 3 innermost dimensions (y, x, z) of a shape, padded with leading 1s."""
    s = (1, 1, 1, *shape)[-3:]
    return s[0], s[1], s[2]


def activations(op: OpInfo, model: ModelInfo) -> list[TensorInfo]:
    """Non-constant input/output tensors of ``op`` (what flows through the Edge TPU)."""
    ts = model.main.tensors
    return [ts[i] for i in (*op.inputs, *op.outputs) if i >= 0 and not ts[i].is_constant]


def const_ints(model: ModelInfo, t: TensorInfo) -> tuple[int, ...] | None:
    """Values of a constant int32 tensor (axes, paddings, strides), None when not constant."""
    if not t.is_constant or t.dtype != "int32":
        return None
    raw = model.buffer_bytes(t.buffer)
    return struct.unpack(f"<{len(raw) // 4}i", raw[: len(raw) // 4 * 4])


def input_tensor(model: ModelInfo, op: OpInfo, k: int) -> TensorInfo:
    i = op.inputs[k]
    if i < 0:
        raise IndexError(f"optional input {k} omitted")
    return model.main.tensors[i]


def output_tensor(model: ModelInfo, op: OpInfo, k: int = 0) -> TensorInfo:
    i = op.outputs[k]
    if i < 0:
        raise IndexError(f"output {k} omitted")
    return model.main.tensors[i]

