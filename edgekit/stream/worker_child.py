"""The inside of serve's inference worker process (see :mod:`edgekit.stream.worker`): build the
model from the factory, then answer ``("frame", shm_name, shape)`` with ``("ok", record)`` or
``("error", class, message, hint, exit_code)`` and ``("reopen", device)`` with
``("ready", info)``, until ``("close",)`` or the parent is gone. Answers go out in request
order; a model with ``stages`` (a Classifier, a Detector, a Cascade: :mod:`edgekit.stages`)
runs them overlapped (:mod:`edgekit.stream.worker_stages`), any other one request at a time."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
from multiprocessing import shared_memory

import numpy as np

from edgekit.errors import EdgekitError

BLOCKED = {signal.SIGINT, signal.SIGTERM}  # the parent decides when the worker stops
MAX_SEGMENTS = 4  # shared-memory frame slots kept attached


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the closed pipe still ends the loop
        pass


def error_reply(e: BaseException) -> tuple:
    if isinstance(e, EdgekitError):
        return ("error", type(e).__name__, e.message, e.hint, e.exit_code)
    first = str(e).splitlines()[0] if str(e) else ""
    return ("error", type(e).__name__, first, None, 1)


def _model_info(model) -> dict:
    runner = getattr(model, "runner", None)
    size = getattr(model, "input_size", None)
    return {
        "pid": os.getpid(),
        "backend": str(getattr(runner, "backend", "?")),
        "device": str(getattr(runner, "device", "?")),
        "provider": str(getattr(runner, "provider", "?")),
        "input_size": list(size) if size else None,
        "resize": getattr(model, "resize", None),
        "task": getattr(model, "task", "classify"),
        **_pipeline_info(model),
    }


def _pipeline_info(model) -> dict:
    """Compiled segments pipelined over several Edge TPUs (edgekit.stream.segment_worker)."""
    from edgekit.backends.segment_pipeline import describe, frames_in_flight

    depth = frames_in_flight(model)  # 1: a cascade over the segments, one frame at a time
    text = describe(getattr(model, "runner", None), one_at_a_time=depth <= 1)
    return {"pipeline": text, "frames_in_flight": depth} if text else {}


def main(conn, factory, device, owner, err=None) -> None:
    """The worker process: build the model, then answer requests until told to stop. ``err``:
    the write end of the pipe the parent reads this process's stderr from
    (edgekit.stream.worker_stderr), a multiprocessing Connection."""
    for sig in BLOCKED:
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, BLOCKED)
    _die_with_parent()
    try:
        os.setpgid(0, 0)  # see _kill_group
    except OSError:
        pass
    if err is not None:  # stderr through the parent, which drops LiteRT's banner alone
        os.dup2(err.fileno(), 2)
        err.close()
    # serve's stdout carries JSON lines: whatever the model or libedgetpu prints goes to stderr.
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    handler = logging.StreamHandler()
    handler.setFormatter(_Notices())
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    from edgekit.backends import devicelock

    devicelock.set_owner(*owner)
    try:
        # After reopen(device=...) (e.g. the CPU fallback) a new worker starts on that device.
        model = factory() if device is None else factory(device=device)
    except BaseException as e:
        conn.send(error_reply(e))
        return
    conn.send(("ready", _model_info(model)))
    from edgekit.backends.segment_pipeline import frames_in_flight

    depth = frames_in_flight(model)
    if depth > 1:  # compiled segments pipelined over several Edge TPUs: frames side by side
        from edgekit.stream.segment_worker import serve_frames

        infer = getattr(model, "run", None) or model.classify
        try:
            serve_frames(conn, model, infer, depth, error_reply, _attach, MAX_SEGMENTS)
        finally:
            model.close()
        return
    frames = Segments()
    stages = getattr(model, "stages", None)  # prepare, invoke, finish (edgekit.stages)
    if stages is not None:
        from edgekit.stream.worker_stages import serve_staged

        serve_staged(conn, model, stages, frames)
    else:
        _serve(conn, model, frames)
    frames.close()
    close = getattr(model, "close", None)
    if close is not None:
        close()


def _serve(conn, model, frames: Segments) -> None:
    """One request at a time: a frame's answer is sent before the next request is read."""
    infer = getattr(model, "run", None) or model.classify
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            break
        if msg[0] == "frame":
            rgb = frames.frame(msg)
            try:
                reply = ("ok", infer(rgb))
            except Exception as e:
                reply = error_reply(e)
            del rgb
            conn.send(reply)
        elif msg[0] == "reopen":
            conn.send(reopen(model, msg[1]))
        else:  # "close"
            break


def reopen(model, device) -> tuple:
    try:
        model.reopen(device=device)
        return ("ready", _model_info(model))
    except Exception as e:
        return error_reply(e)


class Segments:
    """The parent's frame slots, attached by name and kept (at most MAX_SEGMENTS): with two
    frames in flight the parent alternates between two, and attaching costs a resource-tracker
    message each time."""

    def __init__(self):
        self._open: dict[str, shared_memory.SharedMemory] = {}

    def frame(self, msg: tuple) -> np.ndarray:
        """The (H, W, 3) uint8 view of ``("frame", name, shape)``'s slot."""
        _, name, shape = msg
        shm = self._open.get(name)
        if shm is None:
            while len(self._open) >= MAX_SEGMENTS:  # the oldest: replaced by a bigger one
                self._open.pop(next(iter(self._open))).close()
            shm = self._open[name] = _attach(name)
        return np.ndarray(shape, np.uint8, buffer=shm.buf)

    def close(self) -> None:
        for shm in self._open.values():
            try:
                shm.close()
            except BufferError:  # a view still alive: the process is ending anyway
                pass
        self._open = {}


def _attach(name: str) -> shared_memory.SharedMemory:
    # The parent creates and unlinks the segment. Attaching registers it with the resource
    # tracker, which spawn shares with the parent: a no-op for a name the parent registered.
    return shared_memory.SharedMemory(name=name)


class _Notices(logging.Formatter):
    """``Warning: ...`` on stderr, as the CLI prints its notices."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.capitalize()}: {record.getMessage()}"
