"""Compiled segments as a pipeline: segment K on Edge TPU K, several frames in flight.

``edgetpu_compiler --num_segments N`` splits a model so that each part fits one Edge TPU's
on-chip memory. Run one frame at a time (``segments.ChainInterpreter``), each device idles while
the others work: frames/s ~ 1 / (t0 + ... + tN-1). Coral's pipelining keeps them all busy:
segment 0 starts frame n+1 while segment 1 still runs frame n, so frames/s ~ 1 / max(tK).

:class:`PipelineInterpreter` does that with the interpreter calls edgekit already makes
(``tensor``, ``set_tensor``, ``invoke``, ``get_tensor``), from several threads at once: each
calling thread has its own input and output buffers (a lane), and ``invoke`` walks the
segments in order, holding segment K's lock only while it copies the lane's tensors in, invokes
and copies the outputs later segments (or the caller) need out. A thread on segment 1 and one on
segment 0 therefore run at the same time (TFLite releases the GIL in ``invoke``; libedgetpu's
invoke waits on USB), and no thread holds two segments at once (no deadlock). Called from one
thread it is exactly the chain: the same interpreters, the same tensors, bit-identical outputs.

Who supplies the threads: :func:`map_ordered` (``classify``/``detect`` over many images,
``bench``'s pipelined rate) and serve's worker process (``edgekit.stream.segment_worker``), each
running :func:`frames_in_flight` frames at once and giving the results back in frame order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

from edgekit.backends.segments import ChainInterpreter


class PipelineInterpreter(ChainInterpreter):
    """Allocated interpreters of a segment set (in order), one per device ``devices[K]``, run as
    one interpreter that several threads may invoke at the same time (see module docstring).
    ``names`` are the segment files' names (for the error naming a missing link)."""

    def __init__(self, interpreters: list[Any], names: list[str], devices: list[str]):
        super().__init__(interpreters, names)  # parts, links (per part K > 0: input index,
        self.devices = list(devices)  # source part, source output index), the details calls
        self._locks = [threading.Lock() for _ in interpreters]
        self._local = threading.local()
        last = len(interpreters) - 1
        needed = {(src, i) for links in self._links for _, src, i in links}
        needed |= {(last, d["index"]) for d in interpreters[-1].get_output_details()}
        # per part: the output indices a lane copies out after its invoke
        self._keep = [[i for p, i in sorted(needed) if p == k] for k in range(len(interpreters))]
        self._inputs = {d["index"]: d for d in interpreters[0].get_input_details()}

    @property
    def segments(self) -> int:
        return len(self.parts)

    # -- the tf.lite Interpreter calls that differ from the chain's (per-thread buffers) ------
    def tensor(self, index: int) -> Callable[[], np.ndarray]:
        """This thread's buffer for input ``index`` of the first segment (written in place)."""
        buf = self._input(index)
        return lambda: buf

    def set_tensor(self, index: int, value: np.ndarray) -> None:
        self._input(index)[...] = value

    def get_tensor(self, index: int) -> np.ndarray:
        """Output ``index`` of the last segment from this thread's latest invoke (a copy)."""
        out = self._lane()["out"].get((len(self.parts) - 1, index))
        if out is None:
            raise ValueError(f"tensor {index} is no output of the last segment, or this thread "
                             "has not invoked yet")  # fmt: skip
        return out.copy()

    def invoke(self) -> None:
        """One frame through every segment, in order (see module docstring)."""
        lane = self._lane()
        out = lane["out"]
        for k, part in enumerate(self.parts):
            with self._locks[k]:
                if k == 0:
                    for index, buf in lane["in"].items():
                        part.set_tensor(index, buf)
                else:
                    for dst, src, i in self._links[k]:
                        part.set_tensor(dst, out[(src, i)])
                part.invoke()
                for i in self._keep[k]:
                    out[(k, i)] = part.get_tensor(i)  # a copy: the next frame may start now

    # -- lanes ---------------------------------------------------------------------------------
    def _lane(self) -> dict:
        lane = getattr(self._local, "lane", None)
        if lane is None:
            lane = self._local.lane = {"in": {}, "out": {}}
        return lane

    def _input(self, index: int) -> np.ndarray:
        lane = self._lane()
        buf = lane["in"].get(index)
        if buf is None:
            d = self._inputs.get(index)
            if d is None:
                raise ValueError(f"tensor {index} is no input of the first segment")
            buf = lane["in"][index] = np.zeros(tuple(d["shape"]), np.dtype(d["dtype"]))
        return buf


