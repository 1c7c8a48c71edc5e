"""``edgekit convert DETECTOR --classify CLASSIFIER``: the cascade as one bundle.

Three small stages around convert's own (:mod:`edgekit.host.convert`):

``classifier_stage`` (before TensorFlow is imported: a wrong classifier costs no quantization)
    -> :class:`CropClassifier`: the classifier's int8 model (a bundle's CPU model, an int8
    ``.tflite``, or the CPU twin beside a Coral ``_edgetpu.tflite``) and the ``edgekit.json`` it
    will carry (a bare model's is built from its input tensor, as
    :class:`edgekit.classify.Classifier` reads a bare model). Refused in one line: a detector,
    a model that is not int8, a compiled model without its CPU twin, a non-image input.
``check_detector`` (after the load stage) -> the model converts as a detector, and every
    ``--crop-labels`` name is one of its labels.
``cascade_compile_stage`` (in convert's atomic temporary folder, instead of the single
    compile) -> the classifier written as the sub-bundle ``classifier/``, then ONE
    ``edgetpu_compiler`` call for both (:func:`edgekit.host.cocompile.compile_together`),
    detector first: it runs on every frame, the classifier only on frames with crops, and the
    compiler allots the on-chip cache in command-line order (docs/DESIGN.md "Co-compilation").
    Each manifest records its partner (``compile.cocompiled_with``) and the parameter caching
    read back from its compiled file; the detector's manifest gets ``cascade``: the folder, the
    crop labels and top_k. Without a compiler both models are written uncompiled (the
    classifier keeps a compiled twin it came with, compiled alone).

A compiler failure raises out of the temporary folder: nothing is written.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from edgekit.errors import EdgekitError

CLASSIFIER_DIR = "classifier"  # the sub-bundle's folder inside the detector's bundle
TAKES = "--classify takes an image classifier (a bundle or an int8 .tflite)"


@dataclass(frozen=True)
class CropClassifier:
    """The classifier a cascade bundle carries. ``model``: its int8 model (the compiler's
    input); ``manifest``: the ``edgekit.json`` dict to write (models filled in when written);
    ``twin``/``twin_log``: a compiled twin it came with (kept only when not co-compiling)."""

    given: Path
    model: Path
    manifest: dict
    twin: Optional[Path] = None
    twin_log: Optional[Path] = None

    @property
    def labels(self) -> Optional[list]:
        return self.manifest.get("labels")


def _refuse(given: Path, what: str, hint: str) -> EdgekitError:
    """A bad ``--classify`` argument: exit status 2, as for any bad command-line value."""
    return EdgekitError(f"--classify {given}: {what}", hint, exit_code=2)


def classifier_stage(opts) -> Optional[CropClassifier]:
    """The classifier of ``opts.classify`` checked and described (module docstring), or None
    without ``--classify``. Cheap: reads the files, imports no TensorFlow."""
    if opts.classify is None:
        return None
    from edgekit.backends import resolve_model

    given = Path(opts.classify)
    if not given.exists():
        raise _refuse(given, "no such classifier bundle or model file", "check the path")
    try:
        files = resolve_model(given)
    except EdgekitError as e:
        raise _refuse(given, e.message.replace(f"{given}: ", ""), e.hint or "") from None
    if files.bundle is not None:
        clf = _from_bundle(given, files.bundle)
    else:
        if files.cpu is None:  # a Coral _edgetpu.tflite downloaded without its CPU twin
            raise _refuse(given, "compiled for the Edge TPU, and its int8 .tflite (the "
                          "compiler's input) is not beside it",
                          "pass the int8 .tflite it was compiled from")  # fmt: skip
        clf = _from_tflite(given, files.cpu, files.edgetpu or files.compiled_beside)
    if opts.classify_labels is not None:
        clf = _with_labels(clf, opts.classify_labels)
    return clf


def _check_model(given: Path, model: Path) -> Any:
    """The classifier's int8 model read (edgekit.tflite); refusals for what cannot cascade."""
    from edgekit.flatbuffer import Corrupt
    from edgekit.tasks import model_task
    from edgekit.tflite import read_model

    try:
        info = read_model(model)
    except (Corrupt, EdgekitError) as e:
        raise _refuse(given, f"unreadable model ({e})", TAKES) from None
    if model_task(model) == "detect":
        raise _refuse(given, "a detector, not a classifier", TAKES)
    io = {t.index for t in info.inputs} | {t.index for t in info.outputs}
    floats = [t for t in info.float_tensors() if t.index not in io]
    if floats:  # float input/output around an int8 body still compiles; a float body does not
        raise _refuse(given, f"not an int8 model ({len(floats)} float tensors, e.g. "
                      f"{floats[0].name!r}); the Edge TPU runs full-integer models only",
                      "convert it first: `edgekit convert CLASSIFIER.h5 ...`")  # fmt: skip
    shape = tuple(info.inputs[0].shape) if info.inputs else ()
    if len(info.inputs) != 1 or len(shape) != 4 or shape[0] != 1 or shape[3] not in (1, 3):
        raise _refuse(given, f"input {list(shape)} is not one image (1, H, W, 1 or 3)",
                      "pass an image classifier")  # fmt: skip
    out = [list(t.shape) for t in info.outputs]
    if len(out) != 1 or sum(d > 1 for d in out[0]) > 1:  # the Classifier's own rule
        raise _refuse(given, f"output {out[0] if len(out) == 1 else out} is not one score per "
                      "class (a map, rows or several outputs)",
                      "pass an image classifier: output [1, classes]")  # fmt: skip
    return info


