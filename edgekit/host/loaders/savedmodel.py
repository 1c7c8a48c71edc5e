"""SavedModel directories.

- Written by tf.keras 2's ``model.save(dir)`` (``keras_metadata.pb`` beside ``saved_model.pb``):
  loaded with ``tf_keras`` as a real Keras model (its layers are inspected, named in errors).
- Any other (Keras 3 ``model.export``, ``tf.saved_model.save``, TF Hub style): its
  ``serving_default`` signature is wrapped in ``keras.layers.TFSMLayer`` so every format ends as a
  ``keras.Model`` and the converter has one code path. Without ``serving_default`` it is refused
  with the signatures it has: which one is the classifier is the user's call, not a guess.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.host.loaders import LoadedModel, legacy
from edgekit.host.loaders.batch1 import check_grid_heads, finish, image_hw
from edgekit.host.loaders.load_errors import cause
from edgekit.host.loaders.sniff import MODEL_HINT


def load(path: Path, input_size, custom: dict) -> LoadedModel:
    if (path / "keras_metadata.pb").is_file() and legacy.available():
        try:
            model = legacy.load(path, custom)
        except EdgekitError:
            model = None  # the signature below still runs it
        if model is not None:
            return finish(
                model, path, input_size, kind="savedmodel", format="savedmodel-keras",
                loader="tf_keras",
            )  # fmt: skip
    return _from_signature(path, input_size)


def _from_signature(path: Path, input_size) -> LoadedModel:
    import keras
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as e:
        raise EdgekitError(f"{path}: cannot load the SavedModel ({cause(e)})", MODEL_HINT) from None
    sigs = dict(getattr(loaded, "signatures", {}) or {})
    if "serving_default" not in sigs:
        have = ", ".join(sorted(sigs)) if sigs else "none"
        raise EdgekitError(
            f"{path}: SavedModel has no serving_default signature (signatures: {have})",
            "export the classifier with model.export(dir) or tf.saved_model.save(model, dir, "
            "signatures={'serving_default': f})",
        )
    fn = sigs["serving_default"]
    specs = fn.structured_input_signature[1]  # signatures take keyword arguments only
    outs = fn.structured_outputs
    if len(specs) != 1:
        raise EdgekitError(
            f"{path}: model has {len(specs)} inputs ({', '.join(sorted(specs))}); "
            "edgekit converts models with one image input",
            "export a single-input classifier",
        )
    if len(outs) > 4:
        raise EdgekitError(
            f"{path}: model has {len(outs)} outputs ({', '.join(sorted(outs))}); "
            "edgekit converts single-output classifiers",
            "export the classification head only",
        )
    (in_name, spec), names = next(iter(specs.items())), sorted(outs)
    h, w, c = image_hw(spec.shape.as_list(), path, input_size)
    layer = keras.layers.TFSMLayer(str(path), call_endpoint="serving_default")
    x = keras.Input(batch_shape=(1, h, w, c), dtype="float32", name="image")
    y = layer(x)
    # several outputs (a detector's grid heads) in the signature's name order
    y = [y[n] for n in names] if isinstance(y, dict) else [y]
    clone = keras.Model(x, y[0] if len(y) == 1 else y, name=path.name)
    if len(names) > 1:
        check_grid_heads(clone.outputs, path, (h, w))
    dynamic_batch = spec.shape.as_list()[0] is None

    def batched(batch: np.ndarray):
        parts = [batch] if dynamic_batch else [batch[i : i + 1] for i in range(len(batch))]
        got = [fn(**{in_name: tf.constant(p)}) for p in parts]
        arrays = tuple(np.concatenate([np.asarray(g[n]) for g in got]) for n in names)
        return arrays if len(arrays) > 1 else arrays[0]

    return LoadedModel(
        model=clone,
        batched=batched,
        path=path,
        kind="savedmodel",
        input_shape=(1, h, w, c),
        output_shape=tuple(int(d) for d in clone.outputs[0].shape),
        output_shapes=tuple(tuple(int(d) for d in o.shape) for o in clone.outputs),
        format="savedmodel",
        loader="savedmodel",
    )