def pipeline_of(model: Any) -> PipelineInterpreter | None:
    """The PipelineInterpreter a task model or Runner runs on, if any."""
    runner = getattr(model, "runner", model)
    interp = getattr(runner, "interpreter", None)
    return interp if isinstance(interp, PipelineInterpreter) else None


def frames_in_flight(model: Any) -> int:
    """How many frames ``model`` (a Classifier, a Detector) may run at once: one per segment
    device plus one being prepared or decoded, for a pipelined segment set; else 1 (any other
    model, and a detector that carries state from one frame to the next)."""
    pipe = pipeline_of(model)
    if pipe is None or getattr(model, "_state", None):
        return 1
    from edgekit.classify import Classifier
    from edgekit.detect.detector import Detector

    if not isinstance(model, (Classifier, Detector)):  # e.g. a cascade: state of its own
        return 1
    return pipe.segments + 1


def describe(runner: Any, one_at_a_time: bool = False) -> str | None:
    """``pipelined over usb:0,usb:1`` for a pipelined segment set (``one_at_a_time``: its
    owner runs one frame at a time, e.g. a cascade: ``chained over ..., one frame at a time``),
    else None."""
    pipe = pipeline_of(runner)
    if pipe is None:
        return None
    over = ",".join(pipe.devices)
    if one_at_a_time:
        return f"chained over {over}, one frame at a time"
    return f"pipelined over {over}"


def measure_pipelined(runner: Any, runs: int, x: np.ndarray) -> dict | None:
    """Frames/s of a pipelined segment set (``bench``): ``frames_in_flight`` threads each
    invoking on input ``x`` (runs in all, after one untimed invoke each), timed from the first
    to the last. None for any other runner."""
    pipe = pipeline_of(runner)
    if pipe is None:
        return None
    depth = pipe.segments + 1
    per = max(1, -(-int(runs) // depth))
    start = threading.Barrier(depth + 1)
    errors: list[BaseException] = []

    def lane() -> None:
        try:
            pipe.set_tensor(runner.input_details["index"], x)
            pipe.invoke()  # this lane's buffers allocated, the devices warm
            start.wait()
            for _ in range(per):
                pipe.invoke()
        except threading.BrokenBarrierError:
            pass
        except Exception as e:
            errors.append(e)
            start.abort()

    threads = [threading.Thread(target=lane, name=f"edgekit-bench-{i}") for i in range(depth)]
    for t in threads:
        t.start()
    try:
        start.wait()
    except threading.BrokenBarrierError:
        pass
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise runner.fault(errors[0])
    return {"over": ",".join(pipe.devices), "segments": pipe.segments,
            "frames_in_flight": depth, "runs": per * depth,
            "fps": round(per * depth / elapsed, 2) if elapsed > 0 else None}  # fmt: skip


def map_ordered(fn: Callable[[Any], Any], items: Iterable[Any], depth: int) -> Iterator[Any]:
    """``fn(item)`` for each item, up to ``depth`` at once in threads, yielded in item order
    (an exception is yielded in its item's place, not raised). ``depth`` 1: in this thread."""

    def call(item):
        try:
            return fn(item)
        except Exception as e:
            return e

    if depth <= 1:
        for item in items:
            yield call(item)
        return
    with ThreadPoolExecutor(depth, thread_name_prefix="edgekit-segment") as pool:
        pending: list = []
        for item in items:
            pending.append(pool.submit(call, item))
            if len(pending) >= depth:
                yield pending.pop(0).result()
        for f in pending:
            yield f.result()
