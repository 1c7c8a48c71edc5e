"""``edgekit inspect``: what is inside a model file, and what will run on the Edge TPU.

``inspect_model(path) -> dict`` (JSON-ready) and ``format_report(dict) -> str`` (aligned text,
:mod:`edgekit.inspect_text`).

* ``.tflite``: op counts, tensors (dtype, shape, quantization), size, inputs/outputs, parameters
  and multiply-adds computed from the tensor shapes, and the Edge TPU mapping prediction
  (:mod:`edgekit.edgetpu.mapping`), gathered by :mod:`edgekit.inspect_tflite`. For an
  ``_edgetpu.tflite`` it says which ops run inside the Edge TPU custom op and which were left on
  the CPU; when the CPU model it was compiled from sits beside it (same name without
  ``_edgetpu``), the difference of op counts tells which ops went into the TPU.
* Keras (``.h5``, ``.hdf5``, ``.keras``, SavedModel directory): per-layer output shape,
  parameters and multiply-adds from :func:`edgekit.host.keras_stats.inspect_keras`; TensorFlow
  is imported only in that branch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from edgekit.edgetpu.mapping import predict
from edgekit.errors import EdgekitError
from edgekit.inspect_text import format_mapping, format_report  # noqa: F401  (re-exported)
from edgekit.inspect_tflite import (  # noqa: F401  (re-exported: the .tflite report's pieces)
    COMPILER_LOG_LIMIT,
    count_macs,
    count_params,
    inspect_tflite,
    tensor_dict,
)
from edgekit.manifest import is_bundle, load_bundle
from edgekit.safeio import open_regular
from edgekit.tflite import ModelInfo, read_model

KERAS_SUFFIXES = (".h5", ".hdf5", ".keras")
_HINT = "pass a bundle, a .tflite, .h5 or .keras file, or a SavedModel directory"


def inspect_model(
    path: str | os.PathLike,
    compiled: str | os.PathLike | None = None,
    log: str | os.PathLike | None = None,
    custom_objects: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Describe a model file. Raises EdgekitError for a missing file or an unknown format.

    ``compiled`` (the model's ``_edgetpu.tflite``) and/or ``log`` (the compiler's log or stdout)
    add ``report["comparison"]``: what the compiler did beside the prediction (a CPU .tflite).
    """
    p = Path(path)
    if compiled is not None or log is not None:
        return _inspect_against_compiler(p, compiled, log)
    kind = model_format(p)
    if kind == "bundle":  # a bundle from `edgekit convert`: its compiled model if any, else int8
        bundle = load_bundle(p)
        report = inspect_model(bundle.edgetpu_model or bundle.cpu_model)
        report.update(_task(read_model(bundle.cpu_model), bundle.manifest))
        if bundle.manifest.cascade:  # convert --classify: the crop classifier it carries
            from edgekit.detect.cascade_bundle import describe

            report["cascade"] = describe(bundle)
        return report
    if kind == "keras":
        return _inspect_keras(p, custom_objects)
    info = read_model(p)
    return {**inspect_tflite(info), **_task(info)}


def model_format(path: str | os.PathLike) -> str:
    """``bundle``, ``keras`` (a file or SavedModel directory) or ``tflite``, by what ``path``
    holds (8 bytes read, nothing loaded); EdgekitError for a missing path or another format."""
    p = Path(path)
    if not p.exists():
        raise EdgekitError(f"{p}: no such file or directory", "check the path")
    if is_bundle(p):
        return "bundle"
    if p.is_dir():
        if not (p / "saved_model.pb").exists():
            raise EdgekitError(f"{p}: a directory but not a SavedModel (no saved_model.pb)", _HINT)
        return "keras"
    if p.suffix.lower() in KERAS_SUFFIXES:
        return "keras"
    with open_regular(p, "model") as f:
        head = f.read(8)
    if head == b"\x89HDF\r\n\x1a\n" or head[:4] == b"PK\x03\x04":  # Keras under any name
        return "keras"
    if p.suffix.lower() == ".tflite" or head[4:8] == b"TFL3":
        return "tflite"
    raise EdgekitError(f"{p}: unknown model format '{p.suffix or p.name}'", _HINT)


def _task(info: ModelInfo, manifest=None) -> dict[str, Any]:
    """``task`` (classify/detect) and, for a detector, its head (edgekit.tasks.describe_task)."""
    from edgekit.tasks import describe_task

    return describe_task(info, manifest)


