"""The worker child's loop for a model in stages (a Classifier's ``stages``: ``make_input(rgb)``
-> input values, ``invoke_input(x, ms)`` -> raw output, ``finish(raw, ...)`` -> record): the
Edge TPU's invoke runs in its own thread while this one answers frame n-1 and prepares frame
n+1, so between two invokes the device waits only for the thread switch and the input write.

Why: with two frames in flight (edgekit.stream.pool) the next frame is always waiting in the
pipe, but one thread still had to send answer n, read and prepare frame n+1 and only then
invoke it: about 0.3 ms of CPU per frame, 5-8 % of a 4.6 ms invoke and more on a loaded machine
(docs/DESIGN.md, "Several Edge TPUs"). The interpreter releases the GIL inside invoke, so the
other thread's work overlaps it.

Order: answers go out in request order (a frame that fails in ``make_input`` waits for the
answers before it); a ``reopen`` waits until every frame before it is answered (the device
thread is idle then). A crash or hang inside invoke takes the process down or stops the answers
as before: the parent's watchdog handles both.
"""

from __future__ import annotations

import collections
import os
import queue
import select
import sys
import threading
from typing import Any, Callable

import numpy as np

from edgekit.stream.worker_child import Segments, error_reply, reopen


class _Job:
    """One frame: its input until invoked, then its stage output, or its error reply."""

    __slots__ = ("x", "ms", "out", "error", "done")

    def __init__(self, x: Any = None, ms: float = 0.0, error: tuple | None = None):
        self.x, self.ms, self.out, self.error = x, ms, None, error
        self.done = error is not None


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
                job.out = invoke_input(job.x, job.ms)
            except Exception as e:  # libedgetpu's RuntimeError as an EdgeTpuError, ...
                job.error = error_reply(e)
            job.x, job.done = None, True
            os.write(wake_w, b"\0")

    thread = threading.Thread(target=device, name="edgekit-invoke", daemon=True)
    thread.start()

    def answer_done() -> None:
        while jobs and jobs[0].done:
            job = jobs.popleft()
            reply = job.error
            if reply is None:
                try:
                    reply = ("ok", finish(*job.out))
                except Exception as e:
                    reply = error_reply(e)
            conn.send(reply)

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
                    if np.may_share_memory(x, rgb):  # the parent reuses the slot once answered
                        x = x.copy()
                    job = _Job(x, ms)
                    todo.put(job)
                except Exception as e:
                    job = _Job(error=error_reply(e))
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
