"""Image classification on a Runner: preprocessing from the manifest or the input tensor,
dequantized top-k, small immutable result records (pycoral's ``adapters.classify`` style).

Input quantization maths (manifest docstring): pixel p in [0, 255] -> float
``x = lo + p * (hi - lo) / 255`` -> ``q = round(x / scale) + zero_point``. Because q depends on p
alone it is a 256-entry lookup table. When that table is the identity (uint8 input with
``scale == (hi - lo) / 255`` and ``zero_point == -lo / scale``) the pixels go in unchanged; when
it is ``p - 128`` (the int8 equivalent, ``zero_point - 128``) they go in as ``p ^ 0x80`` viewed as
int8. Both are exact, not approximations.

A bare ``.tflite`` has no manifest. As Coral's tools do, its input is fed RGB, stretched, and the
float range is read off the input tensor itself: the range the quantizer calibrated,
``[(qmin - zp) * scale, (qmax - zp) * scale]``, is what pixels 0..255 map to, so uint8 pixels go in
raw (for Coral's MobileNets, scale 1/128 and zp 128, this is exactly Coral's mean=std=128
normalization). ``value_range`` overrides it. A float-input model gets Coral's default
``(p - 128) / 128``.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from edgekit import limits
from edgekit.errors import EdgekitError
from edgekit.images import load_rgb, prepare, to_float
from edgekit.labels import mismatch
from edgekit.task_model import TaskModel


@dataclass(frozen=True)
class Class:
    id: int
    label: str
    score: float

    def to_dict(self) -> dict:
        return {"id": self.id, "label": self.label, "score": self.score}


@dataclass(frozen=True)
class Classification:
    """Top-k classes, best first; ``inference_ms`` is invoke() alone, ``preprocess_ms`` resize +
    quantize + the write into the input tensor."""

    classes: tuple[Class, ...]
    inference_ms: float
    preprocess_ms: float

    @property
    def top(self) -> Class | None:
        return self.classes[0] if self.classes else None

    def to_dict(self) -> dict:
        return {
            "classes": [c.to_dict() for c in self.classes],
            "inference_ms": self.inference_ms,
            "preprocess_ms": self.preprocess_ms,
        }


def _round_half_away(v: np.ndarray) -> np.ndarray:
    # TFLite's Quantize op rounds with std::round (half away from zero), not numpy's half-even.
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def pixel_lut(dtype: np.dtype, scale: float, zero_point: int, value_range) -> np.ndarray:
    """The 256-entry table pixel -> input tensor value (see module docstring)."""
    x = to_float(np.arange(256, dtype=np.uint8), value_range)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return x.astype(dtype)
    if not scale:
        raise EdgekitError(f"integer model input ({dtype}) without quantization parameters")
    info = np.iinfo(dtype)
    q = _round_half_away(x.astype(np.float64) / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def make_quantizer(
    dtype: np.dtype, scale: float, zero_point: int, value_range
) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """(function uint8 HxWx3 -> tensor values, kind) with kind "raw", "xor80" or "lut"."""
    lut = pixel_lut(dtype, scale, zero_point, value_range)
    p = np.arange(256)
    if lut.dtype == np.uint8 and np.array_equal(lut, p):
        return (lambda px: px), "raw"
    if lut.dtype == np.int8 and np.array_equal(lut.astype(np.int16), p - 128):
        return (lambda px: (px ^ np.uint8(0x80)).view(np.int8)), "xor80"
    return (lambda px: lut[px]), "lut"


def tensor_range(dtype: np.dtype, scale: float, zero_point: int) -> tuple[float, float]:
    """The float range a bare model's quantized input covers (or Coral's default for float)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f" or not scale:
        return (-1.0, 127.0 / 128.0)  # Coral's examples: (p - 128) / 128
    info = np.iinfo(dtype)
    return ((info.min - zero_point) * scale, (info.max - zero_point) * scale)


