"""Load a Keras image classifier from ``.h5`` (Keras 2 or 3), ``.keras`` or a SavedModel directory
and give it the shape the Edge TPU needs: one image input, batch 1, static height and width.

Why a batch-1 clone: a loaded model keeps a dynamic batch (-1). Converting it leaves the TFLite
graph with SHAPE / STRIDED_SLICE / PACK ops that recompute the batch at run time, and those stop
the Edge TPU compiler's mapping. Calling the loaded model on ``keras.Input(batch_size=1)`` gives a
graph whose every shape is known when it is traced, so the converter folds them all away. The
weights are shared with the loaded model (no copy); the loaded model itself, which still takes
any batch, is kept as ``LoadedModel.batched`` for fast float inference during verification.

SavedModel directories are wrapped with ``keras.layers.TFSMLayer`` on their ``serving_default``
signature (``serve`` for Keras 3 ``model.export`` output without one), so every format ends as a
``keras.Model`` and the rest of the converter has one code path.

TensorFlow and Keras are imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.host.loaders import LoadedModel, PreprocessingHint  # noqa: F401  (re-exported)
from edgekit.host.tfenv import load_tensorflow
from edgekit.safeio import require_regular

MODEL_HINT = "pass a Keras .h5 or .keras file, or a SavedModel directory"


def load_model(path: str | os.PathLike, input_size: tuple[int, int] | None = None):
    """Load ``path`` and return a batch-1, static-shape ``keras.Model`` (see :func:`load`)."""
    return load(path, input_size).model


def load(path: str | os.PathLike, input_size: tuple[int, int] | None = None) -> LoadedModel:
    """Load a model file or SavedModel directory and clone it to batch 1.

    Args:
        path: ``.h5``/``.hdf5``, ``.keras`` or a directory holding ``saved_model.pb``.
        input_size: (height, width) in pixels; required when the model's H/W are dynamic,
            must match them when they are not.

    Raises EdgekitError for a missing or unreadable file, a non-image model (several inputs or
    outputs, rank != 4, channels not 1 or 3), or dynamic H/W without ``input_size``.
    """
    path = Path(path)
    if not path.exists():
        raise EdgekitError(f"{path}: no such file or directory", MODEL_HINT)
    load_tensorflow()
    fixups: list[str] = []
    if path.is_dir():
        if not (path / "saved_model.pb").is_file():
            raise EdgekitError(
                f"{path}: directory is not a SavedModel (no saved_model.pb)", MODEL_HINT
            )
        return _from_saved_model(path, input_size)
    require_regular(path, "model")  # a FIFO would block HDF5 / zipfile forever
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        model = _load_h5(path, fixups)
        kind = "h5"
    elif suffix == ".keras":
        if not zipfile.is_zipfile(path):
            raise EdgekitError(
                f"{path}: not a Keras model (a .keras file is a zip archive)", MODEL_HINT
            )
        model = _keras_load(path, {})
        kind = "keras"
    else:
        raise EdgekitError(f"{path}: unknown model format {suffix or '(no extension)'}", MODEL_HINT)
    return _batch1(model, path, kind, input_size, tuple(fixups))


def _keras_load(path: Path, custom_objects: dict):
    import keras

    try:
        return keras.models.load_model(path, custom_objects=custom_objects, compile=False)
    except EdgekitError:
        raise
    except Exception as e:  # Keras raises many types (ValueError, TypeError, OSError, KeyError...)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise EdgekitError(
            f"{path}: cannot load the Keras model ({first[:300]})",
            "custom layers must be importable; re-save the model with Keras 3 if this persists",
        ) from None


def _load_h5(path: Path, fixups: list[str]):
    import h5py

    try:
        if not h5py.is_hdf5(path):
            raise EdgekitError(f"{path}: not a Keras model (not an HDF5 file)", MODEL_HINT)
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
            version = f.attrs.get("keras_version", "")
    except (OSError, RuntimeError, ValueError, KeyError) as e:  # truncated or corrupt HDF5
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise EdgekitError(f"{path}: corrupt HDF5 file ({first})", MODEL_HINT) from None
    if raw is None:
        raise EdgekitError(
            f"{path}: HDF5 file holds weights only, no model architecture",
            "save the whole model (model.save), not model.save_weights",
        )
    try:
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8")
        if isinstance(version, bytes):
            version = version.decode("utf-8")
        config = json.loads(raw)
    except (UnicodeDecodeError, ValueError, TypeError, RecursionError):
        raise EdgekitError(
            f"{path}: corrupt model architecture in the HDF5 file", MODEL_HINT
        ) from None
    custom: dict[str, Any] = {}
    # Keras 2's DepthwiseConv2D inherited Conv2D.get_config(), so its saved config carries
    # "groups": 1, which Keras 3's DepthwiseConv2D rejects ("Unrecognized keyword arguments").
    # The legacy loader looks class names up in custom_objects first: substitute a subclass that
    # drops the key. Weights and maths are those of the stock layer.
    if '"DepthwiseConv2D"' in raw and _has_groups(config):
        custom["DepthwiseConv2D"] = _depthwise_compat()
        fixups.append(f"DepthwiseConv2D 'groups' argument dropped (Keras {version or '2'} file)")
    return _keras_load(path, custom)


def _has_groups(config: Any) -> bool:
    """True if any DepthwiseConv2D config (at any nesting depth) has a ``groups`` key."""
    if isinstance(config, dict):
        if config.get("class_name") == "DepthwiseConv2D" and "groups" in (
            config.get("config") or {}
        ):
            return True
        return any(_has_groups(v) for v in config.values())
    if isinstance(config, list):
        return any(_has_groups(v) for v in config)
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


def _image_hw(shape, where: Path, input_size) -> tuple[int, int, int]:
    """Validate an input shape (batch, H, W, C) and resolve H, W with ``input_size``."""
    shape = tuple(None if d is None or d == -1 else int(d) for d in shape)
    if len(shape) != 4 or shape[3] not in (1, 3):
        raise EdgekitError(
            f"{where}: input shape {_fmt(shape)} is not an image "
            "(expected batch, height, width, 1 or 3 channels)",
            "edgekit converts image classifiers with one NHWC image input",
        )
    h, w, c = shape[1], shape[2], shape[3]
    if input_size is not None:
        ih, iw = int(input_size[0]), int(input_size[1])
        if (h is not None and h != ih) or (w is not None and w != iw):
            raise EdgekitError(
                f"{where}: --input-size {ih}x{iw} does not match the model's input {h}x{w}",
                "drop --input-size for a model with a fixed input size",
            )
        h, w = ih, iw
    if h is None or w is None:
        raise EdgekitError(
            f"{where}: the model's input height/width are dynamic {_fmt(shape)}",
            "the Edge TPU needs static shapes: pass --input-size HxW (e.g. 224x224)",
        )
    return h, w, c


def _fmt(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def batch1_clone(model, shape: tuple[int, ...] | None = None):
    """A functional clone of ``model`` on a batch-1 input of ``shape`` (default: the model's own
    per-example shape), sharing its weights. TFLite then sees fully static shapes: a free batch
    adds SHAPE/STRIDED_SLICE/PACK ops that stop the Edge TPU mapping."""
    import keras

    shape = tuple(shape or model.inputs[0].shape[1:])
    x = keras.Input(batch_shape=(1, *shape), dtype="float32", name="image")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return keras.Model(x, model(x, training=False), name=model.name)


def _batch1(model, path: Path, kind: str, input_size, fixups) -> LoadedModel:

    inputs = list(getattr(model, "inputs", None) or [])
    if len(inputs) != 1:
        raise EdgekitError(
            f"{path}: model has {len(inputs)} inputs; edgekit converts models with one image input",
            "export a single-input classifier",
        )
    outputs = list(getattr(model, "outputs", None) or [])
    if len(outputs) != 1:
        raise EdgekitError(
            f"{path}: model has {len(outputs)} outputs; edgekit converts single-output classifiers",
            "export the classification head only",
        )
    h, w, c = _image_hw(inputs[0].shape, path, input_size)
    clone = batch1_clone(model, (h, w, c))
    dynamic_batch = inputs[0].shape[0] is None

    def batched(batch: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            # Keras 2 files store inputs as a nested list; Keras 3 warns that a bare tensor
            # "doesn't match the expected structure" yet handles it identically.
            warnings.simplefilter("ignore", UserWarning)
            return _call(batch)

    import tensorflow as tf

    # Traced, not eager: the first eager call of a large model costs several times more
    # (MobileNetV2 224 on 66 images: 12.7 s eager vs 3.1 s traced; warm 1.65 s vs 0.88 s).
    forward = tf.function(
        lambda b: model(b, training=False), autograph=False, reduce_retracing=True
    )

    def _call(batch: np.ndarray) -> np.ndarray:
        if dynamic_batch:
            return np.asarray(forward(batch))
        return np.concatenate([np.asarray(forward(batch[i : i + 1])) for i in range(len(batch))])

    return LoadedModel(
        model=clone,
        batched=batched,
        path=path,
        kind=kind,
        input_shape=(1, h, w, c),
        output_shape=tuple(int(d) for d in clone.outputs[0].shape),
        fixups=fixups,
        format=kind,
        loader="keras",
    )


def _from_saved_model(path: Path, input_size) -> LoadedModel:
    import keras
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as e:
        raise EdgekitError(
            f"{path}: cannot load the SavedModel ({str(e).splitlines()[0][:300]})", MODEL_HINT
        ) from None
    sigs = dict(getattr(loaded, "signatures", {}) or {})
    endpoint = (
        "serving_default" if "serving_default" in sigs else (sorted(sigs)[0] if sigs else None)
    )
    if endpoint is None:
        raise EdgekitError(
            f"{path}: SavedModel has no signature to call", "export it with model.export()"
        )
    fn = sigs[endpoint]
    specs = fn.structured_input_signature[1]  # signatures take keyword arguments only
    outs = fn.structured_outputs
    if len(specs) != 1:
        raise EdgekitError(
            f"{path}: model has {len(specs)} inputs; edgekit converts models with one image input",
            "export a single-input classifier",
        )
    if len(outs) != 1:
        raise EdgekitError(
            f"{path}: model has {len(outs)} outputs; edgekit converts single-output classifiers",
            "export the classification head only",
        )
    (in_name, spec), (out_name,) = next(iter(specs.items())), list(outs)
    h, w, c = _image_hw(spec.shape.as_list(), path, input_size)
    layer = keras.layers.TFSMLayer(str(path), call_endpoint=endpoint)
    x = keras.Input(batch_shape=(1, h, w, c), dtype="float32", name="image")
    y = layer(x)
    y = y[out_name] if isinstance(y, dict) else y
    clone = keras.Model(x, y, name=path.name)
    dynamic_batch = spec.shape.as_list()[0] is None

    def batched(batch: np.ndarray) -> np.ndarray:
        parts = [batch] if dynamic_batch else [batch[i : i + 1] for i in range(len(batch))]
        return np.concatenate(
            [np.asarray(fn(**{in_name: tf.constant(p)})[out_name]) for p in parts]
        )

    return LoadedModel(
        model=clone,
        batched=batched,
        path=path,
        kind="savedmodel",
        input_shape=(1, h, w, c),
        output_shape=tuple(int(d) for d in clone.outputs[0].shape),
        format="savedmodel",
        loader="savedmodel",
    )
