"""What every task model (:class:`~edgekit.classify.Classifier`,
:class:`~edgekit.detect.Detector`) does the same way: resolve the model and its bundle, take the
labels (given, else the bundle's), open a Runner on the device, and reopen or close it.

A subclass sets ``task``, calls :meth:`TaskModel._bind`, :meth:`TaskModel._resolve_labels` and
:meth:`TaskModel._open` from its constructor, and binds the opened model in ``_setup()`` (called
again by :meth:`TaskModel.reopen`).
"""

from __future__ import annotations

import os
from typing import Callable

from edgekit import teachable
from edgekit.backends import Runner, open_model, resolve_model
from edgekit.labels import read_labels


class TaskModel:
    task: str
    runner: Runner

    def _bind(
        self,
        model: str | os.PathLike,
        device: str,
        threads: int | None,
        on_warning: Callable[[str], None] | None,
    ) -> None:
        """Remember how to open ``model`` and find its bundle (None for a bare .tflite)."""
        self.model, self.device, self.threads = model, device, threads
        self._on_warning = on_warning
        self.bundle = resolve_model(model).bundle
        # A Teachable Machine TFLite export (model_edgetpu.tflite + labels.txt): its labels
        # and its resize, as TM ships it.
        self.teachable = None if self.bundle else teachable.tflite_export(model)

    def _resolve_labels(self, labels: str | os.PathLike | dict[int, str] | None) -> dict[int, str]:
        """A label file or {id: label}; None takes the bundle's labels (or a Teachable Machine
        export's labels.txt), else {}."""
        if isinstance(labels, (str, os.PathLike)):
            labels = read_labels(labels)
        elif labels is None and self.bundle and self.bundle.manifest.labels:
            labels = dict(enumerate(self.bundle.manifest.labels))
        elif labels is None and self.teachable:
            labels = read_labels(self.teachable.labels_path)
        return dict(labels or {})

    def _open(self) -> None:
        self.runner = open_model(self.model, self.device, self.threads, self._on_warning)
        self._setup()

    def _setup(self) -> None:
        raise NotImplementedError

    def reopen(self, device: str | None = None) -> None:
        """Close and reopen the interpreter (after an Edge TPU fault), on ``device`` if given."""
        if self.runner is not None:
            self.runner.close()
        if device is not None:
            self.device = device
        self._open()

    def close(self) -> None:
        self.runner.close()