def _from_bundle(given: Path, bundle) -> CropClassifier:
    if bundle.manifest.task != "classify":
        raise _refuse(given, "a detector bundle, not a classifier", TAKES)
    _check_model(given, bundle.cpu_model)
    d = json.loads((bundle.dir / "edgekit.json").read_text(encoding="utf-8"))
    d.setdefault("source", {})
    d["source"] = {**(d["source"] or {}), "cascade_copied_from": str(bundle.dir)}
    twin = bundle.edgetpu_model if bundle.edgetpu_model and bundle.edgetpu_model.is_file() else None
    log = bundle.model_path("edgetpu_log")
    return CropClassifier(given, bundle.cpu_model, d, twin, log if log and log.is_file() else None)


def _from_tflite(given: Path, model: Path, twin: Optional[Path]) -> CropClassifier:
    """A bare int8 model: its manifest from the input tensor (Classifier's bare-model rule)."""
    from edgekit import teachable
    from edgekit.classify import tensor_range
    from edgekit.host.quantize import _tensor_spec
    from edgekit.labels import read_labels
    from edgekit.manifest import InputSpec, Manifest, OutputSpec

    info = _check_model(given, model)
    i, o = _tensor_spec(info.inputs[0]), _tensor_spec(info.outputs[0])
    tm = teachable.tflite_export(model)  # Teachable Machine's export: centre crop + labels.txt
    labels = None
    if tm is not None:
        labels = _label_list(read_labels(tm.labels_path), _classes(o["shape"]))
    m = Manifest(
        name=model.stem,
        input=InputSpec(shape=tuple(i["shape"]), dtype=i["dtype"], scale=i["scale"],
                        zero_point=i["zero_point"], color="rgb",
                        range=tensor_range(i["dtype"], i["scale"], i["zero_point"]),
                        resize=tm.resize if tm is not None else "stretch"),
        output=OutputSpec(shape=tuple(o["shape"]), dtype=o["dtype"], scale=o["scale"],
                          zero_point=o["zero_point"]),
        models={"cpu": model.name, "edgetpu": None, "edgetpu_log": None},
        labels=tuple(labels) if labels else None,
        source={"path": str(model.resolve()), "format": "tflite",
                "cascade_copied_from": str(given)},
    )  # fmt: skip
    return CropClassifier(given, model, m.to_dict(), twin if twin and twin.is_file() else None)