def _inspect_against_compiler(p: Path, compiled, log) -> dict[str, Any]:
    from edgekit.edgetpu.compare import compare

    info = read_model(_regular(p, "MODEL"))
    if info.is_edgetpu_compiled:
        raise EdgekitError(
            f"{p}: already compiled for the Edge TPU",
            "pass the CPU model (the compiler's input) as MODEL and this one as --compiled",
        )
    twin = None
    if compiled is not None:
        twin = read_model(_regular(Path(compiled), "--compiled"))
        if not twin.is_edgetpu_compiled:
            raise EdgekitError(
                f"--compiled {compiled}: not compiled for the Edge TPU (no edgetpu-custom-op)",
                "pass the *_edgetpu.tflite that edgetpu_compiler wrote",
            )
        # The compiler keeps tensor names: a twin of MODEL has MODEL's input and output names.
        names = {t.name for t in info.main.tensors}
        if not all(t.name in names for t in (*twin.inputs, *twin.outputs)):
            raise EdgekitError(
                f"--compiled {compiled} was not compiled from {p.name} (its input/output tensor "
                "names are not in it)",
                "pass the CPU model that edgetpu_compiler was given and the model it wrote",
            )
    log_text = None
    if log is not None:
        lp = _regular(Path(log), "--log")
        if lp.stat().st_size > COMPILER_LOG_LIMIT:
            raise EdgekitError(f"--log {log}: {lp.stat().st_size:,} bytes is not a compiler log",
                               "pass the compiler's .log file or its saved stdout")  # fmt: skip
        log_text = lp.read_text(errors="replace")
        if "Edge TPU Compiler" not in log_text and "Operator" not in log_text:
            raise EdgekitError(
                f"--log {log}: not an edgetpu_compiler log (no version line, no operator table)",
                "pass the compiler's .log file or its stdout saved with -s",
            )
    report = inspect_tflite(info)
    prediction = predict(info)
    report["comparison"] = compare(info, prediction, twin, log_text)
    return report


def _regular(p: Path, what: str) -> Path:
    """``p`` if it is an existing regular file (never a FIFO or a directory)."""
    import stat

    try:
        mode = os.stat(p).st_mode
    except OSError:
        raise EdgekitError(f"{what} {p}: no such file", "check the path") from None
    if not stat.S_ISREG(mode):
        raise EdgekitError(f"{what} {p}: not a regular file", "pass a file")
    return p


def _inspect_keras(p: Path, custom_objects=None) -> dict[str, Any]:
    from edgekit.host.keras_stats import inspect_keras  # lazy: loads TensorFlow

    stats = inspect_keras(p, custom_objects)
    image, notes = _image_input(stats.get("input_shapes") or [])
    return {"model": str(p), "format": "keras", **stats, "image_model": image, "notes": notes,
            "edgetpu": _keras_latency(stats)}  # fmt: skip


def _image_input(shapes: list) -> tuple[bool, list[str]]:
    """(one NHWC image input with 1 or 3 channels?, notes saying what follows if not)."""
    if len(shapes) == 1 and len(shapes[0]) == 3 and shapes[0][2] in (1, 3):
        return True, []
    given = " and ".join(str(list(s)) for s in shapes) or "none"
    return False, [
        f"not an image model: input {given} is not one (height, width, 1 or 3 channels) "
        "image, so `edgekit convert` (it calibrates and verifies on images) refuses it",
        "the Edge TPU latency below is for its layers as designed (each assumed mapped); an "
        "int8 .tflite of it, converted elsewhere, gets the op-by-op mapping from `inspect`",
    ]


def _keras_latency(stats: dict[str, Any]) -> dict[str, Any]:
    """Predicted Edge TPU latency of a Keras design from its layer shapes (every layer assumed
    mapped; see :mod:`edgekit.edgetpu.latency`)."""
    from edgekit.edgetpu.latency import latency_of_keras_stats

    try:
        lat = latency_of_keras_stats(stats)
    except (ValueError, OverflowError, ZeroDivisionError, TypeError, KeyError):
        return {"latency_ms": None,
                "latency": {"error": "no latency prediction for these layer shapes"}}  # fmt: skip
    return {"latency_ms": lat.pop("latency_ms"), "latency": lat}
