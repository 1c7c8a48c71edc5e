"""Predict what ``edgetpu_compiler`` 16 will map, op by op, before compiling (pure Python).

``predict(model) -> MappingPrediction``: for every op of the main subgraph, Edge TPU or CPU and
why in the compiler's own status words (:mod:`edgekit.edgetpu_ops` judges each op alone), the
segments in graph order, a summary table in the compiler's ``Operator Count Status`` format,
the predicted parameter memory (on-chip cache vs streamed off-chip) and fix suggestions ranked
by how many ops each would bring onto the Edge TPU.

Partitioning (the rule the compiled pairs show; evidence in docs/DESIGN.md): the compiler makes
ONE Edge TPU subgraph on the dataflow graph. An op that is fine on its own maps unless it
depends on a CPU op that itself depends on a mapped op (that would need a second Edge TPU
subgraph: "More than one subgraph is not supported"). CPU ops that only depend on the graph
inputs (a CAST or float QUANTIZE at the input) run first, and the body behind them still maps;
branches that do not pass through a CPU op keep mapping after another branch fell back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgekit import edgetpu_ops as R
from edgekit.tflite import EDGETPU_CUSTOM_OP, ModelInfo, OpInfo

MAPPED = R.MAPPED
SUBGRAPH = R.SUBGRAPH
# About 8 MB of SRAM caches parameters (Coral); the compiler's logs put the usable part at
# 7.69-7.73 MiB (used + remaining: 3.86 + 3.83 retinanet, 3.00 + 4.73 Coral's example).
ON_CHIP_BYTES = int(7.7 * 1024 * 1024)
# Part of the SRAM can go to activations: logs of larger-input models report less room (used +
# remaining): 6.16 MiB (ResNet-18 224, PINTO0309/openvino2tensorflow issue 28), 6.89 MiB
# (yolov5s 512, coral issue 512), 7.04-7.06 MiB (EfficientDet-Lite3, yolov7-tiny). Between this
# and ON_CHIP_BYTES the parameters may or may not stream.
ON_CHIP_MIN_BYTES = int(6.15 * 1024 * 1024)
_TILE = 64  # weights are laid out in 64x64 blocks (cout and cin padded to multiples of 64)
_WEIGHTED = {"CONV_2D": 1, "DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 1, "TRANSPOSE_CONV": 1}


@dataclass(frozen=True)
class OpMapping:
    """One op of the main subgraph: ``index`` in graph order, ``op`` name and ``version``,
    where it runs, ``status`` in the compiler's words, ``reason`` with the details, ``fix``."""

    index: int
    op: str
    on_tpu: bool
    reason: str
    status: str = MAPPED
    version: int = 1
    fix: str | None = None

    def to_dict(self) -> dict:
        d = {"index": self.index, "op": self.op, "version": self.version,
             "on_tpu": self.on_tpu, "status": self.status, "reason": self.reason}  # fmt: skip
        if self.fix:
            d["fix"] = self.fix
        return d


@dataclass(frozen=True)
class MappingPrediction:
    tpu_ops: int
    cpu_ops: int
    ops: tuple[OpMapping, ...]
    compiled: bool = False
    memory: dict = field(default_factory=dict, hash=False)
    suggestions: tuple[dict, ...] = ()

    @property
    def fully_mapped(self) -> bool:
        return self.cpu_ops == 0

    @property
    def first_unmapped(self) -> OpMapping | None:
        return next((o for o in self.ops if not o.on_tpu), None)

    @property
    def cpu_op_indices(self) -> tuple[int, ...]:
        return tuple(o.index for o in self.ops if not o.on_tpu)

    def segments(self) -> list[dict]:
        """Runs of consecutive ops (graph order) on the same side: ``{"on", "ops": [i, ...]}``."""
        out: list[dict] = []
        for o in self.ops:
            where = "edgetpu" if o.on_tpu else "cpu"
            if out and out[-1]["on"] == where:
                out[-1]["ops"].append(o.index)
            else:
                out.append({"on": where, "ops": [o.index]})
        return out

    def summary(self) -> list[dict]:
        """Rows of the compiler's ``Operator Count Status`` table, in order of appearance."""
        rows: dict[tuple[str, str], int] = {}
        for o in self.ops:
            rows[(o.op, o.status)] = rows.get((o.op, o.status), 0) + 1
        return [{"operator": k[0], "count": n, "status": k[1]} for k, n in rows.items()]

    def to_dict(self) -> dict:
        return {
            "tpu_ops": self.tpu_ops,
            "cpu_ops": self.cpu_ops,
            "compiled": self.compiled,
            "ops": [o.to_dict() for o in self.ops],
            "segments": self.segments(),
            "summary": self.summary(),
            "memory": self.memory,
            "suggestions": list(self.suggestions),
        }


