"""TensorFlow start-up, done once and quietly.

Importing TensorFlow prints C++ log lines before absl's logging is initialised ("oneDNN custom
operations are on...", "All log messages before absl::InitializeLog()..."), which
``TF_CPP_MIN_LOG_LEVEL`` does not silence. Host entry points call :func:`load_tensorflow` first,
which imports it with file descriptor 2 diverted, and turns a missing install into one clear line.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator

from edgekit.errors import EdgekitError


def load_tensorflow():
    """Import and return ``tensorflow`` (Keras included), hiding its start-up banner."""
    if "tensorflow" in sys.modules and "keras" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with quiet_native_output():
            import keras  # noqa: F401
            import tensorflow as tf

            # Device discovery, done here so that its C++ lines ("failed call to cuInit: ...
            # UNKNOWN ERROR (303)" on every machine without a GPU) land in the sink instead of
            # the user's terminal at the first TensorFlow op (a model load).
            tf.config.list_physical_devices()
    except ImportError as e:
        raise EdgekitError(
            f"this command needs TensorFlow and Keras ({e})",
            "on an x86-64 host: pip install 'edgekit[host]'",
        ) from None
    return tf


@contextlib.contextmanager
def quiet_native_output() -> Iterator[list]:
    """Silence what TensorFlow's C++ code prints on file descriptor 2 ("fully_quantize: 0, ...",
    XNNPACK notices) and its Python warnings, while Python-level ``sys.stderr`` (progress bars,
    the CLI's messages) keeps writing to the real stderr through a duplicate descriptor.
    Yields a list that receives the swallowed text on exit (the converter logs the failing op's
    name scope there, not in its exception)."""
    captured: list[str] = []
    try:
        python_on_fd2 = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        python_on_fd2 = False  # sys.stderr replaced (a test runner, a GUI): leave it alone
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    with warnings.catch_warnings(), tempfile.TemporaryFile() as sink:
        warnings.simplefilter("ignore")
        if python_on_fd2:
            sys.stderr.flush()
        saved = os.dup(2)
        old_stderr = sys.stderr
        os.dup2(sink.fileno(), 2)
        if python_on_fd2:
            sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1, errors="replace")
        try:
            yield captured
        finally:
            sink.seek(0)
            captured.append(sink.read().decode("utf-8", "replace"))
            if python_on_fd2:
                sys.stderr.flush()
                sys.stderr.close()
                sys.stderr = old_stderr
            os.dup2(saved, 2)
            os.close(saved)
            absl.setLevel(level)
