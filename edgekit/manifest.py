"""The bundle manifest, ``edgekit.json``: everything the device needs to run a converted model.

A bundle is a directory written by ``edgekit convert``::

    OUT_DIR/
      edgekit.json                 this manifest
      <stem>_int8.tflite           full-integer model, runs on any CPU interpreter
      <stem>_int8_edgetpu.tflite   the same after edgetpu_compiler (only when compiled)
      <stem>_int8_edgetpu.log      the compiler's operation log (only when compiled)
      labels.txt                   one label per line (only when labels were given)
      classifier/                  a cascade's crop classifier, itself a bundle (only with
                                   ``convert --classify``; ``cascade`` in the manifest names it)

Preprocessing contract (shared by calibration on the host and classification on the device):
load the image as RGB uint8, resize to ``input.shape[1:3]`` with ``input.resize``, reorder channels
to ``input.color``, then map pixel ``p`` in [0, 255] to the float the model was trained on,
``x = lo + p * (hi - lo) / 255`` with ``(lo, hi) = input.range``, and quantize it with the input
tensor's ``scale``/``zero_point``: ``q = round(x / scale) + zero_point``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError
from edgekit.manifest_fields import Bad, check_manifest
from edgekit.safeio import read_text, require_regular

MANIFEST_NAME = "edgekit.json"
FORMAT = "edgekit-bundle"  # the manifest's "format": what kind of bundle this is
FORMAT_VERSION = 1
MANIFEST_LIMIT = 16 * 1024 * 1024  # bytes; real manifests are a few KB
COLOR_ORDERS = ("rgb", "bgr")
RESIZE_MODES = ("stretch", "crop", "pad")
TASKS = ("classify", "detect")


@dataclass(frozen=True)
class InputSpec:
    """The model input. ``shape`` is NHWC with N == 1; ``range`` is the float (lo, hi) that
    pixel values 0 and 255 map to at training time; ``scale``/``zero_point`` quantize it."""

    shape: tuple[int, ...]
    dtype: str
    scale: float
    zero_point: int
    color: str = "rgb"
    range: tuple[float, float] = (0.0, 1.0)
    resize: str = "stretch"

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return int(self.shape[1]), int(self.shape[2])


@dataclass(frozen=True)
class OutputSpec:
    """The model output: ``shape`` is (1, classes); real score = (q - zero_point) * scale."""

    shape: tuple[int, ...]
    dtype: str
    scale: float
    zero_point: int


@dataclass(frozen=True)
class Manifest:
    """Parsed ``edgekit.json``. ``models`` maps ``cpu``/``edgetpu``/``edgetpu_log`` to file names
    relative to the bundle directory (``None`` when absent)."""

    name: str
    input: InputSpec
    output: OutputSpec
    models: dict[str, str | None]
    labels: tuple[str, ...] | None = None
    source: dict[str, Any] = field(default_factory=dict)
    tools: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)
    verification: dict[str, Any] = field(default_factory=dict)
    compile: dict[str, Any] | None = None
    created: str | None = None
    format_version: int = FORMAT_VERSION
    task: str = "classify"
    detection: dict[str, Any] | None = None
    # A cascade bundle (convert --classify): {"classifier": folder, "crop_labels": [...] or
    # None, "top_k": int or None}; the folder is the crop classifier's own bundle.
    cascade: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.detection is None:
            del d["detection"]
        if self.cascade is None:
            del d["cascade"]
        elif d["cascade"].get("crop_labels") is not None:
            d["cascade"]["crop_labels"] = list(d["cascade"]["crop_labels"])
        d["input"]["shape"] = list(self.input.shape)
        d["input"]["range"] = list(self.input.range)
        d["output"]["shape"] = list(self.output.shape)
        d["labels"] = list(self.labels) if self.labels is not None else None
        return {"format": FORMAT, **d}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = MANIFEST_NAME) -> Manifest:
        """Build from decoded JSON, every field checked (see :mod:`edgekit.manifest_fields`)."""
        _check_format(d, where)
        version = d.get("format_version", 0) if isinstance(d, dict) else 0
        if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
            raise EdgekitError(
                f"{where}: bundle format {version} is newer than this edgekit understands "
                f"({FORMAT_VERSION})",
                "upgrade edgekit on this device",
            )
        try:
            d = check_manifest(d)
        except Bad as e:
            raise EdgekitError(
                f"{where}: not a valid edgekit manifest ({e})",
                "re-create the bundle with `edgekit convert`",
            ) from None
        i, o = d["input"], d["output"]
        return cls(
            name=d["name"],
            input=InputSpec(
                shape=i["shape"],
                dtype=i["dtype"],
                scale=i["scale"],
                zero_point=i["zero_point"],
                color=i.get("color", "rgb"),
                range=i.get("range", (0.0, 1.0)),
                resize=i.get("resize", "stretch"),
            ),
            output=OutputSpec(
                shape=o["shape"], dtype=o["dtype"], scale=o["scale"], zero_point=o["zero_point"]
            ),
            models=d["models"],
            labels=d.get("labels"),
            source=d.get("source", {}),
            tools=d.get("tools", {}),
            calibration=d.get("calibration", {}),
            verification=d.get("verification", {}),
            compile=d.get("compile"),
            created=d.get("created"),
            format_version=d.get("format_version", 0),
            task=_task(d.get("task", "classify"), where),
            detection=_detection(d.get("detection"), d.get("task", "classify"), where),
            cascade=_cascade(d.get("cascade"), d.get("task", "classify"), where),
        )


def _check_format(d: Any, where: str) -> None:
    """A manifest whose ``format`` is not :data:`FORMAT` describes files this edgekit cannot
    run (another tool's bundle, a future layout): refuse it by name rather than guess. A
    manifest without the key (hand-written) is read as this format."""
    fmt = d.get("format", FORMAT) if isinstance(d, dict) else FORMAT
    if fmt != FORMAT:
        shown = repr(fmt) if len(repr(fmt)) <= 40 else repr(fmt)[:37] + "..."
        raise EdgekitError(
            f"{where}: unknown bundle format {shown}; this edgekit reads {FORMAT!r} "
            f"bundles up to format_version {FORMAT_VERSION}",
            "upgrade edgekit on this device, or re-convert the model with `edgekit convert`",
        )


def _task(task: Any, where: str) -> str:
    if task not in TASKS:
        raise EdgekitError(
            f"{where}: unknown task {task!r}",
            f"use one of: {', '.join(TASKS)} (or upgrade edgekit)",
        )
    return task


def _detection(det: Any, task: Any, where: str) -> dict[str, Any] | None:
    """The ``detection`` block: ``{"decoder": str, "params": {...}}``, required for ``detect``.
    Structure and finiteness only here; each decoder checks its own params' names and ranges
    (edgekit.detect.decoders)."""
    if det is None and task != "detect":
        return None
    if not isinstance(det, dict) or not isinstance(det.get("decoder"), str):
        raise EdgekitError(
            f'{where}: a detection bundle needs "detection": {{"decoder": ..., "params": ...}}',
            "re-create the bundle with `edgekit convert`",
        )
    unknown = set(det) - {"decoder", "params"}
    if unknown:
        raise EdgekitError(
            f'{where}: unknown key(s) in "detection": {", ".join(sorted(unknown))}',
            "re-create the bundle with `edgekit convert`",
        )
    params = det.get("params") or {}
    if not isinstance(params, dict):
        raise EdgekitError(f'{where}: "detection.params" is not an object', "re-create the bundle")
    _check_finite(params, f"{where}: detection.params")
    return {"decoder": det["decoder"], "params": dict(params)}


def _cascade(block: dict[str, Any] | None, task: Any, where: str) -> dict[str, Any] | None:
    """Only a detector carries a crop classifier."""
    if block is not None and task != "detect":
        raise EdgekitError(f'{where}: "cascade" in a {task} bundle (only detectors have one)',
                           "re-create the bundle with `edgekit convert`")  # fmt: skip
    return dict(block) if block is not None else None


def _check_finite(value: Any, where: str) -> None:
    """Reject NaN/inf (json.loads accepts them) anywhere inside ``value``."""
    if isinstance(value, float) and not math.isfinite(value):
        raise EdgekitError(f"{where}: {value} is not a finite number", "re-create the bundle")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for v in value:
            _check_finite(v, where)


@dataclass(frozen=True)
class Bundle:
    """A bundle directory and its manifest, with absolute model paths."""

    dir: Path
    manifest: Manifest

    def model_path(self, kind: str) -> Path | None:
        """Absolute path of the ``cpu`` or ``edgetpu`` model, or None if the bundle has none."""
        name = self.manifest.models.get(kind)
        return self.dir / name if name else None

    @property
    def cpu_model(self) -> Path:
        return self.model_path("cpu")  # type: ignore[return-value]

    @property
    def edgetpu_model(self) -> Path | None:
        return self.model_path("edgetpu")

    @property
    def cascade_classifier(self) -> Path | None:
        """The crop classifier's bundle folder of a cascade bundle, else None."""
        c = self.manifest.cascade
        return self.dir / c["classifier"] if c else None


def is_bundle(path: str | os.PathLike) -> bool:
    return (Path(path) / MANIFEST_NAME).is_file()


def load_bundle(path: str | os.PathLike) -> Bundle:
    """Read a bundle directory (or its ``edgekit.json``). Raises EdgekitError when unusable."""
    path = Path(path)
    if path.is_file() and path.name == MANIFEST_NAME:
        path = path.parent
    mpath = path / MANIFEST_NAME
    if not path.exists():
        raise EdgekitError(f"{path}: no such bundle directory", "check the path")
    if not mpath.exists():
        raise EdgekitError(
            f"{path}: not an edgekit bundle (no {MANIFEST_NAME})",
            "pass a directory written by `edgekit convert`, or a .tflite file",
        )
    text = read_text(mpath, "manifest", MANIFEST_LIMIT)
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        reason = "nested too deeply" if isinstance(e, RecursionError) else str(e)
        raise EdgekitError(
            f"{mpath}: unreadable manifest ({reason})", "re-create the bundle"
        ) from None
    if not isinstance(data, dict):
        raise EdgekitError(f"{mpath}: not a valid edgekit manifest", "re-create the bundle")
    bundle = Bundle(dir=path.resolve(), manifest=Manifest.from_dict(data, where=str(mpath)))
    for kind, name in bundle.manifest.models.items():
        if name and kind != "edgetpu_log":
            model = bundle.dir / name
            if kind == "cpu" and not model.exists():
                raise EdgekitError(
                    f"{path}: bundle is missing its CPU model {model}", "re-create the bundle"
                )
            if model.exists():
                try:
                    require_regular(model, "model")
                except EdgekitError as e:
                    raise EdgekitError(
                        f"{path}: bundle's {kind} model: {e.message}", "re-create the bundle"
                    ) from None
    clf = bundle.cascade_classifier
    if clf is not None and not (clf / MANIFEST_NAME).is_file():
        raise EdgekitError(f"{path}: cascade bundle is missing its classifier {clf}",
                           "re-create the bundle with `edgekit convert --classify`")  # fmt: skip
    return bundle
