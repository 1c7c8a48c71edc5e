"""Fixtures for the detection tests: a tiny real detector (converted once per session in a
TensorFlow subprocess) as a bare .tflite and as a detection bundle, and the real detectors in
../shared (skipped when absent)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from edgekit.manifest import InputSpec, Manifest, OutputSpec

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1].parent / "shared" / "data"
LABELS = ("red", "green", "blue")
COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}


@pytest.fixture(scope="session")
def tiny_detector(tmp_path_factory) -> Path:
    """anchor_free.tflite, with stateful.tflite beside it (see make_tiny_detectors.py)."""
    out = tmp_path_factory.mktemp("tiny_detectors")
    proc = subprocess.run([sys.executable, str(HERE / "make_tiny_detectors.py"), str(out)],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out / "anchor_free.tflite"


def write_detect_bundle(
    dest: Path,
    tflite: Path,
    params: dict | None = None,
    decoder: str = "edgekit-anchor-free",
    task: str = "detect",
) -> Path:
    """A detection bundle as `edgekit convert` lays it out (manifest via edgekit.manifest)."""
    dest.mkdir(parents=True)
    model = dest / f"{tflite.stem}_int8.tflite"
    shutil.copy(tflite, model)
    it = Interpreter(model_path=str(model))
    # the image input (a stateful model has others) and the head (the biggest output)
    i = max(it.get_input_details(), key=lambda d: int(np.prod(d["shape"])))
    o = max(it.get_output_details(), key=lambda d: int(np.prod(d["shape"])))
    manifest = Manifest(
        name=tflite.stem,
        input=InputSpec(shape=tuple(int(d) for d in i["shape"]), dtype=i["dtype"].__name__,
                        scale=float(i["quantization"][0]), zero_point=int(i["quantization"][1]),
                        range=(0.0, 1.0)),
        output=OutputSpec(shape=tuple(int(d) for d in o["shape"]), dtype=o["dtype"].__name__,
                          scale=float(o["quantization"][0]), zero_point=int(o["quantization"][1])),
        models={"cpu": model.name, "edgetpu": None, "edgetpu_log": None},
        labels=LABELS,
        task=task,
        detection={"decoder": decoder, "params": {"strides": [8], "score_threshold": 0.5,
                                                  **(params or {})}},
    )  # fmt: skip
    (dest / "edgekit.json").write_text(manifest.to_json())
    return dest


@pytest.fixture(scope="session")
def stateful_bundle(tiny_detector, tmp_path_factory) -> Path:
    model = tiny_detector.with_name("stateful.tflite")
    return write_detect_bundle(tmp_path_factory.mktemp("bundles") / "stateful", model)


@pytest.fixture(scope="session")
def detect_bundle(tiny_detector, tmp_path_factory) -> Path:
    return write_detect_bundle(tmp_path_factory.mktemp("bundles") / "det", tiny_detector)


def edit_manifest(bundle: Path, dest: Path, edit) -> Path:
    """A copy of ``bundle`` at ``dest`` whose manifest dict went through ``edit(d)``."""
    shutil.copytree(bundle, dest)
    d = json.loads((dest / "edgekit.json").read_text())
    edit(d)
    (dest / "edgekit.json").write_text(json.dumps(d))
    return dest


def scene(width: int, height: int, squares, background=(0, 0, 0)) -> np.ndarray:
    """An RGB image with filled squares [(colour name, x0, y0, x1, y1), ...]."""
    img = np.zeros((height, width, 3), np.uint8)
    img[...] = background
    for name, x0, y0, x1, y1 in squares:
        img[y0:y1, x0:x1] = COLOURS[name]
    return img


def shared(*parts: str) -> Path:
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} not available (../shared is absent)")
    return p


def reference_nms(boxes, scores, classes, iou_thr) -> list[int]:
    """Per-class greedy NMS written out from its definition (for comparisons): best score first,
    drop boxes of the same class with IoU > ``iou_thr`` with a kept one."""
    keep = []
    for c in np.unique(classes):
        idx = [i for i in np.argsort(-scores, kind="stable") if classes[i] == c]
        while idx:
            i = idx.pop(0)
            keep.append(i)
            rest = []
            for j in idx:
                a, b = boxes[i], boxes[j]
                iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
                ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
                inter = iw * ih
                union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
                if not (union > 0 and inter / union > iou_thr):
                    rest.append(j)
            idx = rest
    return sorted(keep, key=lambda i: (-scores[i], i))
