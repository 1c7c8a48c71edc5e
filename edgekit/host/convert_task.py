"""The task layer of ``edgekit convert``: what differs between a classifier and a detector.

The pipeline (:mod:`edgekit.host.convert`) is the same for every task; a :class:`ConvertTask`
supplies the task-specific parts: which models it recognises, its option checks, the number of
classes, how images are framed (stretch/crop vs letterbox), how calibration/held-out images are
gathered, how the int8 model is verified against the float one (and when that fails the
conversion), and the task's block of the bundle manifest.

Implementations: :class:`edgekit.host.convert_classify.ClassifyTask`,
:class:`edgekit.host.convert_detect.DetectTask`. :func:`task_for` picks one: ``--task`` when
given, else the first registered task whose :meth:`ConvertTask.matches` says yes (detect is
asked before classify, which matches any model).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Optional, Protocol

from edgekit.errors import EdgekitError

Progress = Optional[Callable[[str, int, int], None]]

# name -> "module:Class"; imported only when asked (the detection side pulls in its decoders).
# Order matters: the first whose matches() is true wins when --task is not given.
_REGISTRY: dict[str, str] = {
    "detect": "edgekit.host.convert_detect:DetectTask",
    "classify": "edgekit.host.convert_classify:ClassifyTask",
}


class ConvertTask(Protocol):
    """One task's part of a conversion. Built by ``for_model(loaded, options)``; immutable."""

    name: str
    num_classes: int

    @classmethod
    def matches(cls, model) -> bool:
        """True when ``model`` (a keras.Model) has this task's head."""

    @classmethod
    def for_model(cls, loaded, options, model_path) -> ConvertTask:
        """Check the model and the task's options; raise EdgekitError naming the problem."""

    def resize(self, requested: str | None) -> str | None:
        """How photos are framed for this task (None: not decided by the task)."""

    def load_images(self, options, prep, progress: Progress, train_split: dict | None):
        """Calibration and held-out images as uint8 pixels (an object with ``calib``,
        ``verify``, ``representative(prep, progress)``, ``stats``, ``warnings``)."""

    def true_classes(self, images, labels) -> tuple[Any, Any] | None:
        """(calibration classes, held-out classes) when the images are labelled in the
        model's class order, else None. Used to measure the float model's accuracy."""

    def verify(self, data: bytes, loaded, prep, images, labels, progress: Progress,
               float_ref=None) -> dict[str, Any]:  # fmt: skip
        """Float vs int8 on the held-out images; ``float_ref``: the float model's outputs on
        them when already computed (not recomputed then)."""

    def check_verification(self, result: dict[str, Any], options) -> None:
        """Raise EdgekitError (nothing written) when the verification is below the user's
        threshold."""

    def manifest_fields(self, options) -> dict[str, Any]:
        """Extra keyword arguments of :class:`edgekit.manifest.Manifest` for this task."""


def register_task(name: str, target: str) -> str | None:
    """Register ``"module:Class"`` under ``name`` (asked before the built-ins); returns the
    previous target, if any."""
    global _REGISTRY
    previous = _REGISTRY.get(name)
    _REGISTRY = {name: target, **{k: v for k, v in _REGISTRY.items() if k != name}}
    return previous


def task_class(name: str):
    module, _, cls = _REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def task_for(loaded, options, model_path) -> ConvertTask:
    """The task of this conversion: ``options.task`` or the first that matches the model."""
    name = options.task
    if name is not None and name not in _REGISTRY:
        raise EdgekitError(f"--task {name!r}: unknown task", f"use {' or '.join(_REGISTRY)}")
    if name is None:
        name = next(n for n in _REGISTRY if task_class(n).matches(loaded.model))
    return task_class(name).for_model(loaded, options, model_path)
