"""Full-integer post-training quantization with TFLiteConverter, and the check of its result.

Quantization scheme (what the Edge TPU requires): weights int8, symmetric, one scale per output
channel for Conv2D/DepthwiseConv2D/Dense kernels; activations int8, asymmetric, one
(scale, zero_point) per tensor learned from the min/max the representative images produce; model
input and output uint8 (or int8) so that the device feeds camera pixels with no float maths.

The model is traced as a ``tf.function`` with a fixed ``TensorSpec([1, H, W, C])`` and converted
with ``from_concrete_functions``: every shape is static, so no SHAPE/STRIDED_SLICE/PACK ops are
left from a dynamic batch, and it skips the temporary SavedModel export that ``from_keras_model``
goes through (about 4x faster on small models).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Callable

from edgekit.errors import EdgekitError
from edgekit.host.tfenv import quiet_native_output

IO_TYPES = ("uint8", "int8")
# Left in a graph only when the batch (or another dim) was dynamic at conversion time.
DYNAMIC_SHAPE_OPS = ("SHAPE", "PACK", "STRIDED_SLICE", "BROADCAST_ARGS", "BROADCAST_TO")
# Allowed float-typed helper ops: none. A full-integer model has no float tensor at all.


def quantize(
    model: Any, representative: Callable[[], Iterable[list]], io_type: str = "uint8"
) -> bytes:
    """Convert a batch-1 Keras model to a full-integer .tflite (bytes).

    ``representative()`` yields ``[(1, H, W, C) float32]`` samples. Raises EdgekitError naming
    the op and layer when TFLite cannot express or quantize part of the model.
    """
    if io_type not in IO_TYPES:
        raise EdgekitError(f"--io {io_type!r}: unknown type", "use uint8 or int8")
    import tensorflow as tf

    spec = tf.TensorSpec(model.inputs[0].shape, tf.float32)
    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    with quiet_native_output():  # absl: "consider providing the trackable_obj argument": no,
        # with one the converter goes back to the slow SavedModel path and leaves variables
        # unfrozen (READ_VARIABLE fails during calibration).
        converter = tf.lite.TFLiteConverter.from_concrete_functions([fn])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    # Builtin int8 kernels only: anything that cannot be int8 makes conversion fail loudly
    # instead of silently falling back to float (which the Edge TPU compiler rejects).
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8 if io_type == "uint8" else tf.int8
    converter.inference_output_type = converter.inference_input_type
    layer_names = [layer.name for layer in _all_layers(model)]
    native: list[str] = []
    try:
        with quiet_native_output() as native:
            return bytes(converter.convert())
    except EdgekitError:
        raise
    except Exception as e:  # ConverterError, RuntimeError, ValueError from the MLIR pipeline
        raise _conversion_error(str(e) + "\n" + "".join(native), layer_names) from None


def _all_layers(model) -> list:
    out = []
    for layer in getattr(model, "layers", []):
        out.append(layer)
        out.extend(_all_layers(layer))
    return out


def layer_of(tensor_or_loc: str, layer_names: list[str]) -> str | None:
    """The Keras layer a TF name scope such as ``functional_1/my_layer_1/Cumsum`` came from.
    Keras 3 suffixes scopes with ``_1``; try the component as is, then without the suffix."""
    known = set(layer_names)
    for part in reversed(re.split(r"[/;:]", tensor_or_loc)[:-1] or [tensor_or_loc]):
        for cand in (part, re.sub(r"_\d+$", "", part)):
            if cand in known:
                return cand
    return None


def _conversion_error(msg: str, layer_names: list[str]) -> EdgekitError:
    ops = re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", msg)
    select = re.search(r"TF Select ops: ([\w, ]+)", msg)
    if select:
        ops += [o.strip() for o in select.group(1).split(",")]
    ops = list(dict.fromkeys(ops))
    if ops:
        locs = re.findall(r'"([^"\s]+/(?:' + "|".join(map(re.escape, ops)) + r'))"', msg)
        layers = list(dict.fromkeys(filter(None, (layer_of(loc, layer_names) for loc in locs))))
        where = f" in layer {', '.join(layers)}" if layers else ""
        return EdgekitError(
            f"TFLite has no int8 builtin for TensorFlow op {', '.join(ops)}{where}; "
            "the model cannot be fully quantized",
            "replace that layer with Edge-TPU-supported ops (conv, depthwise conv, dense, "
            "pooling, add, concat, relu...)",
        )
    first = next((line for line in msg.splitlines() if "error" in line.lower()), msg[:300])
    return EdgekitError(
        f"TFLite conversion failed: {first.strip()[:400]}", "see the converter message"
    )


def check_model(data: bytes, layer_names: list[str] | None = None):
    """Check a converted model for what keeps it off the Edge TPU.

    Returns ``(model_info, report)``: ``report`` has ``ops`` (name -> count), ``input``/``output``
    specs and ``problems`` (empty when clean). Raises EdgekitError when a tensor stayed float or
    has a dynamic dimension: the Edge TPU compiler would reject the model ("Model not
    quantized") or map nothing.
    """
    from edgekit.tflite import read_model

    info = read_model(data)
    main = info.main
    producers = {t: op for op in main.operators for t in op.outputs}
    layer_names = layer_names or []

    floats = [t for t in info.float_tensors()]
    if floats:
        t = floats[0]
        op = producers.get(t.index)
        consumer = next((o for o in main.operators if t.index in o.inputs), None)
        culprit = op if op is not None and op.opcode != "DEQUANTIZE" else consumer
        what = culprit.opcode if culprit else "?"
        layer = layer_of(t.name, layer_names)
        raise EdgekitError(
            f"op {what}{f' (layer {layer})' if layer else ''} stayed float32 after quantization "
            f"({len(floats)} float tensor(s), e.g. {t.name!r}): TFLite has no int8 kernel for it",
            "replace that layer with Edge-TPU-supported ops; the Edge TPU needs every tensor int8",
        )
    dynamic = info.dynamic_tensors()
    if dynamic:
        raise EdgekitError(
            f"tensor {dynamic[0].name!r} has a dynamic shape {list(dynamic[0].shape_signature)}",
            "the Edge TPU needs static shapes; pass --input-size HxW",
        )
    counts = info.op_counts()
    problems = []
    leftover = [op for op in DYNAMIC_SHAPE_OPS if op in counts]
    if leftover:
        problems.append(
            f"shape-computing ops {', '.join(leftover)} in the graph (usually from a dynamic "
            "batch or a Reshape with -1 traced dynamically); the Edge TPU maps nothing after them"
        )
    inp, out = info.inputs[0], info.outputs[0]
    report = {
        "ops": counts,
        "num_ops": sum(counts.values()),
        "size_bytes": len(data),
        "input": _tensor_spec(inp),
        "output": _tensor_spec(out),
        "problems": problems,
    }
    if len(info.outputs) > 1:  # a detector's heads, each with its own scale (convert_heads)
        report["outputs"] = [dict(_tensor_spec(t), name=t.name) for t in info.outputs]
    return info, report


def _tensor_spec(t) -> dict[str, Any]:
    q = t.quantization
    return {
        "shape": list(t.shape),
        "dtype": t.dtype,
        "scale": float(q.scale[0]) if q and q.scale else 0.0,
        "zero_point": int(q.zero_point[0]) if q and q.zero_point else 0,
    }


def predict_mapping(info) -> Any:
    """Edge TPU mapping prediction (edgekit.edgetpu.mapping), or None if it is unavailable."""
    try:
        from edgekit.edgetpu.mapping import predict
    except ImportError:
        return None
    try:
        return predict(info)
    except Exception:  # a prediction is advice; never fail a conversion over it
        return None
