"""Detect, then classify each detection's crop: the bird feeder's two models (a COCO detector
finds the bird, an iNaturalist classifier names the species on its crop).

The crop logic is pure numpy (:func:`crop_box`, :func:`select`) so the CLI, serve and bench
share it; :class:`Cascade` runs a :class:`~edgekit.detect.Detector` and a
:class:`~edgekit.classify.Classifier` in one process, on one device (the Edge TPU lock is per
process: :mod:`edgekit.backends.devicelock`), and returns :class:`CascadeDetections`, a
:class:`~edgekit.detect.records.Detections` whose detections carry ``classes``.

Crop of a box ``(x0, y0, x1, y1)`` (original pixels): grown by ``margin`` times its width and
height on each side (a species classifier was trained on photos with some context around the
animal), clamped to the image, rounded outwards to whole pixels. Boxes narrower or shorter than
``min_size`` pixels are not classified (a 10-pixel crop stretched to 224 names nothing), nor
boxes of labels outside ``labels`` (when given); of the rest, the ``max_crops`` best-scoring
are classified (the detector lists best first). The classifier applies its own preprocessing
(resize mode, colour order, input range) to each crop, exactly as on a whole photo.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, Callable

import numpy as np

from edgekit.detect.cascade_crops import (
    MARGIN,
    MAX_CROPS,
    MIN_SIZE,
    CropRule,
    crop,
    crop_box,
    select,
)
from edgekit.detect.cascade_records import CascadeDetections, ClassifiedDetection
from edgekit.errors import EdgekitError, named
from edgekit.stages import run_stages

__all__ = ["MARGIN", "MAX_CROPS", "MIN_SIZE", "Cascade", "CascadeDetections",
           "ClassifiedDetection", "CropRule", "cascade_factory", "crop", "crop_box",
           "open_cascade", "select"]  # fmt: skip


class Cascade:
    """A detector and a classifier for its crops, in one process on one device.

    ``detector``/``classifier`` are opened models (:class:`~edgekit.detect.Detector`,
    :class:`~edgekit.classify.Classifier`); :func:`open_cascade` opens both from paths. Has the
    task-model interface serve's stream and worker use: ``task``, ``run(rgb)``, ``runner`` (the
    detector's), ``reopen(device)``, ``close()``; frames are not resized before it
    (``input_size`` None: boxes and crops are in the pixels of the frame given)."""

    task = "detect"
    input_size = None
    resize = None

    def __init__(self, detector, classifier, rule: CropRule | None = None):
        self.detector, self.classifier = detector, classifier
        self.rule = rule or CropRule()

    @property
    def runner(self):
        return self.detector.runner

    @property
    def labels(self) -> dict[int, str]:
        return self.detector.labels

    def run(self, rgb: np.ndarray) -> CascadeDetections:
        """Detect in one (H, W, 3) uint8 image, then classify the selected crops."""
        return run_stages(self.stages, rgb)

    @property
    def stages(self) -> tuple[Callable, Callable, Callable]:
        """run() in stages for serve's worker (:mod:`edgekit.detect.cascade_stages`)."""
        from edgekit.detect.cascade_stages import CascadeStages

        st = CascadeStages(self)
        return st.make_input, st.invoke_input, st.finish

    detect = run

    def reset(self) -> None:
        if hasattr(self.detector, "reset"):
            self.detector.reset()

    def reopen(self, device: str | None = None) -> None:
        """Close and reopen both models (on ``device`` if given), one after the other: the
        device lock stays held by the other one throughout."""
        self.detector.reopen(device)
        self.classifier.reopen(device)

    def close(self) -> None:
        try:
            self.classifier.close()
        finally:
            self.detector.close()


def open_cascade(
    detector: str | os.PathLike,
    classifier: str | os.PathLike,
    *,
    device: str = "auto",
    threads: int | None = None,
    on_warning: Callable[[str], None] | None = None,
    labels: Any = None,
    threshold: float | None = None,
    iou: float | None = None,
    max_detections: int | None = None,
    decoder: str | None = None,
    anchors: Any = None,
    classify_labels: Any = None,
    top_k: int = 3,
    classify_threshold: float = 0.0,
    crop_labels: Iterable[str] | None = None,
    margin: float = MARGIN,
    min_size: float = MIN_SIZE,
    max_crops: int = MAX_CROPS,
    names: dict[str, str] | None = None,
) -> Cascade:
    """Open ``detector`` then ``classifier`` on ``device`` (both on the same Edge TPU: one lock,
    see :mod:`edgekit.backends.devicelock`) as a :class:`Cascade`. Picklable as a
    ``functools.partial`` (serve's worker process builds it). ``crop_labels``: the detector
    labels whose crops are classified (None: all); a label the detector does not have is
    refused, since it would silently classify nothing. ``names`` says how errors name the
    settings (``classifier``, ``labels``, ``crop_labels``): the CLI flags by default, serve's
    ``[cascade] KEY``, so the user sees which line of the config to fix."""
    from edgekit.classify import Classifier
    from edgekit.detect.detector import Detector
    from edgekit.tasks import model_task

    names = {**CLI_NAMES, **(names or {})}
    with named(names["classifier"]):
        task = model_task(classifier)
    if task != "classify":
        raise EdgekitError(
            f"{names['classifier']}: {os.fspath(classifier)} is a detector, not a classifier",
            "give an image classifier (a bundle, .tflite or _edgetpu.tflite)",
        )
    if isinstance(classify_labels, (str, os.PathLike)):
        from edgekit.labels import read_labels

        with named(names["labels"]):
            classify_labels = read_labels(classify_labels)
    on_warning = _once(on_warning)  # both models would say "no Edge TPU found"
    rule = CropRule(frozenset(crop_labels) if crop_labels is not None else None, margin,
                    min_size, max_crops)  # fmt: skip
    det = Detector(detector, labels=labels, device=device, threshold=threshold, iou=iou,
                   max_detections=max_detections, decoder=decoder, threads=threads,
                   on_warning=on_warning, anchors=anchors)  # fmt: skip
    try:
        if rule.labels is not None and det.labels:
            unknown = sorted(rule.labels - set(det.labels.values()))
            if unknown:
                lower = {v.lower(): v for v in det.labels.values()}
                cased = [f"{lower[u.lower()]} for {u}" for u in unknown if u.lower() in lower]
                raise EdgekitError(
                    f"{names['crop_labels']}: crop label{'s' if len(unknown) > 1 else ''} "
                    f"{', '.join(unknown)}: not a label of the detector {os.fspath(detector)}",
                    (f"labels match exactly: use {', '.join(cased)}" if cased else
                     "use the detector's own label names (see `edgekit detect --json`)"),
                )  # fmt: skip
        cls = Classifier(classifier, labels=classify_labels, device=_beside(device), top_k=top_k,
                         threshold=classify_threshold, threads=threads,
                         on_warning=_label_file_named(on_warning, names["labels"])
                         if classify_labels is not None else on_warning)  # fmt: skip
    except BaseException:
        det.close()
        raise
    return Cascade(det, cls, rule)


