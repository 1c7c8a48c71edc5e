"""The options of ``edgekit convert`` as one validated, immutable object.

:class:`ConvertOptions` is built from keyword arguments (the library API and the CLI pass the
same names); an unknown name, a wrong choice or an out-of-range number is one EdgekitError
naming the option, raised before any file is read or TensorFlow is imported. ``None`` for
``input_range`` and ``resize`` means "decide": from the model where it says so, by measurement
on a labelled ``--calib`` folder (:mod:`edgekit.host.input_range`), else the defaults (0..1,
stretch).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Optional, Union

from edgekit import limits
from edgekit.errors import EdgekitError
from edgekit.manifest import COLOR_ORDERS, RESIZE_MODES

PathLike = Union[str, os.PathLike]
TASK_NAMES = ("classify", "detect")


@dataclass(frozen=True)
class ConvertOptions:
    """Everything ``convert`` can be told. Units: images (counts), seconds (timeout), pixels
    (``input_size`` as (height, width)), floats that pixel 0 and 255 map to (``input_range``)."""

    calib: Optional[Path] = None
    synthetic_calib: bool = False
    num_calib: int = 300
    num_verify: Optional[int] = None
    group_pattern: Optional[str] = None
    input_size: Optional[tuple[int, int]] = None
    custom_objects: Optional[PathLike] = None  # a .py file defining the model's custom layers
    input_range: Optional[tuple[float, float]] = None  # None: decided (see the module docstring)
    keep_input_range: bool = False  # keep an explicit range the measurement says is wrong
    color: str = "rgb"
    resize: Optional[str] = None  # None: the model's hint, else stretch
    io: str = "uint8"
    labels: Optional[Path] = None
    min_agreement: Optional[float] = None
    task: Optional[str] = None  # None: detect for edgekit's detector head, else classify
    min_map: Optional[float] = None
    score_threshold: float = 0.5
    iou: float = 0.45
    max_detections: int = 100
    anchors: Optional[Path] = None  # darknet anchors file for YOLOv3 grid heads
    compile: bool = True
    compiler_path: Optional[PathLike] = None
    compile_timeout: float = 180.0
    min_runtime: Optional[int] = None
    segments: Optional[int] = None
    force: bool = False
    # A cascade (host/convert_cascade.py): the crop classifier co-compiled and carried along.
    classify: Optional[Path] = None  # a classifier bundle, int8 .tflite or Coral model
    classify_labels: Optional[Path] = None  # its label file (a bare .tflite's)
    crop_labels: Optional[tuple[str, ...]] = None  # detector labels whose crops are classified
    classify_top_k: Optional[int] = None  # classes kept per crop (None: the runtime's 3)

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> ConvertOptions:
        """Options from keyword arguments; an unknown name is refused (a typo never silently
        falls back to a default)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise EdgekitError(
                f"unknown convert option(s): {', '.join(unknown)}",
                f"known options: {', '.join(sorted(known))}",
            )
        return cls(**kwargs)

    def __post_init__(self) -> None:
        # Normalise types first (paths, float pairs), then check every value.
        for name in ("calib", "labels", "classify", "classify_labels", "anchors"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        if self.input_range is not None:
            lo, hi = (limits.finite("--input-range", v, -1e6, 1e6) for v in self.input_range)
            if not lo < hi:
                raise EdgekitError(
                    f"--input-range {lo:g},{hi:g}: LO must be below HI", "e.g. 0,1 or -1,1"
                )
            object.__setattr__(self, "input_range", (float(lo), float(hi)))
        if self.input_size is not None:
            object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))
        self._check_choices()
        self._check_numbers()
        self._check_cascade()

    def _check_cascade(self) -> None:
        if self.crop_labels is not None:
            names = tuple(str(n).strip() for n in self.crop_labels if str(n).strip())
            if not names:
                raise EdgekitError("--crop-labels: give one or more detector labels, e.g. bird",
                                  exit_code=2)  # fmt: skip
            object.__setattr__(self, "crop_labels", names)
        if self.classify is None:
            given = [n for n, v in (("--classify-labels", self.classify_labels),
                                    ("--crop-labels", self.crop_labels),
                                    ("--classify-top-k", self.classify_top_k)) if v is not None]
            if given:
                raise EdgekitError(f"{given[0]} needs --classify CLASSIFIER", exit_code=2)
            return
        k = self.classify_top_k
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 1000):
            raise EdgekitError(f"--classify-top-k {k!r}: must be an integer in 1..1000",
                               exit_code=2)  # fmt: skip
        if self.segments is not None:
            raise EdgekitError("--segments and --classify: a co-compiled cascade is not split "
                               "into segments", "drop --segments", exit_code=2)  # fmt: skip
        if self.task == "classify":
            raise EdgekitError("--classify needs a detector: --task classify was given",
                               "convert the detector with --task detect", exit_code=2)  # fmt: skip

    def _check_choices(self) -> None:
        if self.io not in ("uint8", "int8"):
            raise EdgekitError(f"--io {self.io!r}: unknown type", "use uint8 or int8")
        if self.color not in COLOR_ORDERS:
            raise EdgekitError(f"--color {self.color!r}: unknown order", "use rgb or bgr")
        if self.resize is not None and self.resize not in RESIZE_MODES:
            raise EdgekitError(
                f"--resize {self.resize!r}: unknown mode", "use stretch, crop or pad"
            )
        if self.task not in (None, *TASK_NAMES):
            raise EdgekitError(f"--task {self.task!r}: unknown task", "use classify or detect")

    def _check_numbers(self) -> None:
        if self.num_calib < 1:
            raise EdgekitError("--num-calib must be at least 1", "100-500 is typical")
        if self.num_verify is not None and self.num_verify < 0:
            raise EdgekitError("--num-verify must be 0 or more")
        if self.min_agreement is not None:
            limits.finite("--min-agreement", self.min_agreement, 0.0, 1.0)
        if self.segments is not None and self.segments < 1:
            raise EdgekitError("--segments must be at least 1")
        limits.finite("--compile-timeout", self.compile_timeout, 1e-3, limits.MAX_TIMEOUT_S)
        for name, v in (
            ("--min-map", self.min_map),
            ("--score-threshold", self.score_threshold),
            ("--iou", self.iou),
        ):
            if v is not None and not (math.isfinite(v) and 0.0 <= v <= 1.0):
                raise EdgekitError(f"{name} {v:g}: must be between 0 and 1")
        if not 1 <= self.max_detections <= 10_000:
            raise EdgekitError(f"--max-detections {self.max_detections}: must be 1..10000")

    def check_inputs(self) -> None:
        """Checks of the files the options name (cheap: no TensorFlow, no image decoded)."""
        if self.calib is None and not self.synthetic_calib:
            raise EdgekitError(
                "no calibration images: full-integer quantization needs --calib DIR",
                "pass --calib DIR with 100-500 training-like images (or --synthetic-calib to "
                "force)",
            )
        if self.calib is not None and self.calib.is_file():
            raise EdgekitError(
                f"--calib {self.calib}: a file, not a folder",
                "pass the folder that holds the images",
            )
        if self.calib is not None and not self.calib.is_dir():
            raise EdgekitError(f"--calib {self.calib}: no such folder", "check the path")
        if self.synthetic_calib and self.calib is None and self.min_agreement is not None:
            raise EdgekitError("--min-agreement needs real held-out images", "pass --calib DIR")
        if self.anchors is not None:  # a bad anchors file is reported before TensorFlow
            from edgekit.detect.yolov3 import read_anchors

            read_anchors(self.anchors)
        from edgekit.groups import compile_pattern

        compile_pattern(self.group_pattern)  # a bad regex is reported now, not after TensorFlow
