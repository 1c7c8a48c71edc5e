"""``load(path)``: sniff what the path holds, refuse what cannot become an Edge TPU image model
from its declared architecture, pick the loader, clone to batch 1, and say what the file implies
about its preprocessing and labels.

Loader choice (each family is one module; a new format is one more module and one branch here):

==================  ======================================================================
container           loader
==================  ======================================================================
SavedModel dir      ``savedmodel``: tf_keras for tf.keras 2 ``model.save(dir)`` output, else
                    the ``serving_default`` signature
zip (``.keras``)    ``keras3`` (then ``legacy`` if a Keras 2.13+ v3 archive fails there)
HDF5, Keras 3       ``keras3``
HDF5, Keras 2 / ?   ``legacy`` (tf_keras), then ``keras3`` with fix-ups if that fails; ``keras3``
                    with fix-ups when tf_keras is not installed
==================  ======================================================================

Custom classes from ``--custom-objects`` steer the choice: subclasses of tf_keras layers need
tf_keras, subclasses of Keras 3 layers need Keras 3.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Optional, Union

from edgekit.errors import EdgekitError
from edgekit.host.loaders import LoadedModel, keras3, legacy, savedmodel
from edgekit.host.loaders.architecture import Architecture, read_hdf5, read_zip
from edgekit.host.loaders.batch1 import finish
from edgekit.host.loaders.custom import load_custom_objects, preferred_keras
from edgekit.host.loaders.hints import range_hint
from edgekit.host.loaders.refusals import refuse_early
from edgekit.host.loaders.sniff import sniff
from edgekit.host.loaders.teachable import TM_HINT, is_teachable_machine, labels_beside
from edgekit.host.tfenv import load_tensorflow

CustomObjects = Union[None, dict, str, os.PathLike]


def load(
    path: str | os.PathLike,
    input_size: Optional[tuple[int, int]] = None,
    custom_objects: CustomObjects = None,
) -> LoadedModel:
    """Load a model file or SavedModel directory and clone it to batch 1.

    Args:
        path: HDF5 under any name, a ``.keras`` zip, or a SavedModel directory.
        input_size: (height, width) in pixels; required when the model's H/W are dynamic,
            must match them when they are not.
        custom_objects: {name: class or function}, or the path of a ``.py`` file defining them.

    Raises EdgekitError (one line naming the cause) for anything that cannot be converted.
    """
    path = Path(path)
    container = sniff(path)
    load_tensorflow()
    custom = _custom(custom_objects)
    if container == "savedmodel":
        loaded = savedmodel.load(path, input_size, custom)
        hint = range_hint(loaded.model) if loaded.loader == "tf_keras" else None
        return _with_extras(loaded, hint)
    arch = read_hdf5(path) if container == "hdf5" else read_zip(path)
    refuse_early(path, arch, frozenset(custom))
    fixups: list[str] = []
    model, loader = _load_keras(path, container, arch, custom, fixups)
    tm = is_teachable_machine(arch)
    if tm:
        fmt = "teachable-machine"
    elif container == "zip":  # the v3 archive format; Keras 2.13-2.15 wrote it too
        fmt = "keras3" if loader == "keras" else "keras2-zip"
    else:
        fmt = "keras3-h5" if arch.major == 3 else "keras2-h5"
    loaded = finish(
        model, path, input_size, kind="h5" if container == "hdf5" else "keras", format=fmt,
        loader=loader, fixups=tuple(fixups),
    )  # fmt: skip
    hint = dataclasses.replace(TM_HINT, size=loaded.input_shape[1:3]) if tm else range_hint(model)
    return _with_extras(loaded, hint)


def _custom(custom_objects: CustomObjects) -> dict:
    """{name: class or function} from a dict, or from the ``.py`` file a path names."""
    if isinstance(custom_objects, (str, os.PathLike)):
        return load_custom_objects(custom_objects)
    return dict(custom_objects or {})


def precheck(path: str | os.PathLike) -> None:
    """What :func:`load` refuses from the first bytes alone (a .tflite, an image, a text file, a
    Git LFS pointer, nothing there), for ``convert`` to say before anything else: a .tflite was
    told "no calibration images" first and refused only once given some. Reads 4 KiB, imports
    nothing (the architecture's refusals need Keras: :func:`load` makes them)."""
    sniff(Path(path))


def load_as_saved(path: str | os.PathLike, custom_objects: CustomObjects = None):
    """The Keras model as the file declares it (any inputs and outputs, any batch), for
    ``edgekit inspect``: :func:`load`'s loaders and its refusals of what cannot be loaded, not
    those of what is no image model, and no batch-1 clone. A SavedModel directory that tf.keras
    2 wrote loads with tf_keras; any other goes through :func:`load_model` (a signature is
    wrapped for a fixed image input only)."""
    path = Path(path)
    container = sniff(path)
    load_tensorflow()
    custom = _custom(custom_objects)
    if container == "savedmodel":
        if (path / "keras_metadata.pb").is_file() and legacy.available():
            return legacy.load(path, custom)
        return load_model(path, custom_objects=custom)
    arch = read_hdf5(path) if container == "hdf5" else read_zip(path)
    refuse_early(path, arch, frozenset(custom), image_model=False)
    return _load_keras(path, container, arch, custom, [])[0]


def load_model(path: str | os.PathLike, input_size=None, custom_objects: CustomObjects = None):
    """Load ``path`` and return a batch-1, static-shape Keras model (see :func:`load`)."""
    return load(path, input_size, custom_objects).model


def _load_keras(path: Path, container: str, arch: Architecture, custom: dict, fixups: list):
    """(model, loader name) with the loader the file's vintage calls for."""
    pref = preferred_keras(custom)
    keras2 = arch.major != 3
    if container == "zip" or arch.major == 3 or pref == "keras":
        try:
            return keras3.load(path, "zip" if container == "zip" else "hdf5", arch, custom,
                               fixups), "keras"  # fmt: skip
        except EdgekitError:
            if not (keras2 and legacy.available() and pref != "keras"):
                raise
            fixups.clear()
            return legacy.load(path, custom), "tf_keras"
    if legacy.available():
        try:
            return legacy.load(path, custom), "tf_keras"
        except EdgekitError as first:
            if pref == "tf_keras" or "custom" in first.message:
                raise
            try:
                return keras3.load(path, "hdf5", arch, custom, fixups), "keras"
            except EdgekitError:
                raise first from None
    try:
        return keras3.load(path, "hdf5", arch, custom, fixups), "keras"
    except EdgekitError as e:
        raise EdgekitError(
            e.message, f"this Keras 2 file needs the legacy loader: {legacy.install_hint()}"
        ) from None


def _with_extras(loaded: LoadedModel, hint) -> LoadedModel:
    labels = labels_beside(loaded.path, int(loaded.output_shape[-1]))
    return dataclasses.replace(loaded, preprocessing=hint, labels=labels)
