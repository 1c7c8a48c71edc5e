"""Refusals decided from the declared architecture, before any loader runs. Each names the true
cause in one line: the Keras version that wrote a Keras 1 file, the Lambda or custom layer by
class and name, the input shape as the file declares it, the recurrent layers by name."""

from __future__ import annotations

import sys
from pathlib import Path

from edgekit.errors import EdgekitError
from edgekit.host.loaders.architecture import RECURRENT, Architecture, LayerRef, declared_io

# Keras 1 config keys that Keras 2 renamed (nb_filter -> filters, init -> kernel_initializer,
# border_mode -> padding): a file without keras_version carrying them was written by Keras 1.
KERAS1_KEYS = {"nb_filter", "init", "border_mode", "nb_row", "nb_col"}  # not output_dim:
# Keras 2's Embedding still has it
KERAS1_CLASSES = {"Convolution2D", "Convolution1D", "Merge", "MaxoutDense", "Highway"}
# tf_keras wraps raw TensorFlow ops used on Keras tensors in these: plain ops, no Python code.
TF_OP_CLASSES = {"TFOpLambda", "SlicingOpLambda", "InstanceProperty", "InstanceMethod",
                 "ClassMethod"}  # fmt: skip
CUSTOM_HINT = (
    "pass --custom-objects FILE.py, a Python file that defines {it} (edgekit imports it and goes "
    "on), or rebuild the model with standard Keras layers"
)


def refuse_early(path: Path, arch: Architecture, custom_names: frozenset = frozenset(),
                 image_model: bool = True) -> None:  # fmt: skip
    """Raise EdgekitError when the declared architecture cannot become an Edge TPU classifier
    (``image_model=False``: only when it cannot be loaded at all, for ``edgekit inspect``)."""
    _keras1(path, arch)
    lambdas = [x for x in arch.layers if x.class_name == "Lambda" and x.name not in custom_names]
    if lambdas:
        raise EdgekitError(
            f"{path}: {_names(lambdas)} hold{'s' if len(lambdas) == 1 else ''} Python code, "
            "which cannot be converted to TensorFlow Lite (only its bytecode was saved)",
            "rebuild the model with standard Keras layers in place of the Lambda "
            "(e.g. Rescaling, Resizing, Activation) and save it again",
        )
    unknown = [x for x in arch.layers if x.class_name not in custom_names and not _known(x)]
    if unknown:
        classes = sorted({x.class_name for x in unknown})
        raise EdgekitError(
            f"{path}: custom layer class{'es' if len(classes) > 1 else ''} "
            f"{', '.join(classes)} ({_names(unknown, with_class=False)}) not part of Keras",
            CUSTOM_HINT.format(it="them" if len(classes) > 1 else "it"),
        )
    if not image_model:
        return
    ins, outs, shape = declared_io(arch)
    if len(ins) > 1:
        raise EdgekitError(
            f"{path}: model has {len(ins)} inputs ({', '.join(ins)}); "
            "edgekit converts models with one image input",
            "export a single-input image classifier",
        )
    if len(outs) > 4:  # 2-4: a detector's grid heads, checked by shape once loaded (batch1)
        raise EdgekitError(
            f"{path}: model has {len(outs)} outputs ({', '.join(outs)}); "
            "edgekit converts single-output classifiers",
            "export the classification head only",
        )
    recurrent = [x for x in arch.layers if x.class_name in RECURRENT]
    if shape is not None and not _is_image(shape):
        seq = f"; recurrent layers: {_names(recurrent)}" if recurrent else ""
        raise EdgekitError(
            f"{path}: the file declares input shape {_fmt(shape)}, not an image "
            f"(batch, height, width, 1 or 3 channels){seq}",
            "edgekit converts image models (classifiers, detectors) with one NHWC image input",
        )
    if recurrent:
        raise EdgekitError(
            f"{path}: recurrent layers {_names(recurrent)} cannot run on the Edge TPU",
            "edgekit converts convolutional image models",
        )


def _keras1(path: Path, arch: Architecture) -> None:
    if arch.major == 1:
        who = f"Keras {arch.keras_version}"
    elif arch.major is None and any(
        x.class_name in KERAS1_CLASSES or KERAS1_KEYS & set(x.config) for x in arch.layers
    ):
        who = "Keras 1 (the file has no keras_version; its layers use Keras 1 arguments)"
    else:
        return
    raise EdgekitError(
        f"{path}: written by {who}; TensorFlow's Keras (2 and 3) cannot read Keras 1 files",
        "load it with Keras 2.2 (the last to read Keras 1 files, e.g. pip install keras==2.2.5 "
        "under Python 3.6), save it again, and convert that file",
    )


_KNOWN: set[str] = set()
_KNOWN_LEGACY: set[str] = set()


def _known(layer: LayerRef) -> bool:
    """A Keras layer class, or one registered with register_keras_serializable in this
    process (the user's own code imported edgekit's library)."""
    if not _KNOWN:
        import keras

        _KNOWN.update(n for n in dir(keras.layers) if n[:1].isupper())
        _KNOWN.update({"Sequential", "Functional", "Model"} | TF_OP_CLASSES)
    if layer.class_name in _KNOWN:
        return True
    if not _KNOWN_LEGACY:  # Keras 2-only layers (CuDNNLSTM, DenseFeatures...): import on demand
        try:
            import tf_keras

            _KNOWN_LEGACY.update(n for n in dir(tf_keras.layers) if n[:1].isupper())
        except ImportError:
            _KNOWN_LEGACY.add("")
    if layer.class_name in _KNOWN_LEGACY:
        return True
    return _registered(layer.registered_name or layer.class_name)


def _registered(name: str) -> bool:
    import keras

    if keras.saving.get_registered_object(name) is not None:
        return True
    if "tf_keras" not in sys.modules:  # nothing registered there if the user never imported it
        return False
    try:
        return sys.modules["tf_keras"].saving.get_registered_object(name) is not None
    except AttributeError:
        return False


def _is_image(shape) -> bool:
    return len(shape) == 4 and shape[3] in (1, 3)


def _names(layers: list[LayerRef], with_class: bool = True) -> str:
    shown = [x.label if with_class else repr(x.name) for x in layers[:6]]
    more = f" and {len(layers) - 6} more" if len(layers) > 6 else ""
    return ", ".join(shown) + more


def _fmt(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"
