"""``edgekit convert`` on a classifier: folder calibration, top-1 verification.

Images: ``--calib`` (recursive) split deterministically into calibration and held-out sides
(:mod:`edgekit.host.calibration`; training's own split when ``edgekit train`` left one beside
the model). When the folder is one sub-folder per class and the folder names match the labels
(or, without labels, there are as many folders as classes, numbered in the alphabetical order
Keras' ``image_dataset_from_directory`` uses), every image has a true class: the float and int8
models' accuracy is reported beside their top-1 agreement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgekit.errors import EdgekitError


@dataclass(frozen=True)
class ClassifyTask:
    """A classifier with ``num_classes`` scores in its (1, classes) output."""

    num_classes: int
    name: str = "classify"

    @classmethod
    def matches(cls, model) -> bool:
        return True  # any one-output image model is read as a classifier

    @classmethod
    def for_model(cls, loaded, options, model_path) -> ClassifyTask:
        if options.min_map is not None:
            raise EdgekitError("--min-map is for detectors", "use --min-agreement for classifiers")
        if options.anchors is not None:
            raise EdgekitError("--anchors is for YOLO detectors", "drop it for a classifier")
        if len(getattr(loaded, "output_shapes", ())) > 1:
            raise EdgekitError(
                f"{model_path}: a classifier has one output, this model has "
                f"{len(loaded.output_shapes)} (a detector's grid heads)",
                "convert it with --task detect",
            )
        return cls(num_classes=int(loaded.output_shape[-1]))

    def resize(self, requested: str | None) -> str | None:
        return requested

    def load_images(self, options, prep, progress, train_split):
        from edgekit.host import calibration

        if options.calib is None:
            return calibration.synthetic_images(prep, options.num_calib)
        return calibration.load_images(
            options.calib,
            prep,
            options.num_calib,
            options.num_verify,
            options.group_pattern,
            progress,
            train_split,
        )

    def true_classes(self, images, labels) -> tuple[Any, Any] | None:
        """(calib classes, held-out classes) in the model's class order, or None."""
        remap = self._remap(images, labels)
        if remap is None or images.verify_classes is None:
            return None
        calib = getattr(images, "calib_classes", None)
        calib = None if calib is None else remap[calib]
        return calib, remap[images.verify_classes]

    def _remap(self, images, labels) -> np.ndarray | None:
        """Folder index -> model class index, or None when the folders are not the classes."""
        names = getattr(images, "class_names", None)
        if names is None or len(names) != self.num_classes:
            return None
        if labels is None:
            return np.arange(len(names), dtype=np.int64)
        lower = [x.strip().lower() for x in labels]
        if sorted(n.lower() for n in names) != sorted(lower):
            return None
        return np.asarray([lower.index(n.lower()) for n in names], dtype=np.int64)

    def verify(self, data, loaded, prep, images, labels, progress, float_ref=None):
        from edgekit.host import verify

        classes = self.true_classes(images, labels)
        return verify.verify(
            data,
            loaded.batched,
            prep.to_float(images.verify),
            None if classes is None else classes[1],
            progress,
            ref=float_ref,
        )

    def check_verification(self, result: dict[str, Any], options) -> None:
        if options.min_agreement is None:
            return
        result["min_agreement"] = options.min_agreement
        if result["agreement"] is None:
            raise EdgekitError("--min-agreement: no held-out images to verify on", "add images")
        exact = 1.0 - result["disagreements"] / result["images"]  # "agreement" is rounded
        if exact < options.min_agreement:
            raise EdgekitError(
                f"int8 top-1 agreement {result['agreement']:.3f} on {result['images']} held-out "
                f"images is below --min-agreement {options.min_agreement:g}; no bundle written",
                "use more/better calibration images, check --input-range/--color, or lower it",
            )

    def manifest_fields(self, options) -> dict[str, Any]:
        return {}


LOW_AGREEMENT = 0.9  # below this, int8 answers differently on 1 held-out image in 10 or more


def low_agreement(result: dict[str, Any], options) -> str | None:
    """The warning for a bundle written although int8 often disagrees with the float model
    (no --min-agreement to refuse it): the summary showed "top-1 agreement 66.7%" and nothing
    else, and the bundle looked as good as any."""
    a, n = result.get("agreement"), result.get("images") or 0
    if a is None or not n or options.min_agreement is not None or a >= LOW_AGREEMENT:
        return None
    return (f"int8 top-1 agrees with the float model on only {a:.1%} of {n} held-out images "
            f"(score error up to {result.get('max_abs_error', float('nan')):.2f}): quantization "
            "changed its answers; calibrate on more images like the training photos (100-500), "
            "check --input-range and --color, or pass --min-agreement to refuse such a bundle")
