"""Per-layer parameters and multiply-adds (MACs) of a Keras model.

Counting convention (the one the efficient-CNN papers use: MobileNet's "mult-adds", SqueezeNet,
DenseNet): one MAC is one multiply plus one accumulate, counted for the weighted layers only.

====================  ===========================================================
layer                 MACs for one image (batch 1)
====================  ===========================================================
Conv1D/2D/3D          prod(kernel) * Cin / groups * Cout * prod(output spatial)
DepthwiseConv1D/2D    prod(kernel) * Cin * depth_multiplier * prod(output spatial)
SeparableConv1D/2D    depthwise part + 1x1 pointwise part (Cin * mult * Cout * out)
Conv2DTranspose       prod(kernel) * Cin * Cout * prod(input spatial)
Dense                 in_features * units * prod(other non-batch output dims)
everything else       0: bias adds, BatchNormalization (folded into the conv at
                      inference), activations, pooling, Add, Concatenate, Reshape
====================  ===========================================================

Parameters are Keras' own counts (``count_params``), so they include non-trainable weights
such as BN moving mean/variance, as Keras' ``model.summary()`` and published tables do.
Nested models (a Sequential inside a functional model) are expanded layer by layer, with the
inner layers' names prefixed by the submodel's name.
"""

from __future__ import annotations

import math
import os
from typing import Any

from edgekit.errors import EdgekitError


def inspect_keras(model_or_path, custom_objects=None) -> dict[str, Any]:
    """Summarize a Keras model (or a model file: .h5, .keras, SavedModel directory).

    Returns:
        ``{"layers": [{"name", "type", "output_shape", "params", "macs", "input_shape"
        (without batch; single-input layers), "kernel", "groups", "depth_multiplier"
        (convolutions)}, ...], "input_shapes", "output_shapes" (without batch),
        "params": int, "trainable_params": int, "macs": int}``. ``output_shape`` is a list
        with ``None`` for the batch dimension (a list of such lists for multi-output layers).
    """
    is_path = isinstance(model_or_path, (str, os.PathLike))
    model = _load(model_or_path, custom_objects) if is_path else model_or_path
    rows: list[dict[str, Any]] = []
    _walk(model, "", rows)
    trainable = sum(_size(w) for w in model.trainable_weights)
    return {
        "layers": rows,
        "input_shapes": [_shape_list(t.shape)[1:] for t in model.inputs],
        "output_shapes": [_shape_list(t.shape)[1:] for t in model.outputs],
        "params": int(model.count_params()),
        "trainable_params": int(trainable),
        "macs": int(sum(r["macs"] for r in rows)),
    }


