"""A pool's worker: :class:`PipelinedProcess`, a :class:`~edgekit.stream.worker.ModelProcess`
bound to one device with ``depth`` frames in flight (``submit``/``collect`` are ModelProcess's
own; this module keeps the pool's signature and names)."""

from __future__ import annotations

from typing import Any, Callable

from edgekit.stream.worker import DEPTH, ModelProcess

__all__ = ["DEPTH", "PipelinedProcess"]


class PipelinedProcess(ModelProcess):
    """``PipelinedProcess(factory, device, depth, **ModelProcess kwargs)``: the model in a
    worker process on ``device`` (None: the factory's own), ``depth`` frames in flight; a
    restart and ``reopen()`` open the same device."""

    def __init__(self, factory: Callable[..., Any], device: str | None = None,
                 depth: int = DEPTH, **kw):  # fmt: skip
        super().__init__(factory, device=device, depth=depth, **kw)
