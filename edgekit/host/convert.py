"""``edgekit convert``: Keras model -> verified full-integer TFLite -> Edge TPU -> bundle.

A short sequence of stages, each a small function with a frozen result
(:mod:`edgekit.host.convert_stages`, :mod:`edgekit.host.convert_bundle`)::

    options (ConvertOptions) -> load -> preprocessing -> calibration data -> input range
        -> quantize -> verify -> compile -> bundle

The task-specific parts (images, verification, manifest fields) sit behind the task layer
(:mod:`edgekit.host.convert_task`: classification and detection). Cheap checks come first, so a
typo never costs a TensorFlow import: options, paths, labels and the output directory are
validated; then the model is loaded once, images decoded once, the input range decided, the
model quantized, checked, verified on held-out images, and only then is the bundle built in a
temporary sibling directory (compiler output included) and renamed into place. Any error leaves
nothing behind.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from edgekit.atomic import check_destination, claim
from edgekit.errors import EdgekitError
from edgekit.host import compiler
from edgekit.host.convert_options import ConvertOptions
from edgekit.labels import read_labels
from edgekit.manifest import MANIFEST_NAME, Manifest

Progress = Optional[Callable[[str, int, int], None]]
Warn = Optional[Callable[[str], None]]


@dataclass
class ConvertResult:
    """Where the bundle went and what is in it. ``compiled``: an Edge TPU model was written;
    ``compiler_missing``: compilation was wanted but no compiler was found; ``input_range``:
    the range decision (range, source, reason, float accuracy per range)."""

    out_dir: Path
    manifest: Manifest
    compiled: bool
    compiler_missing: bool
    warnings: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    input_range: dict[str, Any] = field(default_factory=dict)
    cascade: dict[str, Any] | None = None  # convert --classify: host/convert_cascade.summary

    def to_dict(self) -> dict[str, Any]:
        return {
            **({"cascade": self.cascade} if self.cascade else {}),
            "bundle": str(self.out_dir),
            "manifest_path": str(self.out_dir / MANIFEST_NAME),
            "compiled": self.compiled,
            "compiler_missing": self.compiler_missing,
            "warnings": list(self.warnings),
            "timings_s": dict(self.timings_s),
            "input_range": dict(self.input_range),
            "manifest": self.manifest.to_dict(),
        }


def convert(model_path: str | os.PathLike, out_dir: str | os.PathLike, **kwargs) -> ConvertResult:
    """Convert ``model_path`` (.h5/.keras/SavedModel dir) into a bundle at ``out_dir``.

    ``kwargs``: the fields of :class:`edgekit.host.convert_options.ConvertOptions` (an unknown
    one is refused), plus ``progress(stage, done, total)`` (``loading images``,
    ``calibrating``, ``verifying``) and ``warn(message)`` (each warning as it happens; also
    kept in the result). The output is claimed for the whole run
    (:func:`edgekit.atomic.claim`): a second conversion into the same folder fails at once, an
    unwritable folder is found before any work, and ``force`` replaces only a bundle or an
    empty folder. Raises EdgekitError for anything the user can fix.
    """
    progress: Progress = kwargs.pop("progress", None)
    warn: Warn = kwargs.pop("warn", None)
    opts = ConvertOptions.from_kwargs(**kwargs)
    if not Path(model_path).exists():
        raise EdgekitError(f"{model_path}: no such file or directory", "check the model path")
    with claim(out_dir, opts.force):
        return run(Path(model_path), Path(out_dir), opts, progress, warn)


def run(
    model_path: Path,
    out_dir: Path,
    opts: ConvertOptions,
    progress: Progress = None,
    warn: Warn = None,
) -> ConvertResult:
    """The pipeline (see the module docstring), without the output claim."""
    from edgekit.host import convert_bundle as bundle
    from edgekit.host import convert_stages as st

    t_start = time.perf_counter()
    warnings: list[str] = []

    def warning(msg: str) -> None:
        warnings.append(msg)
        if warn:
            warn(msg)

    if out_dir.exists() and not opts.force:
        raise EdgekitError(f"{out_dir} already exists", "choose another output or pass --force")
    if out_dir.exists() and not out_dir.is_dir():
        raise EdgekitError(f"{out_dir} exists and is not a directory", "choose another output")
    check_destination(out_dir)  # before minutes of work, not after
    label_map = read_labels(opts.labels) if opts.labels is not None else None
    from edgekit.host.loaders.dispatch import precheck

    precheck(model_path)  # a .tflite is refused before "no --calib"
    opts.check_inputs()
    from edgekit.groups import read_split, split_file_for

    train_split = read_split(split_file_for(model_path)) if opts.calib is not None else None
    from edgekit.host import convert_cascade as cc

    crop_classifier = cc.classifier_stage(opts)  # --classify: refused now, not after minutes
    compiler_exe = compiler.find_compiler(opts.compiler_path) if opts.compile else None
    compiler_missing = opts.compile and compiler_exe is None

    from edgekit.host.tfenv import load_tensorflow

    load_tensorflow()
    model = st.load_stage(model_path, opts, label_map, warning)
    cc.check_detector(crop_classifier, opts, model, warning)
    framing = st.preprocessing_stage(model_path, opts, model, warning)
    calib = st.calibration_stage(opts, model, framing, train_split, progress, warning)
    prepared = st.range_stage(opts, model, framing, calib, warning)
    quantized = st.quantize_stage(opts, model, prepared, calib, progress, warning)
    verified = st.verify_stage(opts, model, prepared, calib, quantized, progress)
    from edgekit.host.convert_classify import low_agreement

    if low := low_agreement(verified.result, opts):
        warning(low)
    stages = st.Stages(model, framing, calib, prepared, quantized, verified)
    timings = {
        "load_model": model.seconds,
        "load_images": calib.seconds,
        "input_range": prepared.seconds,
        "quantize": quantized.seconds,
        "verify": verified.seconds,
    }
    if compiler_missing:
        warning(f"edgetpu_compiler not found; wrote the CPU bundle only ({compiler.INSTALL_HINT})")
    stem = model_path.name if model_path.is_dir() else model_path.stem
    out = bundle.write_bundle(
        out_dir, stem, stages, opts, compiler_exe, warning, timings, t_start, crop_classifier
    )
    return ConvertResult(
        out_dir,
        out.manifest,
        out.compiled.compiled,
        compiler_missing,
        warnings,
        {k: round(v, 3) for k, v in timings.items()},
        prepared.decision.to_dict(),
        cc.summary(out_dir) if crop_classifier is not None else None,
    )
