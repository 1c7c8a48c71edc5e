"""The tensors of a detection model as the interpreter describes them: which input is the image,
which inputs carry recurrent state (and from which output), and the writes and requantization
that feed a state output back into its input on the next call (:class:`Detector`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.classify import _round_half_away
from edgekit.detect.decoders import OutputTensor
from edgekit.errors import EdgekitError


def _tensor(d: dict[str, Any]) -> OutputTensor:
    scale, zp = d["quantization"]
    return OutputTensor(int(d["index"]), str(d["name"]), tuple(int(x) for x in d["shape"]),
                        np.dtype(d["dtype"]).name, float(scale), int(zp))  # fmt: skip


def _shape(d: dict) -> list[int]:
    return [int(x) for x in d["shape"]]


def _image_input(inputs: list[dict], outputs: list[dict], model_path: str) -> dict:
    """The one (1, H, W, 3 or 1) input that is not a state (an input with an output's shape)."""
    images = [
        d for d in inputs
        if len(d["shape"]) == 4 and d["shape"][0] == 1 and d["shape"][3] in (1, 3)
    ]  # fmt: skip
    if len(images) > 1:
        out_shapes = [_shape(o) for o in outputs]
        images = [d for d in images if _shape(d) not in out_shapes]
    if len(images) != 1:
        shapes = [_shape(d) for d in inputs]
        raise EdgekitError(
            f"{Path(model_path).name}: cannot tell the image input among inputs {shapes}",
            "edgekit detects on models with one (1, H, W, 3 or 1) image input",
        )
    return images[0]


def _state_pairs(extra: list[dict], outputs: list[dict], model_path: str) -> list[tuple]:
    """(state input, state output) pairs: same shape and dtype, names that agree once the
    ``init_`` prefix and the folder part are dropped (``raw_inputs/init_lstm_c`` ->
    ``raw_outputs/lstm_c``), or the only output of that shape."""

    def key(name: str) -> str:
        base = name.rsplit("/", 1)[-1].split(":", 1)[0]
        return base[5:] if base.startswith("init_") else base

    pairs = []
    for d in extra:
        same = [o for o in outputs if list(o["shape"]) == list(d["shape"])]
        named = [o for o in same if key(o["name"]) == key(d["name"])]
        match = named if len(named) == 1 else same
        if len(match) != 1:
            raise EdgekitError(
                f"{Path(model_path).name}: input {d['name']!r} {_shape(d)} is neither the "
                "image nor a state carried from an output of the same shape",
                "edgekit detects on models with one image input (plus recurrent state)",
            )
        pairs.append((d, match[0]))
    return pairs


def _zeros(d: dict) -> np.ndarray:
    """The quantized value of 0.0 for a state input."""
    dt = np.dtype(d["dtype"])
    zp = int(d["quantization"][1]) if dt.kind != "f" else 0
    return np.full(tuple(d["shape"]), zp, dtype=dt)


def _requantize(q: np.ndarray, src: dict, dst: dict) -> np.ndarray:
    """A state output's raw value expressed in its input's quantization (a copy when equal)."""
    if (src["dtype"], src["quantization"]) == (dst["dtype"], dst["quantization"]):
        return q
    s_scale, s_zp = src["quantization"]
    d_scale, d_zp = dst["quantization"]
    x = (q.astype(np.float64) - s_zp) * s_scale if s_scale else q.astype(np.float64)
    dt = np.dtype(dst["dtype"])
    if dt.kind == "f" or not d_scale:
        return x.astype(dt)
    info = np.iinfo(dt)
    return np.clip(_round_half_away(x / d_scale) + d_zp, info.min, info.max).astype(dt)


def _write(interp, index: int, x: np.ndarray) -> None:
    # The interpreter's own buffer; the view must be gone before invoke() (see Runner.set_input).
    view = interp.tensor(index)()
    try:
        view[...] = x.reshape(view.shape)
    finally:
        del view
