"""The inference worker's process handles and fault words (see :mod:`edgekit.stream.worker`):
what a child's exit code means, SIGKILL of its process group, ``Process`` calls that stay safe
once another thread closed its handles, the frame slots' release, and the child's error reply
rebuilt as an exception."""

from __future__ import annotations

import os
import signal
from multiprocessing import shared_memory

from edgekit.errors import EdgekitError


def signal_name(exitcode: int | None) -> str:
    """``-11`` -> ``killed by SIGSEGV``; ``3`` -> ``exit status 3``."""
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit status {exitcode}"


# What a crash at model load means; the stack facts behind them are in docs/DESIGN.md.
START_HINTS = {
    signal.SIGSEGV: "libedgetpu does not match the interpreter (a TF-version ABI mismatch): "
    "run `edgekit doctor` and install the pair `edgekit stack` names",
    signal.SIGABRT: 'another process may have opened the same Edge TPU ("USB transfer error '
    '5"), or libedgetpu aborted: run `edgekit doctor`',
}


# What a crash while running usually means (said in the worker_crashed event).
RUN_CAUSES = {
    signal.SIGABRT: "libedgetpu aborted: another process opened this Edge TPU, or a USB "
    "transfer failed",
    signal.SIGSEGV: "a crash inside libedgetpu or the interpreter",
    signal.SIGKILL: "killed from outside, e.g. by the kernel's OOM killer",
}


def free_shm(shm: shared_memory.SharedMemory) -> None:
    """Unlink and close a frame slot (the pool's slots too); safe to call twice."""
    try:
        shm.unlink()
    except FileNotFoundError:
        pass
    try:
        shm.close()
    except BufferError:  # a view is still alive in another thread: the unlink is what counts
        pass


def exitcode_of(proc) -> int | None:
    """``proc.exitcode``, also once another thread closed its handles (then None: unknown)."""
    try:
        return proc.exitcode
    except ValueError:  # closed: it had ended
        return None


def alive(proc) -> bool:
    try:
        return proc.is_alive()
    except ValueError:  # closed by another thread: it had ended
        return False


def join(proc, timeout: float) -> None:
    try:
        proc.join(timeout)
    except (ValueError, AttributeError):  # closed by another thread meanwhile
        pass


def rebuild(reply: tuple) -> Exception:
    """The exception the child reported, as an EdgekitError (same class when it is ours)."""
    _, cls_name, message, hint, code = reply
    from edgekit.backends.devicelock import DeviceBusy
    from edgekit.backends.edgetpu import EdgeTpuError

    cls = {"EdgeTpuError": EdgeTpuError, "DeviceBusy": DeviceBusy}.get(cls_name)
    if cls is None and cls_name != "EdgekitError":
        return RuntimeError(f"{cls_name}: {message}")
    return (cls or EdgekitError)(message, hint, code)


def kill_group(proc) -> None:
    """SIGKILL the worker and whatever it started (the Edge TPU probe child, which may hang in
    libedgetpu as well): the worker leads its own process group."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:  # not yet its own group leader: it has no children yet either
        proc.kill()
