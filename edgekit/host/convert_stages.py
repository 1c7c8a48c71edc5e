"""The stages of ``edgekit convert`` before the bundle, each a function with a frozen result.

    load_stage          -> Loaded        the batch-1 model, its task, its labels
    preprocessing_stage -> Framing       size, channels, colour, resize; the model's hint
    calibration_stage   -> Calibration   images decoded once (uint8), calib + held-out sides
    range_stage         -> Prepared      the input range decided (edgekit.host.input_range)
    quantize_stage      -> Quantized     int8 .tflite bytes, its reading, the mapping prediction
    verify_stage        -> Verified      float vs int8 on the held-out images

(compile and bundle: :mod:`edgekit.host.convert_bundle`.) Every stage takes the options object
and earlier results, reports warnings through ``warning(msg)`` and raises EdgekitError for
anything the user can fix. TensorFlow is imported by the caller before :func:`load_stage`.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from edgekit.errors import EdgekitError
from edgekit.host import input_range
from edgekit.host.calibration import Preprocessing
from edgekit.labels import labels_as_list, mismatch, read_labels

Progress = Optional[Callable[[str, int, int], None]]
Warning_ = Callable[[str], None]


@dataclass(frozen=True)
class Loaded:
    """``loaded``: :class:`edgekit.host.keras_io.LoadedModel`; ``task``: the task layer
    (:mod:`edgekit.host.convert_task`); ``labels`` one per class or None, and where from."""

    loaded: Any
    task: Any
    labels: Optional[tuple[str, ...]]
    labels_from: Optional[str]
    seconds: float


def load_stage(model_path: Path, opts, label_map: dict | None, warning: Warning_) -> Loaded:
    from edgekit.host import keras_io
    from edgekit.host.convert_task import task_for

    t = time.perf_counter()
    loaded = keras_io.load(model_path, opts.input_size, opts.custom_objects)
    seconds = time.perf_counter() - t
    for fix in loaded.fixups:
        warning(f"legacy model: {fix}")
    task = task_for(loaded, opts, model_path)
    labels, where = _labels(model_path, opts, label_map, loaded, task.num_classes, warning)
    return Loaded(loaded, task, labels, where, seconds)


def _labels(model_path, opts, label_map, loaded, num_classes, warning):
    """--labels, else the ``labels.txt`` the model came with (beside it, or inside a SavedModel
    folder: what ``edgekit train`` writes, Teachable Machine's ``0 Name`` lines), which the
    loader has read into ``loaded.labels`` when it fits."""
    if label_map is not None:
        problem = mismatch(label_map, num_classes)
        if problem:
            raise EdgekitError(f"{opts.labels}: {problem}", "give one label per model output")
        return tuple(labels_as_list(label_map, num_classes)), str(opts.labels)
    path = (model_path if model_path.is_dir() else model_path.parent) / "labels.txt"
    own = getattr(loaded, "labels", None)
    if own is not None and len(own) == num_classes:
        warning(f"using labels from {path} (pass --labels to choose another file)")
        return tuple(str(x) for x in own), str(path)
    if not path.is_file():
        return None, None
    try:
        found = read_labels(path)
    except EdgekitError as e:
        warning(f"ignoring {path}: {e}")
        return None, None
    problem = mismatch(found, num_classes)
    if problem:
        warning(f"ignoring {path}: {problem}")
        return None, None
    warning(f"using labels from {path} (pass --labels to choose another file)")
    return tuple(labels_as_list(found, num_classes)), str(path)


@dataclass(frozen=True)
class Framing:
    """How a photo becomes model pixels (the range is decided later, by :func:`range_stage`)
    and what the model said about its input (``hint``)."""

    prep: Preprocessing
    hint: Optional[input_range.Hint]


def preprocessing_stage(model_path: Path, opts, model: Loaded, warning: Warning_) -> Framing:
    shape = model.loaded.input_shape
    hint = input_range.model_hint(model.loaded, model_path)
    resize = opts.resize
    if resize is None and hint is not None and hint.resize is not None:
        resize = hint.resize
    resize = model.task.resize(resize) or "stretch"
    if hint is not None and hint.size is not None and tuple(hint.size) != tuple(shape[1:3]):
        warning(
            f"the model's input is {shape[1]}x{shape[2]}, but {hint.reason} suggests "
            f"{hint.size[0]}x{hint.size[1]}: using the model's"
        )
    prep = Preprocessing(
        size=tuple(shape[1:3]),
        channels=shape[3],
        color=opts.color,
        resize=resize,
        range=opts.input_range or input_range.DEFAULT,
    )
    return Framing(prep, hint)


@dataclass(frozen=True)
class Calibration:
    """``images``: an object with ``calib`` / ``verify`` uint8 (N, H, W, C) pixels, ``stats``,
    ``warnings`` and ``representative(prep, progress)`` (the task's image set)."""

    images: Any
    seconds: float


def calibration_stage(
    opts, model: Loaded, framing: Framing, train_split, progress: Progress, warning: Warning_
) -> Calibration:
    from edgekit.host import memory

    memory.check_conversion(model.loaded.model, framing.prep.size, framing.prep.channels,
                            _image_count(opts))  # fmt: skip
    t = time.perf_counter()
    imgs = model.task.load_images(opts, framing.prep, progress, train_split)
    seconds = time.perf_counter() - t
    for w in imgs.warnings:
        warning(w)
    return Calibration(imgs, seconds)


def _image_count(opts) -> int:
    """Images that will be decoded at most: calibration plus held-out."""
    if opts.calib is None:
        return opts.num_calib
    from edgekit import images

    found = len(images.find_images(opts.calib))
    verify = opts.num_verify if opts.num_verify is not None else min(100, round(0.2 * found))
    return min(found, opts.num_calib + verify)


@dataclass(frozen=True)
class Prepared:
    """The final preprocessing (range decided) and the decision with its evidence."""

    prep: Preprocessing
    decision: input_range.RangeDecision
    seconds: float


def range_stage(opts, model: Loaded, framing: Framing, calib: Calibration, warning) -> Prepared:
    t = time.perf_counter()
    imgs, m = calib.images, None
    classes = model.task.true_classes(imgs, model.labels)
    if classes is not None and len(imgs.verify) + len(imgs.calib) > 0:
        calib_cls, verify_cls = classes
        m = input_range.measure(
            model.loaded.batched,
            input_range.ranges_to_measure(opts.input_range, framing.hint),
            imgs.verify,
            verify_cls,
            imgs.calib if calib_cls is not None else None,
            calib_cls,
        )
    decision = input_range.decide(
        opts.input_range,
        opts.keep_input_range,
        framing.hint,
        m,
        model.task.num_classes,
        f"--calib {opts.calib}",
        warning,
    )
    prep = dataclasses.replace(framing.prep, range=decision.range)
    return Prepared(prep, decision, time.perf_counter() - t)


@dataclass(frozen=True)
class Quantized:
    """``data``: the int8 .tflite bytes; ``info``: edgekit's reading of them; ``check``:
    ``ops`` and ``problems``; ``prediction``: the Edge TPU mapping prediction (or None)."""

    data: bytes
    info: Any
    check: dict
    prediction: Any
    seconds: float


def quantize_stage(opts, model: Loaded, prepared: Prepared, calib: Calibration,
                   progress: Progress, warning: Warning_) -> Quantized:  # fmt: skip
    from edgekit.host import quantize

    t = time.perf_counter()
    keras_model, prep, imgs = model.loaded.model, prepared.prep, calib.images
    data = quantize.quantize(keras_model, lambda: imgs.representative(prep, progress), opts.io)
    layer_names = [layer.name for layer in quantize._all_layers(keras_model)]
    info, check = quantize.check_model(data, layer_names)
    for problem in check["problems"]:
        warning(problem)
    prediction = quantize.predict_mapping(info)
    return Quantized(data, info, check, prediction, time.perf_counter() - t)


@dataclass(frozen=True)
class Verified:
    """The task's verification record (``images``, agreement or mAP, errors, ``held_out``)."""

    result: dict
    seconds: float


def verify_stage(opts, model: Loaded, prepared: Prepared, calib: Calibration, q: Quantized,
                 progress: Progress) -> Verified:  # fmt: skip
    t = time.perf_counter()
    m = prepared.decision.measurement
    reuse = None if m is None else m.verify_outputs.get(prepared.prep.range)
    result = model.task.verify(
        q.data, model.loaded, prepared.prep, calib.images, model.labels, progress, reuse
    )
    result["held_out"] = True
    model.task.check_verification(result, opts)
    return Verified(result, time.perf_counter() - t)


@dataclass(frozen=True)
class Stages:
    """Every result before the bundle, for :mod:`edgekit.host.convert_bundle`."""

    model: Loaded
    framing: Framing
    calibration: Calibration
    prepared: Prepared
    quantized: Quantized
    verified: Verified
