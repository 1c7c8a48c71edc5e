"""Keras 3: ``.keras`` zip archives and HDF5 files that Keras 3 wrote (or Keras 2 files when the
legacy loader is not installed, with the fix-ups below).

Keras 3's ``load_model`` picks its HDF5 reader by the ``.h5``/``.hdf5`` suffix; HDF5 saved under
any other name (``.model``, ``.keras``) is handed to it through a symlink named ``model.h5``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError
from edgekit.host.loaders.architecture import Architecture
from edgekit.host.loaders.load_errors import load_error


def load(path: Path, container: str, arch: Architecture, custom: dict, fixups: list[str]):
    """A Keras 3 model from a zip archive or an HDF5 file."""
    import keras

    custom = dict(custom)
    if container == "hdf5" and _has_depthwise_groups(arch.config):
        # Keras 2's DepthwiseConv2D inherited Conv2D.get_config(), so its saved config carries
        # "groups": 1, which Keras 3's DepthwiseConv2D rejects ("Unrecognized keyword
        # arguments"). The legacy loader looks class names up in custom_objects first:
        # substitute a subclass that drops the key. Weights and maths are the stock layer's.
        custom.setdefault("DepthwiseConv2D", _depthwise_compat())
        fixups.append(
            f"DepthwiseConv2D 'groups' argument dropped (Keras {arch.keras_version or '2'} file)"
        )
    try:
        if container == "hdf5" and path.suffix.lower() not in (".h5", ".hdf5"):
            with tempfile.TemporaryDirectory(prefix="edgekit-h5-") as tmp:
                link = Path(tmp) / "model.h5"
                os.symlink(path.resolve(), link)
                return keras.models.load_model(link, custom_objects=custom, compile=False)
        return keras.models.load_model(path, custom_objects=custom, compile=False)
    except EdgekitError:
        raise
    except Exception as e:  # Keras raises many types (ValueError, TypeError, OSError, KeyError...)
        raise load_error(path, e, "Keras 3") from None


def _has_depthwise_groups(config: Any) -> bool:
    """True if any DepthwiseConv2D config (at any nesting depth) has a ``groups`` key."""
    if isinstance(config, dict):
        if config.get("class_name") == "DepthwiseConv2D" and "groups" in (
            config.get("config") or {}
        ):
            return True
        return any(_has_depthwise_groups(v) for v in config.values())
    if isinstance(config, list):
        return any(_has_depthwise_groups(v) for v in config)
    return False


def _depthwise_compat():
    import keras

    class DepthwiseConv2D(keras.layers.DepthwiseConv2D):
        """Keras 3 DepthwiseConv2D that accepts (and ignores) Keras 2's ``groups=1``."""

        def __init__(self, *args, groups: int = 1, **kwargs):
            if groups != 1:
                raise ValueError(f"DepthwiseConv2D with groups={groups} is not supported")
            super().__init__(*args, **kwargs)

    return DepthwiseConv2D
