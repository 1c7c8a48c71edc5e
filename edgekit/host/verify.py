"""Compare the int8 model with the float model on held-out images.

The int8 model runs in ai-edge-litert's CPU interpreter (the same kernels, bit for bit, as the
device's CPU path; the Edge TPU computes the same integer maths). Its input is quantized with the
manifest's formula ``q = round(x / scale) + zero_point`` from the same float ``x`` the float model
gets, and its output dequantized with ``(q - zero_point) * scale``, so both are compared in the
float model's units. (tflite-runtime is deliberately not used: it breaks when imported after
TensorFlow, which the host side has already loaded.)
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

Progress = Optional[Callable[[str, int, int], None]]

FLOAT_BATCH = 64  # images per float-model call: batched inference, bounded memory


def float_outputs(float_fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """The float model on ``x`` (N, H, W, C) float32 in batches of :data:`FLOAT_BATCH`:
    (N, ...) float32."""
    if not len(x):
        return np.zeros((0,), np.float32)
    batches = range(0, len(x), FLOAT_BATCH)
    return np.concatenate([np.asarray(float_fn(x[i : i + FLOAT_BATCH]), np.float32)
                           for i in batches])  # fmt: skip


def quantize_input(x: np.ndarray, scale: float, zero_point: int, dtype: str) -> np.ndarray:
    """float32 -> uint8/int8 with the tensor's affine parameters, saturating."""
    info = np.iinfo(np.dtype(dtype))
    q = np.round(x / np.float32(scale)) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def run_int8(data: bytes, x: np.ndarray, progress: Progress = None, threads: int | None = None):
    """Run the .tflite ``data`` on each (H, W, C) float32 row of ``x``; returns dequantized
    float32 outputs of shape (N, ...)."""
    from ai_edge_litert.interpreter import Interpreter

    from edgekit.host.tfenv import quiet_native_output

    with quiet_native_output():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
        interp = Interpreter(model_content=data, num_threads=threads)
        interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    in_scale, in_zp = inp["quantization"]
    out_scale, out_zp = out["quantization"]
    q = quantize_input(x, in_scale, in_zp, np.dtype(inp["dtype"]).name)
    results = []
    for i in range(len(q)):
        interp.set_tensor(inp["index"], q[i : i + 1])
        interp.invoke()
        raw = interp.get_tensor(out["index"]).astype(np.float32)
        results.append((raw - out_zp) * out_scale if out_scale else raw)
        if progress:
            progress("verifying", i + 1, len(q))
    return np.concatenate(results).reshape(len(q), -1)


def run_int8_outputs(data: bytes, x: np.ndarray, progress: Progress = None):
    """Like :func:`run_int8` for a model with several outputs: ``(arrays, details)``, one
    dequantized float32 (N, *shape[1:]) array and one interpreter detail dict (``name``,
    ``shape``, ``quantization``) per output, in the .tflite file's output order (which the
    converter sets by its own tensor names, not by the Keras model's order)."""
    from ai_edge_litert.interpreter import Interpreter

    from edgekit.host.tfenv import quiet_native_output

    with quiet_native_output():
        interp = Interpreter(model_content=data)
        interp.allocate_tensors()
    inp, outs = interp.get_input_details()[0], interp.get_output_details()
    in_scale, in_zp = inp["quantization"]
    q = quantize_input(x, in_scale, in_zp, np.dtype(inp["dtype"]).name)
    results: list[list[np.ndarray]] = [[] for _ in outs]
    for i in range(len(q)):
        interp.set_tensor(inp["index"], q[i : i + 1])
        interp.invoke()
        for k, out in enumerate(outs):
            raw = interp.get_tensor(out["index"]).astype(np.float32)
            scale, zp = out["quantization"]
            results[k].append((raw - zp) * scale if scale else raw)
        if progress:
            progress("verifying", i + 1, len(q))
    arrays = [np.concatenate(r) if r else np.zeros((0, *o["shape"][1:]), np.float32)
              for r, o in zip(results, outs)]  # fmt: skip
    return arrays, outs


def verify(
    data: bytes,
    float_fn: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    classes: np.ndarray | None = None,
    progress: Progress = None,
    ref: np.ndarray | None = None,
) -> dict[str, Any]:
    """Float vs int8 on ``x`` (N, H, W, C) float32.

    Returns ``images``, ``agreement`` (fraction of images whose top-1 class is the same),
    ``disagreements``, ``mean_abs_error`` / ``max_abs_error`` (scores, in the float model's
    output units), and with ``classes`` (true class per image) ``accuracy_float`` /
    ``accuracy_int8``. ``ref``: the float model's (N, classes) outputs on ``x`` when already
    computed (e.g. while the input range was measured); not recomputed then. With N == 0
    returns ``{"images": 0, "agreement": None, ...}``.
    """
    n = len(x)
    if n == 0:
        return {"images": 0, "agreement": None, "skipped": "no held-out images"}
    ref = float_outputs(float_fn, x) if ref is None else np.asarray(ref, np.float32)
    ref = ref.reshape(n, -1)
    got = run_int8(data, x, progress)
    top_ref, top_got = ref.argmax(axis=1), got.argmax(axis=1)
    err = np.abs(ref - got)
    # Reported (convert --json, the bundle's edgekit.json): fractions of images to 4 decimals
    # (0.6666666666666666 before), score errors to 6 (a good model's are ~1e-3).
    result: dict[str, Any] = {
        "images": n,
        "agreement": round(float(np.mean(top_ref == top_got)), 4),
        "disagreements": int(np.sum(top_ref != top_got)),
        "mean_abs_error": round(float(err.mean()), 6),
        "max_abs_error": round(float(err.max()), 6),
    }
    if classes is not None and len(classes) == n:
        result["accuracy_float"] = round(float(np.mean(top_ref == classes)), 4)
        result["accuracy_int8"] = round(float(np.mean(top_got == classes)), 4)
    return result