def _load(path, custom_objects=None):
    """Load a model file as saved (all inputs and outputs, any batch).

    Keras' own loader first, so that non-image models (several outputs, feature-map inputs such
    as the zoo's dsconv) can be inspected too; if it fails (a Keras 2 ``.h5`` with
    DepthwiseConv2D, HDF5 under a ``.keras`` name, a SavedModel directory, a corrupt file),
    edgekit's loaders as the file was saved (:func:`edgekit.host.loaders.dispatch.load_as_saved`:
    a non-image model is described, not refused), which apply the fix-ups or raise a one-line
    EdgekitError.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise EdgekitError(f"{path}: no such model file", "check the path")
    if os.path.isfile(path):
        from edgekit.host.tfenv import load_tensorflow

        load_tensorflow()
        import keras

        try:
            if custom_objects is None:
                return keras.saving.load_model(path, compile=False)
        except Exception:  # Keras raises many types; the fallback reports the problem
            pass
    from edgekit.host.loaders.dispatch import load_as_saved

    return load_as_saved(path, custom_objects=custom_objects)


def _walk(model, prefix: str, rows: list[dict[str, Any]]) -> None:
    inner = [layer for layer in model.layers if layer.__class__.__name__ != "InputLayer"]
    if len(inner) == 1 and _is_model(inner[0]) and not prefix:
        # A batch-1 wrapper around the real model (keras_io's clone): show the real layers.
        _walk(inner[0], "", rows)
        return
    for layer in model.layers:
        if layer.__class__.__name__ == "InputLayer":
            continue
        if _is_model(layer):
            _walk(layer, f"{prefix}{layer.name}/", rows)
            continue
        rows.append(
            {
                "name": prefix + layer.name,
                "type": layer.__class__.__name__,
                "output_shape": _output_shape(layer),
                "params": int(layer.count_params()) if layer.built else 0,
                "macs": int(layer_macs(layer)),
                **_geometry(layer),
            }
        )


def _geometry(layer) -> dict[str, Any]:
    """What the latency model needs beyond MACs: ``input_shape`` (without batch; a single-input
    layer's), ``input_from`` (the class of the layer producing it) and, for convolutions,
    ``kernel``, ``groups``, ``depth_multiplier``."""
    out: dict[str, Any] = {}
    try:
        inp = layer.input
    except (AttributeError, ValueError):
        return out
    if not isinstance(inp, (list, tuple)):
        out["input_shape"] = _shape_list(inp.shape)[1:]
        # the layer that produced the input: a BatchNormalization folds into a convolution
        # before it, not into a Concatenate or an Add (the converter then emits MUL + ADD)
        history = getattr(inp, "_keras_history", None)
        if history:
            out["input_from"] = history[0].__class__.__name__
    cfg = layer.get_config() if "Conv" in layer.__class__.__name__ else {}
    if "kernel_size" in cfg:
        out["kernel"] = [int(k) for k in cfg["kernel_size"]]
        out["groups"] = int(cfg.get("groups", 1) or 1)
        out["depth_multiplier"] = int(cfg.get("depth_multiplier", 1) or 1)
    return out


def _is_model(layer) -> bool:
    return bool(getattr(layer, "layers", None)) and hasattr(layer, "inputs")


def _size(weight) -> int:
    return int(math.prod(int(d) for d in weight.shape))


def _shape_list(shape) -> list:
    return [None if d is None else int(d) for d in shape]


def _output_shape(layer):
    try:
        out = layer.output
    except (AttributeError, ValueError):
        return None
    if isinstance(out, (list, tuple)):
        return [_shape_list(o.shape) for o in out]
    return _shape_list(out.shape)


def _in_out(layer):
    """(input shape, output shape) of a single-input, single-output layer, without batch."""
    inp = layer.input
    out = layer.output
    if isinstance(inp, (list, tuple)) or isinstance(out, (list, tuple)):
        return None, None
    return _shape_list(inp.shape)[1:], _shape_list(out.shape)[1:]


def _prod(dims) -> int:
    if any(d is None for d in dims):
        raise EdgekitError(
            "cannot count multiply-adds with a dynamic spatial size",
            "build or load the model with a fixed input size",
        )
    return int(math.prod(dims))


def layer_macs(layer) -> int:
    """Multiply-adds of one layer for one input sample (see the module table)."""
    kind = layer.__class__.__name__
    weighted = ("Conv", "Dense", "EinsumDense")
    if not any(w in kind for w in weighted):
        return 0
    try:
        in_shape, out_shape = _in_out(layer)
    except (AttributeError, ValueError):
        return 0
    if in_shape is None:
        return 0
    cfg = layer.get_config()
    channels_last = cfg.get("data_format", "channels_last") != "channels_first"
    if kind == "Dense":
        other = out_shape[:-1]
        return int(in_shape[-1]) * int(out_shape[-1]) * _prod(other)
    if not channels_last:  # move channels last for the formulas below
        in_shape = in_shape[1:] + in_shape[:1]
        out_shape = out_shape[1:] + out_shape[:1]
    kernel = _prod(cfg["kernel_size"])
    cin, cout = int(in_shape[-1]), int(out_shape[-1])
    out_spatial = _prod(out_shape[:-1])
    if kind.startswith("Depthwise"):
        return kernel * cin * int(cfg.get("depth_multiplier", 1)) * out_spatial
    if kind.startswith("Separable"):
        mult = int(cfg.get("depth_multiplier", 1))
        return kernel * cin * mult * out_spatial + cin * mult * cout * out_spatial
    if "Transpose" in kind:
        return kernel * cin * cout * _prod(in_shape[:-1])
    if kind.startswith("Conv"):
        groups = int(cfg.get("groups", 1))
        return kernel * (cin // groups) * cout * out_spatial
    return 0
