"""A task model's run in stages, so that serve's worker keeps one Edge TPU busy
(:mod:`edgekit.stream.worker_stages`): a model's ``stages`` are three callables

    make_input(rgb) -> (x, preprocess_ms)     host CPU, no interpreter: may run during an invoke
    invoke_input(x, preprocess_ms) -> out     the device: writes the input, invokes, copies out
    finish(*out) -> record | DeviceWork       host CPU, no interpreter: decode, top-k, NMS

and ``run(rgb)`` is exactly :func:`run_stages` of them (one code path: the worker's results are
the in-process ones). ``x`` and ``out`` are whatever the model passes itself (arrays, tuples).

A model with more device work after ``finish`` (a cascade: the detector's invoke, then the
classifier's on each crop, all on the one device) returns :class:`DeviceWork` from ``finish``:
``run()`` goes to the device thread (every invoke of a process on one thread: libedgetpu runs
one invoke at a time on a device), ``then(result)`` back to the host thread, and may itself
return DeviceWork. A stage that raises fails its frame alone.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple


class DeviceWork(NamedTuple):
    """More device work of one frame: ``run()`` on the device thread, then ``then(its result)``
    on the host thread -> the record (or another DeviceWork)."""

    run: Callable[[], Any]
    then: Callable[[Any], Any]


Stages = tuple  # (make_input, invoke_input, finish)


def run_stages(stages: Stages, rgb) -> Any:
    """One frame through ``stages`` in this thread: the record."""
    make_input, invoke_input, finish = stages
    step = finish(*invoke_input(*make_input(rgb)))
    while isinstance(step, DeviceWork):
        step = step.then(step.run())
    return step