def predict(model: ModelInfo) -> MappingPrediction:
    """Predict the Edge TPU mapping of ``model``'s main subgraph, op by op.

    For a model already compiled by ``edgetpu_compiler`` this reports what the compiler did:
    the ``edgetpu-custom-op`` runs on the TPU, every other op was left on the CPU.
    """
    ops = model.main.operators
    if model.is_edgetpu_compiled:
        result = tuple(
            OpMapping(op.index, op.opcode, True, "compiled into the Edge TPU custom op",
                      MAPPED, op.version)
            if op.opcode == EDGETPU_CUSTOM_OP
            else OpMapping(op.index, op.opcode, False, "left on the CPU by edgetpu_compiler",
                           "Left on the CPU by the compiler", op.version)
            for op in ops
        )  # fmt: skip
        tpu = sum(o.on_tpu for o in result)
        return MappingPrediction(tpu, len(result) - tpu, result, compiled=True)
    inputs = frozenset(model.main.inputs)
    verdicts = [R.judge(op, model, inputs) for op in ops]
    on_tpu, blocker = partition(model, [v is None for v in verdicts])
    result = []
    for op, v, tpu in zip(ops, verdicts, on_tpu):
        if tpu:
            note = R.version_note(op)
            reason = f"{MAPPED} ({note})" if note else MAPPED
            result.append(OpMapping(op.index, op.opcode, True, reason, MAPPED, op.version))
        elif v is not None:
            result.append(OpMapping(op.index, op.opcode, False, v.reason, v.status, op.version,
                                    v.fix))  # fmt: skip
        else:
            b = ops[blocker[op.index]]
            reason = (f"depends on #{b.index} {b.opcode}, which runs on the CPU after Edge TPU "
                      "ops: mapping it would need a second Edge TPU subgraph")  # fmt: skip
            result.append(OpMapping(op.index, op.opcode, False, reason, SUBGRAPH, op.version))
    result = tuple(result)
    tpu = sum(o.on_tpu for o in result)
    return MappingPrediction(
        tpu,
        len(result) - tpu,
        result,
        memory=parameter_memory(model, [o.on_tpu for o in result]),
        suggestions=tuple(suggest(model, verdicts, tpu)),
    )


def partition(model: ModelInfo, ok: list[bool]) -> tuple[list[bool], dict[int, int]]:
    """Which ops land in the single Edge TPU subgraph, given which are fine on their own.

    Returns (on_tpu per op, {op: the CPU op that cuts it off} for ops fine on their own that
    still run on the CPU). Ops are visited in graph order, which TFLite keeps topological.
    """
    ops = model.main.operators
    producer: dict[int, int] = {}
    for op in ops:
        for t in op.outputs:
            if t >= 0:
                producer[t] = op.index
    on_tpu = [False] * len(ops)
    # op -> the "tail" CPU op (a CPU op with a mapped op upstream) that cuts it off
    cut: dict[int, int] = {}
    tpu_above = [False] * len(ops)  # op i has a mapped op upstream (or is one)
    for op in ops:
        ups = [producer[t] for t in op.inputs if t >= 0 and t in producer]
        blocked = next((cut[u] for u in ups if u in cut), None)
        if blocked is None:
            blocked = next((u for u in ups if not on_tpu[u] and tpu_above[u]), None)
        above = any(tpu_above[u] for u in ups)
        if ok[op.index] and blocked is None:
            on_tpu[op.index] = True
            above = True
        elif blocked is not None:
            cut[op.index] = blocked
        tpu_above[op.index] = above
    blocker = {i: b for i, b in cut.items() if ok[i]}
    return on_tpu, blocker


