"""Predict what ``edgetpu_compiler`` 16 will map, op by op, before compiling (pure Python).

``predict(model) -> MappingPrediction``: for every op of the main subgraph, Edge TPU or CPU and
why in the compiler's own status words (:mod:`edgekit.edgetpu.ops` judges each op alone), the
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

from edgekit.edgetpu import ops as R
from edgekit.edgetpu.memory import ON_CHIP_BYTES, ON_CHIP_MIN_BYTES, parameter_memory  # noqa: F401
from edgekit.tflite import EDGETPU_CUSTOM_OP, ModelInfo

MAPPED = R.MAPPED
SUBGRAPH = R.SUBGRAPH
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
    # Why edgetpu_compiler 16 will not read the model at all (no op maps), else None
    compile_error: str | None = None

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
            "compile_error": self.compile_error,
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
    unreadable = {op.index: e for op in ops if (e := R.unreadable(op))}
    if unreadable:
        return _unreadable(model, verdicts, unreadable)
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


def _unreadable(model: ModelInfo, verdicts: list, errors: dict[int, str]) -> MappingPrediction:
    """The compiler's TFLite cannot read an op code's version: it stops, nothing maps. The fix
    suggested is the version's, gaining what would map once it is fixed."""
    ops = model.main.operators
    cause = next((i for i in sorted(errors) if R.needs_version(ops[i], model)), min(errors))
    first = ops[cause]
    meaning, fix = R.version_fix(first)
    why = f'edgetpu_compiler 16 stops: "{errors[cause]}" ({meaning}, #{cause})'
    same = f"; every {first.opcode} of a .tflite carries the version its newest one needs"
    result = tuple(
        OpMapping(op.index, op.opcode, False,
                  why if op.index == cause else why + (same if op.index in errors else
                                                       "; no op of the model compiles"),
                  R.PARSE, op.version, fix if op.index in errors else None)
        for op in ops
    )  # fmt: skip
    trial = [v is None or i in errors for i, v in enumerate(verdicts)]
    gain = sum(partition(model, trial)[0])
    return MappingPrediction(
        0,
        len(result),
        result,
        memory=parameter_memory(model, [False] * len(ops)),
        suggestions=({"fix": fix, "ops_gained": gain, "status": R.PARSE,
                      "ops": [i for i in sorted(errors) if R.needs_version(ops[i], model)]
                      or [cause]},),  # fmt: skip
        compile_error=why,
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
