"""TFLite interpreter providers: which Python package supplies ``Interpreter``/``load_delegate``.

Order (first importable wins): ``ai_edge_litert`` (numpy 2, XNNPACK, aarch64 wheels for Python
3.9-3.12), ``tflite_runtime`` (numpy<2 only, much slower on int8), and TensorFlow's ``tf.lite`` as
a last resort. TensorFlow is imported only when neither light package is importable: it costs
seconds and hundreds of MB on a Pi, and ``tflite_runtime`` breaks if imported after it.
All three produce bit-identical outputs for the same model.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Callable

from edgekit.errors import EdgekitError

PROVIDER_ORDER = ("ai_edge_litert", "tflite_runtime", "tensorflow")
_DISTRIBUTIONS = {
    "ai_edge_litert": ("ai-edge-litert",),
    "tflite_runtime": ("tflite-runtime",),
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-aarch64"),
}


@dataclass(frozen=True)
class Provider:
    """One interpreter implementation. ``interpreter_cls(model_path=..., num_threads=...,
    experimental_delegates=[...])`` and ``load_delegate(library, options)`` follow tf.lite's API."""

    name: str
    version: str
    interpreter_cls: Any
    load_delegate: Callable[..., Any]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


def dist_version(module: str, fallback: str = "unknown") -> str:
    from importlib import metadata

    for dist in _DISTRIBUTIONS.get(module, (module,)):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return fallback


def _load(name: str) -> Provider:
    """Import one provider; raises ImportError (or whatever a broken install raises)."""
    if name == "tensorflow":
        tf = importlib.import_module("tensorflow")
        return Provider(
            "tensorflow", tf.__version__, tf.lite.Interpreter, tf.lite.experimental.load_delegate
        )
    mod = importlib.import_module(f"{name}.interpreter")
    return Provider(name, dist_version(name), mod.Interpreter, mod.load_delegate)


_cache: dict[tuple[str, ...], Provider] = {}


def find_provider(order: tuple[str, ...] = PROVIDER_ORDER) -> Provider:
    """The first importable provider in ``order`` (cached). Raises EdgekitError if none is."""
    if order in _cache:
        return _cache[order]
    reasons = []
    for name in order:
        try:
            provider = _load(name)
        except Exception as e:  # a numpy-1 wheel under numpy 2 raises odd types
            reasons.append(
                f"{name}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            )
            continue
        _cache[order] = provider
        return provider
    raise EdgekitError(
        "no TFLite interpreter is installed (" + "; ".join(reasons) + ")",
        "pip install ai-edge-litert   (or tflite-runtime with numpy<2)",
    )


def installed_providers(order: tuple[str, ...] = PROVIDER_ORDER) -> dict[str, str | None]:
    """{provider: version or None} WITHOUT importing anything (for `edgekit doctor`)."""
    from importlib.util import find_spec

    out: dict[str, str | None] = {}
    for name in order:
        try:
            found = find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        out[name] = dist_version(name) if found else None
    return out


# The TFLite C++ runtime prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." on the
# process's stderr (fd 2) and no environment variable silences it in ai_edge_litert 2.x.
_NOISE = (b"INFO: Created TensorFlow Lite XNNPACK delegate",)


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Divert fd 2 while the block runs and re-emit everything except the known INFO banner, so
    nothing anyone else writes in that window is lost."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [ln for ln in tmp.read().splitlines(True) if not ln.startswith(_NOISE)]
            if kept:
                os.write(2, b"".join(kept))
