"""The last stages of ``edgekit convert``: compile, then the bundle and its manifest.

Both run inside :func:`edgekit.atomic.atomic_dir`'s temporary sibling folder: the int8 model is
written, compiled there (compiler output included), labels and ``edgekit.json`` added, and the
folder renamed into place only when all of it worked. :func:`build_manifest` is the one place
that turns the stages' results into the manifest (and so into ``--json``): what a later stage
wants to report goes there.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from edgekit import __version__
from edgekit.atomic import atomic_dir
from edgekit.edgetpu.stack import required_runtime
from edgekit.host import compiler
from edgekit.host.convert_stages import Stages
from edgekit.manifest import MANIFEST_NAME, InputSpec, Manifest, OutputSpec


@dataclass(frozen=True)
class Compiled:
    """``models``: file names of ``cpu``/``edgetpu``/``edgetpu_log`` (None when absent);
    ``info``: the manifest's ``compile`` block (status, report, prediction, comparison)."""

    models: dict
    info: dict
    seconds: float

    @property
    def compiled(self) -> bool:
        return self.models.get("edgetpu") is not None


@dataclass(frozen=True)
class Bundle:
    manifest: Manifest
    compiled: Compiled


def compile_stage(tmp: Path, stem: str, q, opts, compiler_exe, warning,
                  compile_fn=None) -> Compiled:  # fmt: skip
    """Write ``<stem>_int8.tflite`` into ``tmp`` and compile it there when a compiler is given.
    ``compile_fn(exe, model, out_dir, opts) -> CompileReport`` replaces the single-model call
    (a cascade co-compiles: :mod:`edgekit.host.convert_cascade`)."""
    t = time.perf_counter()
    cpu_name = f"{stem}_int8.tflite"
    models: dict[str, Optional[str]] = {"cpu": cpu_name, "edgetpu": None, "edgetpu_log": None}
    info: dict[str, Any] = {
        "status": "skipped" if not opts.compile else "compiler-missing",
        "int8_ops": q.check["ops"],
        "problems": q.check["problems"],
        "prediction": q.prediction.to_dict() if q.prediction is not None else None,
        "report": None,
    }
    (tmp / cpu_name).write_bytes(q.data)
    info["latency"] = _latency(q.info, q.prediction, tmp, None)
    if compiler_exe is not None:
        report = (compile_fn or _compile_alone)(compiler_exe, tmp / cpu_name, tmp, opts)
        # What the Pi needs: a runtime at least this new (edgetpu_compiler 16 -> 14
        # unless -m 13); doctor and the runtime compare it with libedgetpu's.
        info.update(
            status="compiled",
            report=report.to_dict(),
            compiler_version=report.version,
            min_runtime=opts.min_runtime,
            required_runtime=required_runtime(report.version, opts.min_runtime),
        )
        info["comparison"] = _comparison(q.info, q.prediction, tmp, report)
        models["edgetpu"], models["edgetpu_log"] = report.output, report.log
        info["latency"] = _latency(q.info, q.prediction, tmp, report.output)
        if report.ops_cpu:
            warning(
                f"{report.ops_cpu} of {report.ops_total} ops will run on the CPU: "
                + "; ".join(f"{op}: {', '.join(r)}" for op, r in report.cpu_reasons.items())
            )
    return Compiled(models, info, time.perf_counter() - t)


def _compile_alone(compiler_exe, model: Path, out: Path, opts):
    return compiler.compile_model(compiler_exe, model, out, opts.min_runtime, opts.segments,
                                  opts.compile_timeout)  # fmt: skip


def write_bundle(out_dir: Path, stem: str, stages: Stages, opts, compiler_exe, warning,
                 timings: dict, t_start: float, cascade=None) -> Bundle:  # fmt: skip
    """Compile and write the whole bundle atomically from the earlier stages' results.
    ``cascade``: the crop classifier to carry and co-compile
    (:class:`edgekit.host.convert_cascade.CropClassifier`), or None."""
    labels = stages.model.labels
    block = None
    with atomic_dir(out_dir, force=opts.force) as tmp:
        if cascade is not None:
            from edgekit.host.convert_cascade import cascade_compile_stage

            compiled, block = cascade_compile_stage(tmp, stem, stages.quantized, cascade, opts,
                                                    compiler_exe, warning)  # fmt: skip
        else:
            compiled = compile_stage(tmp, stem, stages.quantized, opts, compiler_exe, warning)
        if labels is not None:
            (tmp / "labels.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
        timings["compile"] = compiled.seconds
        timings["total"] = time.perf_counter() - t_start
        manifest = build_manifest(stem, stages, compiled, opts, timings, block)
        (tmp / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
    return Bundle(manifest, compiled)


def build_manifest(stem: str, stages: Stages, compiled: Compiled, opts, timings: dict,
                   cascade: dict | None = None) -> Manifest:  # fmt: skip
    """The bundle's ``edgekit.json`` from the stages' results (``cascade``: the block naming
    the carried crop classifier, see :mod:`edgekit.host.convert_cascade`)."""
    from edgekit.host.quantize import _tensor_spec

    model, prepared = stages.model, stages.prepared
    q, imgs = stages.quantized, stages.calibration.images
    prep, loaded = prepared.prep, model.loaded
    i, o = _tensor_spec(q.info.inputs[0]), _tensor_spec(q.info.outputs[0])
    calib = dict(imgs.stats)
    calib.update(io=opts.io, color=prep.color, range=list(prep.range))
    calib.setdefault("resize", prep.resize)
    calib["input_range"] = prepared.decision.to_dict()
    report = compiled.info["report"]
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
        models=dict(compiled.models),
        labels=model.labels,
        source={
            "path": str(loaded.path.resolve()),
            "format": loaded.kind,
            "model_format": getattr(loaded, "format", None),
            "loader": getattr(loaded, "loader", None),
            "sha256": _sha256(loaded.path),
            "fixups": list(loaded.fixups),
            "labels": model.labels_from,
        },
        tools=_tool_versions(report["version"] if report else None),
        calibration=calib,
        verification=stages.verified.result,
        compile=compiled.info,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        cascade=cascade,
        **model.task.manifest_fields(opts),
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


def _latency(info, prediction, out: Path, compiled_name) -> dict[str, Any] | None:
    """Predicted ms per inference (edgekit.edgetpu.latency): from the compiled model (placed as
    the compiler did) when there is one, else from the int8 model's predicted mapping. None
    when nothing can be said; advice, never a reason to fail a conversion."""
    try:
        from edgekit.edgetpu.latency import latency_of_model
        from edgekit.tflite import read_model

        twin = read_model(out / compiled_name) if compiled_name else None
        if twin is not None and twin.is_edgetpu_compiled:
            return latency_of_model(twin, cpu_twin=info)
        return latency_of_model(info, prediction)
    except Exception:  # advice: never fail a conversion over it
        return None


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