def _classes(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _label_list(by_id: dict, classes: int) -> list:
    """Labels by position (a skipped id named by its number); as many as the file names, so a
    file of another model still shows as a count mismatch (check_detector)."""
    return [by_id.get(i, str(i)) for i in range(max(by_id, default=-1) + 1)]


def _with_labels(clf: CropClassifier, path: Path) -> CropClassifier:
    from edgekit.labels import read_labels

    classes = _classes(clf.manifest["output"]["shape"])
    d = dict(clf.manifest, labels=_label_list(read_labels(path), classes))
    d["source"] = {**(d.get("source") or {}), "labels": str(path)}
    return CropClassifier(clf.given, clf.model, d, clf.twin, clf.twin_log)


def check_detector(clf: Optional[CropClassifier], opts, model, warning) -> None:
    """After the load stage: a cascade needs a detector, and crop labels it has."""
    if clf is None:
        return
    if model.task.manifest_fields(opts).get("task") != "detect":
        raise EdgekitError(
            "--classify needs a detector: this model converts as a classifier",
            "convert the detector (--task detect) with --classify CLASSIFIER", exit_code=2,
        )
    if opts.crop_labels is not None:
        if not model.labels:
            raise EdgekitError("--crop-labels: the detector has no labels to match",
                               "pass the detector's --labels FILE", exit_code=2)  # fmt: skip
        unknown = [n for n in opts.crop_labels if n not in model.labels]
        if unknown:
            raise EdgekitError(
                f"--crop-labels {', '.join(unknown)}: not a label of the detector "
                f"({', '.join(model.labels[:8])}{', ...' if len(model.labels) > 8 else ''})",
                "use the detector's own label names", exit_code=2,
            )
    if not clf.labels:
        warning(f"the classifier {clf.given} has no labels: crops are named by class number "
                "(pass --classify-labels FILE)")  # fmt: skip
        return
    from edgekit.labels import mismatch

    problem = mismatch(dict(enumerate(clf.labels)), _classes(clf.manifest["output"]["shape"]))
    if problem:  # usually another model's label file: species would be named wrongly
        warning(f"the classifier's labels: {problem}: is it the label file of this model?")


def write_classifier(dest: Path, clf: CropClassifier, avoid: str, with_twin: bool) -> str:
    """The classifier's sub-bundle at ``dest`` (model, labels.txt, edgekit.json); its model
    renamed when its name is ``avoid`` (the detector's: the compiler names outputs after
    inputs). ``with_twin``: keep the compiled twin it came with. Returns the model's name."""
    dest.mkdir()
    name = clf.model.name if clf.model.name != avoid else f"classifier_{clf.model.name}"
    shutil.copyfile(clf.model, dest / name)
    models: dict[str, Any] = {"cpu": name, "edgetpu": None, "edgetpu_log": None}
    d = dict(clf.manifest)
    if with_twin and clf.twin is not None:
        models["edgetpu"] = f"{Path(name).stem}_edgetpu.tflite"
        shutil.copyfile(clf.twin, dest / models["edgetpu"])
        if clf.twin_log is not None:
            models["edgetpu_log"] = f"{Path(name).stem}_edgetpu.log"
            shutil.copyfile(clf.twin_log, dest / models["edgetpu_log"])
    else:
        d["compile"] = {"status": "skipped", "report": None}
    d["models"] = models
    if d.get("labels"):
        (dest / "labels.txt").write_text("\n".join(d["labels"]) + "\n", encoding="utf-8")
    (dest / "edgekit.json").write_text(json.dumps(d, indent=2) + "\n", encoding="utf-8")
    return name


def cascade_compile_stage(tmp: Path, stem: str, q, clf: CropClassifier, opts, compiler_exe,
                          warning):  # fmt: skip
    """Both models into ``tmp`` (module docstring): the detector's
    :class:`~edgekit.host.convert_bundle.Compiled` and the manifest's ``cascade`` block."""
    from edgekit.edgetpu.compiler_report import CompileReport
    from edgekit.host.cocompile import compile_together
    from edgekit.host.convert_bundle import compile_stage

    sub = tmp / CLASSIFIER_DIR
    write_classifier(sub, clf, f"{stem}_int8.tflite", with_twin=compiler_exe is None)
    together: dict[str, Any] = {}

    def cocompile(exe, model: Path, out: Path, _opts) -> CompileReport:
        # detector first: it runs on every frame (module docstring)
        res = compile_together(exe, [model, sub], out, opts.min_runtime, opts.compile_timeout)
        together["result"] = res
        return CompileReport(**res.models[0].report)

    compiled = compile_stage(tmp, stem, q, opts, compiler_exe, warning, compile_fn=cocompile)
    res = together.get("result")
    if res is not None:
        det, cls = res.models
        compiled.info.update(cocompiled_with=[cls.source.stem], caching=det.caching)
        if res.shared_cache is False:
            warning("the co-compiled detector and classifier do not share one parameter-"
                    "caching token: they will not share the on-chip cache")  # fmt: skip
        if cls.report.get("ops_cpu"):
            warning(f"classifier: {cls.report['ops_cpu']} of {cls.report['ops_total']} ops "
                    "will run on the CPU")  # fmt: skip
    elif clf.twin is not None and compiler_exe is None and opts.compile:
        warning("the classifier keeps the Edge TPU model it came with, compiled alone: the two "
                "models will not share the on-chip cache (install edgetpu_compiler to "
                "co-compile them)")  # fmt: skip
    block = {"classifier": CLASSIFIER_DIR,
             "crop_labels": list(opts.crop_labels) if opts.crop_labels else None,
             "top_k": opts.classify_top_k}  # fmt: skip
    return compiled, block


def summary(out_dir: Path) -> Optional[dict[str, Any]]:
    """What ``convert`` reports about a written cascade bundle: the classifier folder, its
    name, labels count, and each model's compile report (on-chip / off-chip bytes), or None."""
    from edgekit.manifest import load_bundle

    b = load_bundle(out_dir)
    if b.cascade_classifier is None:
        return None
    c = load_bundle(b.cascade_classifier)
    return {
        "classifier": str(b.cascade_classifier),
        "classifier_name": c.manifest.name,
        "classifier_labels": len(c.manifest.labels or ()),
        "crop_labels": list(b.manifest.cascade.get("crop_labels") or []) or None,
        "top_k": b.manifest.cascade.get("top_k"),
        "cocompiled": bool((b.manifest.compile or {}).get("cocompiled_with")),
        "detector_report": (b.manifest.compile or {}).get("report"),
        "classifier_report": (c.manifest.compile or {}).get("report"),
        "classifier_compile": c.manifest.compile,
    }