# ---- parameter memory -------------------------------------------------------------------------


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
    """
    ts = model.main.tensors
    total, seen = 0, set()
    for op, tpu in zip(model.main.operators, on_tpu):
        if not tpu:
            continue
        for k, i in enumerate(op.inputs):
            if i < 0 or i in seen or not ts[i].is_constant:
                continue
            seen.add(i)
            total += _padded_bytes(op, k, ts[i].shape, ts[i].dtype, ts[i].nbytes)
    on_chip = min(total, ON_CHIP_BYTES)
    return {
        "parameters_bytes": total,
        "on_chip_bytes": on_chip,
        "off_chip_bytes": total - on_chip,
        "on_chip_capacity_bytes": ON_CHIP_BYTES,
        "streams": total > ON_CHIP_BYTES,
        "may_stream": ON_CHIP_MIN_BYTES < total <= ON_CHIP_BYTES,
    }


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


# ---- fix suggestions --------------------------------------------------------------------------


def suggest(model: ModelInfo, verdicts: list, tpu_now: int) -> list[dict]:
    """One suggestion per distinct fix, ranked by the ops it would bring onto the Edge TPU.

    The ops sharing a fix are "fixed" together and the partition recomputed: the gain counts
    them and every op they stopped cutting off.
    """
    ok = [v is None for v in verdicts]
    groups: dict[str, list[int]] = {}
    ops = model.main.operators
    for i, v in enumerate(verdicts):
        if v is not None and not ops[i].is_custom:  # custom ops never map: nothing to fix
            groups.setdefault(v.fix or v.reason, []).append(i)
    out = []
    for fix, idx in groups.items():
        trial = list(ok)
        for i in idx:
            trial[i] = True
        gain = sum(partition(model, trial)[0]) - tpu_now
        out.append({"fix": fix, "ops_gained": gain, "ops": idx, "status": verdicts[idx[0]].status})
    size = smaller_input(model, verdicts)
    if size is not None:
        side, idx = size
        trial = list(ok)
        for i in idx:
            trial[i] = True
        h, w = model.inputs[0].shape[1:3]
        out.append({
            "fix": f"use a smaller input: about {side[0]}x{side[1]} instead of {h}x{w} brings the "
                   "oversized tensors within the compiler's limits (they grow with the input area)",
            "ops_gained": sum(partition(model, trial)[0]) - tpu_now,
            "ops": idx,
            "status": R.UNSPECIFIED,
        })  # fmt: skip
    return sorted(out, key=lambda s: (-s["ops_gained"], s["ops"][0]))


def smaller_input(model: ModelInfo, verdicts: list) -> tuple[tuple[int, int], list[int]] | None:
    """The input (height, width) under which every size-limited op would fit, assuming those
    tensors grow with the input area (detection heads: one row per anchor), rounded down to a
    multiple of 32; None without an image input [1, H, W, C] or size-limited ops."""
    idx = [i for i, v in enumerate(verdicts) if v is not None and v.shrink]
    if not idx or len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        return None
    ratio = min(verdicts[i].shrink for i in idx)
    h, w = model.inputs[0].shape[1:3]
    side = tuple(int(d * ratio**0.5) // 32 * 32 for d in (h, w))
    if min(side) < 32 or side == (h, w):
        return None
    return (side[0], side[1]), idx
