"""edgekit: Keras image models to a Raspberry Pi with a Coral Edge TPU, and kept running there.

Importing this package is cheap on purpose: it never imports TensorFlow, OpenCV or any
hardware library. Host-only code lives in :mod:`edgekit.host` and is imported on demand.
"""

__version__ = "0.1.0"

from edgekit.errors import EdgekitError

__all__ = ["EdgekitError", "__version__"]