def top_classes(scores: np.ndarray, k: int, threshold: float = 0.0,
                labels: dict[int, str] | None = None) -> tuple[Class, ...]:  # fmt: skip
    """Top-``k`` of float ``scores`` (one per class id) as :meth:`Classifier.top` describes."""
    scores = np.asarray(scores).reshape(-1)
    k = min(int(k), scores.size)
    if k < 1:
        return ()
    pick = np.where(np.isnan(scores), -np.inf, scores)  # a NaN is never a best class
    kth = np.partition(pick, pick.size - k)[pick.size - k]  # the k-th largest score
    above = np.flatnonzero(pick > kth)
    tied = np.flatnonzero(pick == kth)[: k - above.size]  # the lowest ids among the tied
    idx = sorted([*above.tolist(), *tied.tolist()], key=lambda i: (-pick[i], i))
    labels = labels or {}
    return tuple(
        Class(i, labels.get(i, str(i)), float(scores[i]))
        for i in idx
        if scores[i] > 0 and scores[i] >= threshold
    )


class Classifier(TaskModel):
    """Classify RGB images with a bundle directory, a ``.tflite`` or an ``_edgetpu.tflite``.

    Args:
        model: bundle dir (preprocessing and labels from its edgekit.json) or a .tflite.
        labels: label file path or {id: label}; overrides the bundle's labels.
        device: ``auto``, ``cpu`` or an Edge TPU string (see edgekit.backends.open_model).
        top_k, threshold: keep at most ``top_k`` classes with score >= ``threshold`` and > 0
            (:meth:`top`).
        threads: CPU interpreter threads (None: the interpreter's default).
        on_warning: receives one-line notices (emulation, CPU twin); default: logging.
        value_range: override the float range pixels map to, for a bare .tflite.
    """

    task = "classify"

    def __init__(
        self,
        model: str | os.PathLike,
        labels: str | os.PathLike | dict[int, str] | None = None,
        device: str = "auto",
        top_k: int = 5,
        threshold: float = 0.0,
        threads: int | None = None,
        *,
        on_warning: Callable[[str], None] | None = None,
        value_range: tuple[float, float] | None = None,
    ):
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise EdgekitError(f"top_k must be an integer >= 1, got {top_k!r}")
        threshold = limits.finite("threshold", threshold, 0.0, 1.0)
        self._bind(model, device, threads, on_warning)
        self.top_k, self.threshold = int(top_k), float(threshold)
        spec = self.bundle.manifest.input if self.bundle else None
        self.color = spec.color if spec else "rgb"
        self.resize = spec.resize if spec else "stretch"
        if self.teachable and not spec:
            self.resize = self.teachable.resize  # TM's sample code centre-crops
        self._range = value_range or (spec.range if spec else None)
        self.labels: dict[int, str] = self._resolve_labels(labels)
        self._open()

    def _setup(self) -> None:
        r = self.runner
        shape = r.input_shape
        if len(shape) != 4 or shape[0] != 1 or shape[3] not in (1, 3):
            raise EdgekitError(
                f"{r.model_path}: input shape {shape} is not an image (1, H, W, 3 or 1)",
                "edgekit classifies single RGB or grayscale images",
            )
        self.input_size = (shape[1], shape[2])
        self.channels = shape[3]
        if self.bundle and tuple(self.bundle.manifest.input.shape) != shape:
            raise EdgekitError(
                f"{self.bundle.dir}: manifest input {self.bundle.manifest.input.shape} does not "
                f"match its model's {shape}",
                "re-create the bundle with `edgekit convert`",
            )
        scale, zp = r.input_details["quantization"]
        rng = self._range or tensor_range(r.input_dtype, scale, zp)
        self._quantize, self.input_kind = make_quantizer(r.input_dtype, scale, zp, rng)
        out_scale, out_zp = r.output_details["quantization"]
        self._out_scale, self._out_zp = float(out_scale), int(out_zp)
        self._check_output(tuple(int(d) for d in r.output_details["shape"]))
        classes = int(np.prod(r.output_details["shape"]))
        problem = mismatch(self.labels, classes) if self.labels else None
        if problem:
            # Usually the label file of another model; scores would be named wrongly.
            (self._on_warning or logging.getLogger("edgekit").warning)(
                f"{problem}: is it the label file of this model?"
            )

    def _check_output(self, shape: tuple[int, ...]) -> None:
        """Refuse an output that is not one score per class: a map ([1, H, W(, C)], a
        segmentation model), rows of boxes (a detector) or unquantized integers (class ids, an
        ARG_MAX); their values read as scores gave "score 3.000". Warn once when the quantized
        output reaches past 0..1 (logits or an embedding, no softmax): scores are raw values."""
        r = self.runner
        dtype = np.dtype(r.output_details["dtype"])
        if sum(d > 1 for d in shape) > 1 or (dtype.kind in "iu" and not self._out_scale):
            what = "a map or rows" if sum(d > 1 for d in shape) > 1 else f"unquantized {dtype}"
            raise EdgekitError(
                f"{r.model_path}: output {list(shape)} ({what}) is not one score per class",
                "edgekit classifies with a model whose output is [1, classes]; use `edgekit "
                "detect` for a detector",
            )
        if dtype.kind in "iu" and self._out_scale:
            lo, hi = tensor_range(dtype, self._out_scale, self._out_zp)
            if hi > 1.01 or lo < -0.01:
                (self._on_warning or logging.getLogger("edgekit").warning)(
                    f"{r.model_path}: its output spans {lo:.3g}..{hi:.3g}, not 0..1 (no softmax: "
                    "logits or an embedding?): the scores shown are raw output values"
                )

    def scores(self, raw: np.ndarray) -> np.ndarray:
        """Dequantize an output tensor to float32 scores: ``(q - zero_point) * scale``."""
        raw = raw.reshape(-1)
        if raw.dtype.kind == "f" or not self._out_scale:
            out = raw.astype(np.float32)
            # A float output has no range to check at load time: say it on the first frame
            # whose scores leave 0..1 (logits, no softmax), once.
            if not getattr(self, "_raw_said", False) and out.size and (
                    out.max() > 1.01 or out.min() < -0.01):  # fmt: skip
                self._raw_said = True
                (self._on_warning or logging.getLogger("edgekit").warning)(
                    f"{self.runner.model_path}: its float output reached "
                    f"{out.min():.3g}..{out.max():.3g}, not 0..1 (no softmax: logits or an "
                    "embedding?): the scores shown are raw output values"
                )
            return out
        return (raw.astype(np.float32) - self._out_zp) * np.float32(self._out_scale)

    def top(self, scores: np.ndarray) -> tuple[Class, ...]:
        """The best ``top_k`` classes scoring above 0 and at least ``threshold``, ordered by
        score descending, then class id ascending: a uint8 output has 256 levels, so ties are
        common and must not come out in whatever order a partition left them. A score of 0 is
        never listed: for a quantized output it is the zero point (the model gave the class less
        than one step, 1/256), and a row of "0.000" classes ranks nothing."""
        return top_classes(scores, self.top_k, self.threshold, self.labels)

    def classify(self, rgb: np.ndarray) -> Classification:
        """Classify one (H, W, 3) uint8 RGB image of any size."""
        return self.finish(*self.invoke_input(*self.make_input(rgb)))

    # classify() in three stages, for serve's worker (edgekit.stream.worker_stages), which
    # prepares frame n+1 and finishes frame n-1 in one thread while invoke n runs in another.
    @property
    def stages(self) -> tuple[Callable, Callable, Callable]:
        return self.make_input, self.invoke_input, self.finish

    def make_input(self, rgb: np.ndarray) -> tuple[np.ndarray, float]:
        """(H, W, 3) uint8 RGB -> (the input tensor's values, preprocess ms); no interpreter."""
        if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3:
            raise EdgekitError("classify() needs an (H, W, 3) uint8 RGB array")
        t0 = time.perf_counter_ns()
        pixels = prepare(rgb, self.input_size, self.resize, self.color, self.channels)
        x = self._quantize(pixels)  # may be ``rgb`` itself (the identity: raw uint8 input)
        return x, (time.perf_counter_ns() - t0) / 1e6

    def invoke_input(self, x: np.ndarray, preprocess_ms: float = 0.0):
        """Write ``x`` into the input tensor, invoke -> (raw output copy, preprocess ms
        including the write, inference ms)."""
        t0 = time.perf_counter_ns()
        self.runner.set_input(x)
        t1 = time.perf_counter_ns()
        self.runner.invoke()
        t2 = time.perf_counter_ns()
        return self.runner.output(), preprocess_ms + (t1 - t0) / 1e6, (t2 - t1) / 1e6

    def finish(self, raw: np.ndarray, preprocess_ms: float, inference_ms: float) -> Classification:
        """The raw output -> the Classification (dequantized top-k)."""
        return Classification(self.top(self.scores(raw)), inference_ms, preprocess_ms)

    run = classify  # the task-agnostic name (edgekit.tasks)

    def classify_path(self, path: str | os.PathLike) -> Classification:
        return self.classify(load_rgb(Path(path)))
