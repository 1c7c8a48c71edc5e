"""The shape the Edge TPU needs: one image input, batch 1, static height and width.

Why a batch-1 clone: a loaded model keeps a dynamic batch (-1). Converting it leaves the TFLite
graph with SHAPE / STRIDED_SLICE / PACK ops that recompute the batch at run time, and those stop
the Edge TPU compiler's mapping. Calling the loaded model on an ``Input(batch_size=1)`` gives a
graph whose every shape is known when it is traced, so the converter folds them all away. The
weights are shared with the loaded model (no copy); the loaded model itself, which still takes
any batch, serves ``LoadedModel.batched`` for fast float inference during verification.

The clone is built with the Keras that built the model: Keras 3 for Keras 3 models, ``tf_keras``
for models the legacy loader returned (the two cannot be mixed in one graph).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.host.loaders import LoadedModel


def keras_of(model: Any):
    """The Keras package a model belongs to: ``tf_keras`` or ``keras`` (3)."""
    if type(model).__module__.startswith("tf_keras"):
        import tf_keras

        return tf_keras
    import keras

    return keras


def batch1_clone(model, shape: tuple[int, ...] | None = None):
    """A functional clone of ``model`` on a batch-1 input of ``shape`` (default: the model's own
    per-example shape), sharing its weights. TFLite then sees fully static shapes: a free batch
    adds SHAPE/STRIDED_SLICE/PACK ops that stop the Edge TPU mapping."""
    k = keras_of(model)
    shape = tuple(shape or model.inputs[0].shape[1:])
    if k.__name__ == "tf_keras":
        x = k.Input(batch_size=1, shape=shape, dtype="float32", name="image")
    else:
        x = k.Input(batch_shape=(1, *shape), dtype="float32", name="image")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return k.Model(x, model(x, training=False), name=model.name)


def image_hw(shape, where: Path, input_size) -> tuple[int, int, int]:
    """Validate an input shape (batch, H, W, C) and resolve H, W with ``input_size``."""
    shape = tuple(None if d is None or d == -1 else int(d) for d in shape)
    if len(shape) != 4 or shape[3] not in (1, 3):
        raise EdgekitError(
            f"{where}: input shape {fmt_shape(shape)} is not an image "
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
            f"{where}: the model's input height/width are dynamic {fmt_shape(shape)}",
            "the Edge TPU needs static shapes: pass --input-size HxW (e.g. 224x224)",
        )
    return h, w, c


def fmt_shape(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def finish(model, path: Path, input_size, **record: Any) -> LoadedModel:
    """Check a loaded Keras model's inputs/outputs, clone it to batch 1, and wrap it."""
    inputs = list(getattr(model, "inputs", None) or [])
    if len(inputs) != 1:
        raise EdgekitError(
            f"{path}: model has {len(inputs)} inputs; edgekit converts models with one image input",
            "export a single-input classifier",
        )
    outputs = list(getattr(model, "outputs", None) or [])
    h, w, c = image_hw(inputs[0].shape, path, input_size)
    if not outputs:
        raise EdgekitError(f"{path}: model has no outputs", "export the model with its head")
    clone = batch1_clone(model, (h, w, c))
    if len(outputs) != 1:  # checked on the clone: its shapes are static
        check_grid_heads(clone.outputs, path, (h, w))
    dynamic_batch = inputs[0].shape[0] is None

    import tensorflow as tf

    # Traced, not eager: the first eager call of a large model costs several times more
    # (MobileNetV2 224 on 66 images: 12.7 s eager vs 3.1 s traced; warm 1.65 s vs 0.88 s).
    forward = tf.function(
        lambda b: model(b, training=False), autograph=False, reduce_retracing=True
    )

    several = len(outputs) > 1

    def batched(batch: np.ndarray):
        with warnings.catch_warnings():
            # Keras 2 files store inputs as a nested list; Keras 3 warns that a bare tensor
            # "doesn't match the expected structure" yet handles it identically.
            warnings.simplefilter("ignore", UserWarning)
            parts = [batch] if dynamic_batch else [batch[i : i + 1] for i in range(len(batch))]
            got = [forward(p) for p in parts]
            if several:  # one array per output, in the model's output order
                return tuple(np.concatenate([np.asarray(g[k]) for g in got])
                             for k in range(len(outputs)))  # fmt: skip
            return np.concatenate([np.asarray(g) for g in got])

    shapes = tuple(tuple(int(d) for d in o.shape) for o in clone.outputs)
    return LoadedModel(
        model=clone,
        batched=batched,
        path=path,
        input_shape=(1, h, w, c),
        output_shape=shapes[0],
        output_shapes=shapes,
        **record,
    )


def check_grid_heads(outputs, path: Path, input_hw: tuple[int, int]) -> None:
    """Several outputs are converted only as a detector's grid heads (YOLOv3 and its Edge TPU
    ports: one (batch, H/s, W/s, C) map per stride s, the same C for all, distinct strides);
    anything else is refused in one line."""
    h, w = input_hw
    shapes = [tuple(o.shape) for o in outputs]
    ok = 2 <= len(shapes) <= 4 and all(len(s) == 4 and s[1] and s[2] for s in shapes)
    ok = ok and len({s[3] for s in shapes}) == 1 and len({s[1] for s in shapes}) == len(shapes)
    ok = ok and all(h % s[1] == 0 and w % s[2] == 0 and h // s[1] == w // s[2] for s in shapes)
    if not ok:
        shown = ", ".join(fmt_shape(s) for s in shapes)
        raise EdgekitError(
            f"{path}: model has {len(shapes)} outputs ({shown}); edgekit converts one output, or "
            "a detector's grid heads (batch, H/stride, W/stride, anchors * (5 + classes))",
            "export the classification head only, or the YOLO heads without post-processing",
        )
