"""``edgekit convert``: Keras model -> verified full-integer TFLite -> Edge TPU -> bundle.

Order of work (cheap checks first, so a typo never costs a TensorFlow import): options, paths,
labels and the output directory are validated; then the model is loaded once, images decoded
once, the model quantized, checked, verified on held-out images, and only then is the bundle
built in a temporary sibling directory (compiler output included) and renamed into place. Any
error leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from edgekit import __version__, limits
from edgekit.atomic import atomic_dir, check_destination, claim
from edgekit.edgetpu.stack import required_runtime
from edgekit.errors import EdgekitError
from edgekit.host import calibration, compiler
from edgekit.labels import labels_as_list, mismatch, read_labels
from edgekit.manifest import (
    COLOR_ORDERS,
    MANIFEST_NAME,
    RESIZE_MODES,
    InputSpec,
    Manifest,
    OutputSpec,
)

Progress = Optional[Callable[[str, int, int], None]]
Warn = Optional[Callable[[str], None]]


@dataclass
class ConvertResult:
    """Where the bundle went and what is in it. ``compiled``: an Edge TPU model was written;
    ``compiler_missing``: compilation was wanted but no compiler was found."""

    out_dir: Path
    manifest: Manifest
    compiled: bool
    compiler_missing: bool
    warnings: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "bundle": str(self.out_dir),
            "manifest_path": str(self.out_dir / MANIFEST_NAME),
            "compiled": self.compiled,
            "compiler_missing": self.compiler_missing,
            "warnings": list(self.warnings),
            "timings_s": dict(self.timings_s),
            "manifest": self.manifest.to_dict(),
        }


def convert(model_path: str | os.PathLike, out_dir: str | os.PathLike, **kwargs) -> ConvertResult:
    """Convert ``model_path`` into a bundle at ``out_dir`` (the options are those of
    :func:`_convert`). The output is claimed for the whole run (:func:`edgekit.atomic.claim`): a
    second conversion into the same folder fails at once, an unwritable folder is found before
    any work, and ``force`` replaces only a bundle or an empty folder."""
    if not Path(model_path).exists():
        raise EdgekitError(f"{model_path}: no such file or directory", "check the model path")
    with claim(out_dir, bool(kwargs.get("force", False))):
        return _convert(model_path, out_dir, **kwargs)


def _convert(
    model_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    calib: str | os.PathLike | None = None,
    synthetic_calib: bool = False,
    num_calib: int = 300,
    num_verify: int | None = None,
    group_pattern: str | None = None,
    input_size: tuple[int, int] | None = None,
    custom_objects: str | os.PathLike | None = None,
    input_range: tuple[float, float] = (0.0, 1.0),
    color: str = "rgb",
    resize: str = "stretch",
    io: str = "uint8",
    labels: str | os.PathLike | None = None,
    min_agreement: float | None = None,
    task: str | None = None,
    min_map: float | None = None,
    score_threshold: float = 0.5,
    iou: float = 0.45,
    max_detections: int = 100,
    compile: bool = True,
    compiler_path: str | os.PathLike | None = None,
    compile_timeout: float = 180.0,
    min_runtime: int | None = None,
    segments: int | None = None,
    force: bool = False,
    progress: Progress = None,
    warn: Warn = None,
) -> ConvertResult:
    """Convert ``model_path`` (.h5/.keras/SavedModel dir) into a bundle at ``out_dir``.

    Calibration uses up to ``num_calib`` images from ``calib`` (recursive) and holds out
    ``num_verify`` (default min(100, 20%)) for verification, keeping ``group_pattern`` groups on
    one side. Pixels map to floats as ``lo + p * (hi - lo) / 255`` with ``input_range``.
    ``min_agreement`` (0..1): below it the conversion fails and nothing is written.
    ``task``: ``classify`` or ``detect`` (default: ``detect`` for the zoo detector's head, see
    :mod:`edgekit.host.convert_detect`); for detectors ``min_map`` plays ``min_agreement``'s part
    and ``score_threshold``/``iou``/``max_detections`` go into the bundle's decoder params.
    ``progress(stage, done, total)`` reports ``loading images``, ``calibrating``, ``verifying``;
    ``warn(message)`` receives each warning as it happens (also kept in the result).
    Raises EdgekitError for anything the user can fix.
    """
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    warnings: list[str] = []

    def warning(msg: str) -> None:
        warnings.append(msg)
        if warn:
            warn(msg)

    model_path, out_dir = Path(model_path), Path(out_dir)
    _check_options(io, color, resize, input_range, num_calib, num_verify, min_agreement, segments)
    limits.finite("--compile-timeout", compile_timeout, 1e-3, limits.MAX_TIMEOUT_S)
    _check_detection_options(task, min_map, score_threshold, iou, max_detections)
    if not model_path.exists():
        raise EdgekitError(f"{model_path}: no such file or directory", "check the model path")
    if out_dir.exists() and not force:
        raise EdgekitError(f"{out_dir} already exists", "choose another output or pass --force")
    if out_dir.exists() and not out_dir.is_dir():
        raise EdgekitError(f"{out_dir} exists and is not a directory", "choose another output")
    check_destination(out_dir)  # before minutes of work, not after
    label_map = read_labels(labels) if labels is not None else None
    if calib is None and not synthetic_calib:
        raise EdgekitError(
            "no calibration images: full-integer quantization needs --calib DIR",
            "pass --calib DIR with 100-500 training-like images (or --synthetic-calib to force)",
        )
    if calib is not None and Path(calib).is_file():
        raise EdgekitError(
            f"--calib {calib}: a file, not a folder", "pass the folder that holds the images"
        )
    if calib is not None and not Path(calib).is_dir():
        raise EdgekitError(f"--calib {calib}: no such folder", "check the path")
    from edgekit.groups import compile_pattern, read_split, split_file_for

    compile_pattern(group_pattern)  # a bad regex is reported now, not after TensorFlow loads
    train_split = read_split(split_file_for(model_path)) if calib is not None else None
    if synthetic_calib and calib is None and min_agreement is not None:
        raise EdgekitError("--min-agreement needs real held-out images", "pass --calib DIR")
    compiler_exe = compiler.find_compiler(compiler_path) if compile else None
    compiler_missing = compile and compiler_exe is None

    from edgekit.host import keras_io, quantize, verify
    from edgekit.host.tfenv import load_tensorflow

    load_tensorflow()

    t = time.perf_counter()
    loaded = keras_io.load(model_path, input_size, custom_objects)
    timings["load_model"] = time.perf_counter() - t
    for fix in loaded.fixups:
        warning(f"legacy model: {fix}")
    from edgekit.host import convert_detect

    if task is None:
        task = "detect" if convert_detect.is_detector(loaded.model) else "classify"
    detect = task == "detect"
    if detect:
        if not convert_detect.is_detector(loaded.model):
            raise EdgekitError(
                f"{model_path}: --task detect, but the model does not end in edgekit's detector "
                "head (a 'detections' layer of shape (1, N, 4 + classes))",
                "convert other detectors with their own exporter; edgekit detect decodes them",
            )
        if min_agreement is not None:
            raise EdgekitError("--min-agreement is for classifiers", "use --min-map for detectors")
        strides = convert_detect.strides_for(loaded.model, loaded.input_shape[1:3])
    elif min_map is not None:
        raise EdgekitError("--min-map is for detectors", "use --min-agreement for classifiers")
    num_classes = int(loaded.output_shape[-1]) - (4 if detect else 0)
    label_list = None
    if label_map is not None:
        problem = mismatch(label_map, num_classes)
        if problem:
            raise EdgekitError(f"{labels}: {problem}", "give one label per model output")
        label_list = labels_as_list(label_map, num_classes)
    elif labels is None:
        label_list = _labels_beside(model_path, num_classes, warning)

    prep = calibration.Preprocessing(
        size=loaded.input_shape[1:3],
        channels=loaded.input_shape[3],
        color=color,
        resize="pad" if detect else resize,  # detectors: letterboxed (decoder params say how)
        range=(float(input_range[0]), float(input_range[1])),
    )
    t = time.perf_counter()
    if detect and calib is not None:
        imgs = convert_detect.load_images(
            calib, prep.size, num_calib, num_verify, group_pattern, progress
        )
    elif calib is not None:
        imgs = calibration.load_images(
            calib, prep, num_calib, num_verify, group_pattern, progress, train_split
        )
    else:
        imgs = calibration.synthetic_images(prep, num_calib)
    timings["load_images"] = time.perf_counter() - t
    for w in imgs.warnings:
        warning(w)

    t = time.perf_counter()
    data = quantize.quantize(loaded.model, lambda: imgs.representative(prep, progress), io)
    layer_names = [layer.name for layer in quantize._all_layers(loaded.model)]
    info, check = quantize.check_model(data, layer_names)
    timings["quantize"] = time.perf_counter() - t
    for problem in check["problems"]:
        warning(problem)
    prediction = quantize.predict_mapping(info)

    t = time.perf_counter()
    if detect:
        result = convert_detect.verify(
            data,
            loaded.batched,
            prep,
            imgs,
            prep.size,
            num_classes,
            strides,
            score_threshold,
            iou,
            label_list,
            progress,
        )
    else:
        classes = _verify_classes(imgs, label_list, num_classes)
        result = verify.verify(data, loaded.batched, prep.to_float(imgs.verify), classes, progress)
    timings["verify"] = time.perf_counter() - t
    result["held_out"] = True
    if detect:
        convert_detect.check_min_map(result, min_map)
    if min_agreement is not None:
        result["min_agreement"] = min_agreement
        if result["agreement"] is None:
            raise EdgekitError("--min-agreement: no held-out images to verify on", "add images")
        if result["agreement"] < min_agreement:
            raise EdgekitError(
                f"int8 top-1 agreement {result['agreement']:.3f} on {result['images']} held-out "
                f"images is below --min-agreement {min_agreement:g}; no bundle written",
                "use more/better calibration images, check --input-range/--color, or lower it",
            )

    stem = model_path.name if model_path.is_dir() else model_path.stem
    cpu_name = f"{stem}_int8.tflite"
    models: dict[str, str | None] = {"cpu": cpu_name, "edgetpu": None, "edgetpu_log": None}
    compile_info: dict[str, Any] = {
        "status": "skipped" if not compile else "compiler-missing",
        "int8_ops": check["ops"],
        "problems": check["problems"],
        "prediction": prediction.to_dict() if prediction is not None else None,
        "report": None,
    }
    if compiler_missing:
        warning(f"edgetpu_compiler not found; wrote the CPU bundle only ({compiler.INSTALL_HINT})")
    t = time.perf_counter()
    with atomic_dir(out_dir, force=force) as tmp:
        (tmp / cpu_name).write_bytes(data)
        if compiler_exe is not None:
            report = compiler.compile_model(
                compiler_exe, tmp / cpu_name, tmp, min_runtime, segments, compile_timeout
            )
            # What the Pi needs: a runtime at least this new (edgetpu_compiler 16 -> 14
            # unless -m 13); doctor and the runtime compare it with libedgetpu's.
            compile_info.update(
                status="compiled",
                report=report.to_dict(),
                compiler_version=report.version,
                min_runtime=min_runtime,
                required_runtime=required_runtime(report.version, min_runtime),
            )
            compile_info["comparison"] = _comparison(info, prediction, tmp, report)
            models["edgetpu"], models["edgetpu_log"] = report.output, report.log
            if report.ops_cpu:
                warning(
                    f"{report.ops_cpu} of {report.ops_total} ops will run on the CPU: "
                    + "; ".join(f"{op}: {', '.join(r)}" for op, r in report.cpu_reasons.items())
                )
        if label_list is not None:
            (tmp / "labels.txt").write_text("\n".join(label_list) + "\n", encoding="utf-8")
        timings["compile"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t_start
        manifest = _manifest(
            stem,
            info,
            prep,
            models,
            label_list,
            loaded,
            imgs,
            result,
            compile_info,
            io,
            compile_info["report"],
            timings,
            convert_detect.detection_block(strides, score_threshold, iou, max_detections)
            if detect
            else None,
        )
        (tmp / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
    timings = {k: round(v, 3) for k, v in timings.items()}
    return ConvertResult(
        out_dir, manifest, models["edgetpu"] is not None, compiler_missing, warnings, timings
    )


def _comparison(info, prediction, out: Path, report) -> dict[str, Any] | None:
    """What the compiler did beside the prediction (edgekit.edgetpu.compare), or None."""
    if prediction is None:
        return None
    try:
        from edgekit.edgetpu.compare import compare
        from edgekit.tflite import read_model

        twin = read_model(out / report.output) if report.output else None
        log_text = (out / report.log).read_text(errors="replace") if report.log else None
        c = compare(info, prediction, twin if twin and twin.is_edgetpu_compiled else None, log_text)
    except Exception:  # advice: never fail a conversion over it
        return None
    if c["memory"] is None and report.on_chip_bytes is not None:
        c["memory"] = {
            "on_chip_bytes": report.on_chip_bytes,
            "off_chip_bytes": report.off_chip_bytes,
            "on_chip_remaining_bytes": report.on_chip_remaining_bytes,
            "predicted_on_chip_bytes": prediction.memory.get("on_chip_bytes"),
            "predicted_off_chip_bytes": prediction.memory.get("off_chip_bytes"),
        }
    return c


def _check_options(io, color, resize, input_range, num_calib, num_verify, min_agreement, segments):
    if io not in ("uint8", "int8"):
        raise EdgekitError(f"--io {io!r}: unknown type", "use uint8 or int8")
    if color not in COLOR_ORDERS:
        raise EdgekitError(f"--color {color!r}: unknown order", "use rgb or bgr")
    if resize not in RESIZE_MODES:
        raise EdgekitError(f"--resize {resize!r}: unknown mode", "use stretch, crop or pad")
    lo, hi = (limits.finite("--input-range", v, -1e6, 1e6) for v in input_range)
    if not lo < hi:
        raise EdgekitError(f"--input-range {lo:g},{hi:g}: LO must be below HI", "e.g. 0,1 or -1,1")
    if num_calib < 1:
        raise EdgekitError("--num-calib must be at least 1", "100-500 is typical")
    if num_verify is not None and num_verify < 0:
        raise EdgekitError("--num-verify must be 0 or more")
    if min_agreement is not None:
        limits.finite("--min-agreement", min_agreement, 0.0, 1.0)
    if segments is not None and segments < 1:
        raise EdgekitError("--segments must be at least 1")


def _check_detection_options(task, min_map, score_threshold, iou, max_detections):
    if task not in (None, "classify", "detect"):
        raise EdgekitError(f"--task {task!r}: unknown task", "use classify or detect")
    for name, v in (("--min-map", min_map), ("--score-threshold", score_threshold), ("--iou", iou)):
        if v is not None and not (math.isfinite(v) and 0.0 <= v <= 1.0):
            raise EdgekitError(f"{name} {v:g}: must be between 0 and 1")
    if not 1 <= max_detections <= 10_000:
        raise EdgekitError(f"--max-detections {max_detections}: must be 1..10000")


def _verify_classes(imgs, label_list, num_classes):
    """True class index per held-out image when the calibration folder is class-per-folder and
    its folder names match the labels (or, without labels, number the model's classes in the
    alphabetical folder order Keras' image_dataset_from_directory uses)."""
    names = imgs.class_names
    if names is None or imgs.verify_classes is None or len(names) != num_classes:
        return None
    if label_list is None:
        return imgs.verify_classes
    lower = [x.strip().lower() for x in label_list]
    if sorted(n.lower() for n in names) != sorted(lower):
        return None
    remap = [lower.index(n.lower()) for n in names]
    return np.asarray([remap[c] for c in imgs.verify_classes], dtype=np.int64)


def _labels_beside(model_path: Path, num_classes: int, warning) -> list[str] | None:
    """``labels.txt`` next to the model (what ``edgekit train`` writes), when --labels is not
    given and it has one label per class; otherwise None (a mismatch is only a warning here,
    since the user did not ask for that file)."""
    path = (model_path if model_path.is_dir() else model_path.parent) / "labels.txt"
    if not path.is_file():
        return None
    try:
        found = read_labels(path)
    except EdgekitError as e:
        warning(f"ignoring {path}: {e}")
        return None
    problem = mismatch(found, num_classes)
    if problem:
        warning(f"ignoring {path}: {problem}")
        return None
    warning(f"using labels from {path} (pass --labels to choose another file)")
    return labels_as_list(found, num_classes)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(f.relative_to(path).as_posix().encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _tool_versions(compiler_version):
    import keras
    import tensorflow as tf

    return {
        "edgekit": __version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "edgetpu_compiler": compiler_version,
    }


def _manifest(
    stem,
    info,
    prep,
    models,
    labels,
    loaded,
    imgs,
    verification,
    compile_info,
    io,
    report,
    timings,
    detection=None,
) -> Manifest:
    from edgekit.host.quantize import _tensor_spec

    i, o = _tensor_spec(info.inputs[0]), _tensor_spec(info.outputs[0])
    calib = dict(imgs.stats)
    calib.update(io=io, color=prep.color, range=list(prep.range))
    calib.setdefault("resize", prep.resize)
    task = {} if detection is None else {"task": "detect", "detection": detection}
    return Manifest(
        name=stem,
        input=InputSpec(
            shape=tuple(i["shape"]),
            dtype=i["dtype"],
            scale=i["scale"],
            zero_point=i["zero_point"],
            color=prep.color,
            range=prep.range,
            resize=prep.resize,
        ),
        output=OutputSpec(
            shape=tuple(o["shape"]), dtype=o["dtype"], scale=o["scale"], zero_point=o["zero_point"]
        ),
        models=models,
        labels=tuple(labels) if labels is not None else None,
        source={
            "path": str(loaded.path.resolve()),
            "format": loaded.kind,
            "sha256": _sha256(loaded.path),
            "fixups": list(loaded.fixups),
        },
        tools=_tool_versions(report["version"] if report else None),
        calibration=calib,
        verification=verification,
        compile=compile_info,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **task,
    )
