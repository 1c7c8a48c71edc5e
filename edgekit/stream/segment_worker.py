"""serve's worker process for compiled segments pipelined over several Edge TPUs.

A segment set (``edgetpu_compiler --num_segments N``) on N Edge TPUs opens as a
:class:`~edgekit.backends.segment_pipeline.PipelineInterpreter`: segment K on device K, in ONE
process (each device under its own lock, held by that process). serve runs it as a pool of one
worker (:class:`~edgekit.stream.pool.DevicePool` with one lane, so serve's real pipeline,
watchdog, restarts and CPU fallback are the pool's) that takes N + 1 frames at once: one on
each device and one being prepared or decoded.

Inside the worker (:func:`serve_frames`, called by ``worker_child.main`` when the model says
it can run several frames, :func:`~edgekit.backends.segment_pipeline.frames_in_flight`): the
main thread receives requests and hands each frame (copied out of its shared-memory slot: the
parent reuses the slot once the answer is in) to one of N + 1 threads, each running the task
model's ``run`` (preprocess, the segments in order, decode); a sender thread sends the answers
in the order the frames came. A crash or hang kills the whole worker, as for any model: the
parent's watchdog restarts it and the frames in flight are lost.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np


def segment_depth(config) -> int | None:
    """Frames in flight for serve's worker when ``[model] path`` is a segment set (N + 1 for
    N segments), else None. A cascade runs its detector one frame at a time: 1, still ONE
    worker holding every device of the set (one worker per device would open the whole set
    in each and find its devices taken by the other)."""
    from edgekit.backends.segments import segment_set

    if not config.model.path:
        return None
    try:
        files = segment_set(config.model.path)
    except Exception:  # a missing segment: the model load says so, in its own words
        return None
    if not files:
        return None
    return 1 if getattr(getattr(config, "cascade", None), "classifier", None) else len(files) + 1


def serve_frames(conn, model: Any, infer: Callable[[np.ndarray], Any], depth: int,
                 error_reply: Callable[[BaseException], tuple],
                 attach: Callable[[str], Any], max_segments: int = 4) -> None:  # fmt: skip
    """Answer the parent's requests (see ``worker_child``) with up to ``depth`` frames running
    at once; returns on ``("close",)`` or when the parent is gone (the caller closes the
    model)."""
    from edgekit.backends.segment_pipeline import frames_in_flight

    replies: queue.Queue = queue.Queue()  # futures, in the order the frames came; None: stop
    send = threading.Lock()
    one_at_a_time = threading.Lock()  # after a reopen on the CPU (the twin): no more lanes
    concurrent = [True]

    def run(rgb: np.ndarray) -> tuple:
        try:
            if concurrent[0]:
                return ("ok", infer(rgb))
            with one_at_a_time:
                return ("ok", infer(rgb))
        except Exception as e:
            return error_reply(e)

    def sender() -> None:
        while True:
            fut = replies.get()
            if fut is None:
                return
            reply = fut.result()
            try:
                with send:
                    conn.send(reply)
            except OSError:  # the parent is gone: the main loop finds out too
                pass
            finally:
                replies.task_done()

    out = threading.Thread(target=sender, name="edgekit-replies", daemon=True)
    out.start()
    slots: dict[str, Any] = {}
    with ThreadPoolExecutor(depth, thread_name_prefix="edgekit-frame") as pool:
        try:
            while True:
                try:
                    msg = conn.recv()
                except (EOFError, OSError):  # the parent is gone
                    break
                if msg[0] == "frame":
                    _, name, shape = msg
                    shm = slots.get(name)
                    if shm is None:
                        while len(slots) >= max(max_segments, depth):  # replaced by a bigger one
                            slots.pop(next(iter(slots))).close()
                        shm = slots[name] = attach(name)
                    rgb = np.ndarray(shape, np.uint8, buffer=shm.buf).copy()
                    replies.put(pool.submit(run, rgb))
                elif msg[0] == "reopen":
                    replies.join()  # every frame answered first (the parent asks when idle)
                    try:
                        concurrent[0] = False  # until the reopened model says otherwise
                        model.reopen(device=msg[1])
                        concurrent[0] = frames_in_flight(model) > 1
                        from edgekit.stream.worker_child import _model_info

                        reply = ("ready", _model_info(model))
                    except Exception as e:
                        reply = error_reply(e)
                    with send:
                        conn.send(reply)
                else:  # "close"
                    break
        finally:
            replies.put(None)
            out.join(5.0)
            for shm in slots.values():
                shm.close()