def _beside(device: str) -> str:
    """The crop classifier's device: the detector's, or for compiled segments over several
    Edge TPUs ("usb:*", "usb:0,usb:1": the detector refuses a list otherwise) the first of
    them, beside segment 0 (one process: one device lock, see devicelock)."""
    first = str(device).split(",")[0].strip()
    if first == "*":
        return "auto"
    return first[:-1] + "0" if first.endswith(":*") else first


# How open_cascade's errors name its settings: the flags of `detect`, `bench` and `serve`.
CLI_NAMES = {"classifier": "--classify", "labels": "--classify-labels",
             "crop_labels": "--crop-labels"}  # fmt: skip
# serve's config: "[cascade] labels: /x.txt: no such label file" points at the line to fix.
CONFIG_NAMES = {k: f"[cascade] {k}" for k in ("classifier", "labels", "crop_labels")}


def _label_file_named(warn: Callable[[str], None], name: str) -> Callable[[str], None]:
    """The classifier's "N labels for M model outputs: is it the label file of this model?"
    with the setting in front: in a cascade, "this model" could be either of two."""

    def said(message: str) -> None:
        warn(f"{name}: {message}" if message.endswith("label file of this model?") else message)

    return said


def _once(fn: Callable[[str], None] | None) -> Callable[[str], None]:
    """``fn`` (default: the edgekit logger) saying each distinct notice once."""
    import logging

    emit, seen = fn or logging.getLogger("edgekit").warning, set()

    def once(message: str) -> None:
        if message not in seen:
            seen.add(message)
            emit(message)

    return once


def cascade_factory(config) -> Callable[..., Cascade] | None:
    """serve's picklable factory for ``[model]`` + ``[cascade]`` of a ServeConfig (both models
    built in the worker process: one process, one Edge TPU lock); a cascade bundle's carried
    classifier when ``[cascade] classifier`` is empty (:mod:`edgekit.detect.cascade_bundle`).
    None when there is no classifier at all."""
    import functools

    from edgekit.detect.cascade_bundle import choose

    m, c = config.model, config.cascade
    names = [n.strip() for n in c.crop_labels.split(",") if n.strip()] or None
    if c.crop_labels.strip() and names is None:  # "," is not "every label"
        raise EdgekitError(f"[cascade] crop_labels = {c.crop_labels!r}: no label names",
                           "give detector labels separated by commas, e.g. \"bird,cat\", or "
                           "leave the key out to classify every detection")  # fmt: skip
    pick = choose(m.path, c.classifier or None, names, c.top_k or None)
    if pick is None:
        _refuse_orphan_keys(c)
        return None
    return functools.partial(
        open_cascade, m.path, pick.classifier, device=m.device, threads=m.threads or None,
        labels=m.labels or None, threshold=m.threshold or None, iou=m.iou or None,
        max_detections=m.max_detections or None, decoder=m.decoder or None,
        anchors=m.anchors or None,
        classify_labels=c.labels or None, top_k=pick.top_k, classify_threshold=c.threshold,
        crop_labels=pick.crop_labels, margin=c.margin, min_size=c.min_size,
        max_crops=c.max_crops, names=CONFIG_NAMES,
    )  # fmt: skip


def _refuse_orphan_keys(c) -> None:
    """A ``[cascade]`` key set without a classifier would be ignored without a word."""
    import dataclasses

    default = type(c)()
    for f in dataclasses.fields(c):
        if getattr(c, f.name) != getattr(default, f.name):
            raise EdgekitError(
                f"[cascade] {f.name} is set but there is no crop classifier",
                "set [cascade] classifier (or --classify), serve a cascade bundle, or remove "
                f"[cascade] {f.name}",
            )
