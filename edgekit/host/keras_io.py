"""Compatibility face of :mod:`edgekit.host.loaders`: ``load``, ``load_model``, ``batch1_clone``.

The loaders live in ``edgekit/host/loaders/``, one module per format family; this module keeps
the import path that convert, inspect, the zoo and the scripts have always used.
"""

from __future__ import annotations

from edgekit.host.loaders import LoadedModel, PreprocessingHint
from edgekit.host.loaders.batch1 import batch1_clone
from edgekit.host.loaders.dispatch import load, load_model
from edgekit.host.loaders.sniff import MODEL_HINT

__all__ = ["MODEL_HINT", "LoadedModel", "PreprocessingHint", "batch1_clone", "load", "load_model"]
