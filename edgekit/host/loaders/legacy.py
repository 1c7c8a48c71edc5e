"""Keras 2 files through ``tf_keras``, the Keras 2 package TensorFlow ships for 2.16+ (the one
whose version matches TensorFlow's; declared in the ``host`` extra).

It reads what Keras 3 cannot: Teachable Machine's nested Sequentials (keras-team/keras#20084),
Keras 2.2.4-tf initializer configs carrying ``dtype``, Keras 2.1's bare-list Sequential configs,
HDF5 under any suffix, and SavedModel directories that tf.keras 2 wrote with ``model.save(dir)``.
"""

from __future__ import annotations

from pathlib import Path

from edgekit.errors import EdgekitError
from edgekit.host.loaders.load_errors import load_error

INSTALL_HINT = "pip install 'tf_keras~={tf}' (the Keras 2 package for TensorFlow {tf})"


def available() -> bool:
    """True when ``tf_keras`` imports."""
    try:
        import tf_keras  # noqa: F401
    except ImportError:
        return False
    return True


def install_hint() -> str:
    import tensorflow as tf

    major_minor = ".".join(tf.__version__.split(".")[:2])
    return INSTALL_HINT.format(tf=major_minor + ".0")


def load(path: Path, custom: dict):
    """A tf_keras model from an HDF5 file or a Keras SavedModel directory."""
    import tf_keras

    try:
        return tf_keras.models.load_model(str(path), custom_objects=custom or None, compile=False)
    except EdgekitError:
        raise
    except Exception as e:  # ValueError, TypeError, OSError, KeyError...
        raise load_error(path, e, "tf_keras (Keras 2)") from None
