"""The worker child's loop for a model in stages (:mod:`edgekit.stages`: a Classifier's,
a Detector's, a Cascade's ``stages``: ``make_input(rgb)`` -> input values,
``invoke_input(x, ms)`` -> raw output, ``finish(*raw)`` -> record or more DeviceWork): every
invoke runs in one device thread while this one answers frame n-1 and prepares frame n+1 (and
decodes, cuts a cascade's crops), so between two invokes the device waits only for the thread
switch and the input write. A cascade's DeviceWork (its crops' invokes) goes back to the same
device thread, behind the frames already queued there: the detector's invoke of frame n+1 runs
while frame n's crops are cut, and no two invokes ever run at once.

Why: with two frames in flight (edgekit.stream.pool) the next frame is always waiting in the
pipe, but one thread still had to send answer n, read and prepare frame n+1 and only then
invoke it: about 0.3 ms of CPU per frame, 5-8 % of a 4.6 ms invoke and more on a loaded machine
(docs/DESIGN.md, "Several Edge TPUs"). The interpreter releases the GIL inside invoke, so the
other thread's work overlaps it.

Order: answers go out in request order (a frame that fails in ``make_input``, an invoke or
``finish`` waits for the answers before it); every frame back from the device is finished at
once, not only the oldest; a ``reopen`` waits until every frame before it is answered (the device
thread is idle then). A crash or hang inside invoke takes the process down or stops the answers
as before: the parent's watchdog handles both.
"""

from __future__ import annotations

import collections
import functools
import os
import queue
import select
import sys
import threading
from typing import Callable

import numpy as np

from edgekit.stages import DeviceWork
from edgekit.stream.worker_child import Segments, error_reply, reopen


class _Job:
    """One frame: the device work to run next (``run``) and what the host thread does with its
    result (``then``: the record, or more DeviceWork), until its reply is known."""

    __slots__ = ("run", "then", "out", "reply", "ready")

    def __init__(self, run: Callable | None = None, then: Callable | None = None,
                 reply: tuple | None = None):  # fmt: skip
        self.run, self.then, self.out, self.reply = run, then, None, reply
        self.ready = False  # the device thread is done with ``run``


def _unpack(finish: Callable) -> Callable:
    return lambda out: finish(*out)


def serve_staged(conn, model, stages: tuple[Callable, Callable, Callable],
                 frames: Segments) -> None:  # fmt: skip
    """Answer the parent's requests (see worker_child) until ``("close",)`` or EOF."""
    make_input, invoke_input, finish = stages
    # The device thread needs the GIL back the moment an invoke ends: a short switch interval
    # bounds how long this thread's numpy work can keep it waiting.
    sys.setswitchinterval(0.0005)
    todo: queue.SimpleQueue = queue.SimpleQueue()
    wake_r, wake_w = os.pipe()
    jobs: collections.deque[_Job] = collections.deque()  # request order

    def device() -> None:
        while True:
            job = todo.get()
            if job is None:
                return
            try:
                job.out = job.run()
            except Exception as e:  # libedgetpu's RuntimeError as an EdgeTpuError, ...
                job.reply = error_reply(e)
            job.run, job.ready = None, True
            os.write(wake_w, b"\0")

    thread = threading.Thread(target=device, name="edgekit-invoke", daemon=True)
    thread.start()

    def answer_done() -> None:
        # Every frame back from the device is finished now, not only the oldest: a cascade's
        # frame n+1 cuts its crops while frame n's crops are on the device.
        for job in jobs:
            if not job.ready or job.reply is not None:
                continue
            try:
                step = job.then(job.out)
            except Exception as e:
                step, job.reply = None, error_reply(e)
            job.out = None
            if isinstance(step, DeviceWork):  # more invokes of this frame: the device's turn
                job.run, job.then, job.ready = step.run, step.then, False
                todo.put(job)
            elif job.reply is None:
                job.reply = ("ok", step)
        while jobs and jobs[0].reply is not None:
            conn.send(jobs.popleft().reply)

    def wait(for_conn: bool) -> bool:
        """Until an invoke ends or (``for_conn``) a request comes; True: a request is there."""
        ready, _, _ = select.select([wake_r, conn] if for_conn else [wake_r], [], [])
        if wake_r in ready:
            os.read(wake_r, 4096)
        return conn in ready

    try:
        while True:
            answer_done()
            if not wait(True):
                continue
            try:
                msg = conn.recv()
            except (EOFError, OSError):  # the parent is gone
                break
            if msg[0] == "frame":
                rgb = frames.frame(msg)
                try:
                    x, ms = make_input(rgb)
                    # the parent reuses the slot once answered: an input that is the frame
                    # itself is copied (a model keeping more of it copies it itself)
                    if isinstance(x, np.ndarray) and np.may_share_memory(x, rgb):
                        x = x.copy()
                    job = _Job(functools.partial(invoke_input, x, ms), _unpack(finish))
                    todo.put(job)
                except Exception as e:
                    job = _Job(reply=error_reply(e))
                del rgb
                jobs.append(job)
            elif msg[0] == "reopen":
                while jobs:  # the device thread idle: every frame before it answered
                    answer_done()
                    if jobs:
                        wait(False)
                conn.send(reopen(model, msg[1]))
            else:  # "close"
                break
    finally:
        todo.put(None)
        thread.join(5.0)
        if thread.is_alive():  # still inside invoke (the parent is gone): never close the model
            os._exit(0)  # under it; the process ends here
        os.close(wake_r)
        os.close(wake_w)
