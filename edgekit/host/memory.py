"""Will it fit? Memory estimates checked before ``train``, ``zoo build`` and ``convert`` start,
so that an oversized ``--input-size`` is one clear line instead of a process killed by the OOM
killer (which prints nothing and, inside a container or a systemd unit, may take the session
with it).

Activations and the pixels of the data set grow with the square of the input side; so do the
parameters of a design with a Flatten before its dense layer (inception_lite). The estimate
builds the design twice at small sizes (its default side d and 2d, a fraction of a second each)
and extrapolates: parameters as ``p(s) = p(d) + (p(2d) - p(d)) * ((s/d)^2 - 1) / 3`` (exact for
a constant plus a term in s^2), activations per image as ``a(d) * (s/d)^2``. The bytes then are:

- data: N images held as uint8 and again as float32 (5 bytes per pixel channel);
- weights: float32 weights, gradients and Adam's two moments (16 bytes per parameter);
- activations: one batch of float32 activations kept for the backward pass, with the same again
  for their gradients and a third for workspace (12 bytes per activation value).

It is deliberately rough (TensorFlow's allocator adds its own overhead): the point is an order of
magnitude, so the limit is the memory available now, not a fraction of it.
"""

from __future__ import annotations

import math
from pathlib import Path

from edgekit.errors import EdgekitError

GiB = 1024**3


def available_bytes(root: str = "/") -> int | None:
    """Memory this process can still use: MemAvailable, capped by a cgroup v2 limit if any.
    None when unknown (not Linux)."""
    avail = None
    try:
        for line in Path(root, "proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    try:
        limit = Path(root, "sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path(root, "sys/fs/cgroup/memory.current").read_text().strip())
        if limit != "max" and avail is not None:
            avail = min(avail, max(0, int(limit) - used))
    except (OSError, ValueError):
        pass
    return avail


def design_size(entry, size: int, options: dict) -> tuple[int, int]:
    """(parameters, activation values per image) of zoo design ``entry`` at input side ``size``,
    extrapolated from builds at its default side and twice that (see the module docstring)."""
    from edgekit.host.keras_stats import inspect_keras

    d = int(entry.default_input)
    stats = [inspect_keras(entry.builder()(input_size=s, **options)) for s in (d, 2 * d)]
    p_d, p_2d = stats[0]["params"], stats[1]["params"]
    k = (size / d) ** 2
    params = p_d + (p_2d - p_d) * (k - 1) / 3
    acts = sum(_elements(layer["output_shape"]) for layer in stats[0]["layers"]) * k
    return int(max(params, 0)), int(acts)


def _elements(shape) -> int:
    if shape and isinstance(shape[0], (list, tuple)):  # several outputs
        return sum(_elements(s) for s in shape)
    return math.prod(int(x) for x in shape[1:] if x is not None) if shape else 0


def training_bytes(n_images: int, size: int, batch: int, params: int, acts: int) -> int:
    return n_images * size * size * 3 * 5 + params * 16 + batch * acts * 12


def require(need: int, what: str, hint: str, root: str = "/") -> None:
    """Raise EdgekitError if ``need`` bytes exceed the memory available now."""
    avail = available_bytes(root)
    if avail is not None and need > avail:
        raise EdgekitError(
            f"{what} needs about {_gib(need)} of memory; {_gib(avail)} is available", hint
        )


def _gib(n: float) -> str:
    return f"{n / GiB:.1f} GiB" if n >= GiB / 10 else f"{n / 1024**2:.0f} MiB"


def check_training(entry, size: int, n_images: int, batch: int, options: dict) -> None:
    """Refuse (before reading any image) a training run that cannot fit in memory."""
    if size <= entry.default_input:  # the design's own size: the data set is what may not fit
        params, acts = 0, 0
    else:
        params, acts = design_size(entry, size, options)
    require(
        training_bytes(n_images, size, batch, params, acts),
        f"training {entry.name} at {size}x{size} on {n_images} images",
        f"use a smaller --input-size (the design's default is {entry.default_input}) "
        "or a smaller --batch-size",
    )


def check_build(entry, size: int, options: dict) -> None:
    """Refuse a ``zoo build`` whose weights cannot fit (designs with a Flatten grow as s^2)."""
    if size <= entry.default_input:
        return
    params, _ = design_size(entry, size, options)
    require(
        params * 4 * 3,  # the weights, their initializer's temporaries and the saved copy
        f"{entry.name} at {size}x{size} ({params:,} parameters)",
        f"use a smaller --input-size (the design's default is {entry.default_input})",
    )


def activations(model) -> tuple[int, int]:
    """(sum, largest) of the float values one image produces in ``model``'s layers (every
    layer's output, nested models included; the input counts as a layer)."""
    from edgekit.host.quantize import _all_layers

    total = largest = 0
    for layer in _all_layers(model):
        try:
            outs = layer.output
        except (AttributeError, ValueError, RuntimeError):  # a layer never called
            continue
        for t in outs if isinstance(outs, (list, tuple)) else [outs]:
            n = _elements(tuple(getattr(t, "shape", ()) or ()))
            total, largest = total + n, max(largest, n)
    return total, largest


def conversion_bytes(model, size: tuple[int, int], channels: int, n_images: int) -> int:
    """Rough peak memory of ``edgekit convert`` (bytes):

    - the decoded images, uint8 and a float32 copy (5 bytes per pixel channel);
    - calibration: the converter's calibrator keeps every activation of one image (float32);
    - float verification/measurement: a batch of up to 64 images through the Keras model,
      the largest activation three times over (its input, its output, workspace)."""
    pixels = n_images * size[0] * size[1] * channels
    total, largest = activations(model)
    batch = max(1, min(64, n_images))
    return pixels * 5 + total * 4 + batch * largest * 4 * 3


def check_conversion(model, size: tuple[int, int], channels: int, n_images: int) -> None:
    """Refuse (before any image is decoded) a conversion that cannot fit in memory."""
    h, w = size
    require(
        conversion_bytes(model, size, channels, n_images),
        f"converting a model with a {h}x{w}x{channels} input on {n_images} images",
        "convert at a smaller input size (--input-size for a model with dynamic height/width), "
        "or pass fewer images (--num-calib, --num-verify)",
    )


__all__ = [
    "activations",
    "available_bytes",
    "check_build",
    "check_conversion",
    "check_training",
    "conversion_bytes",
    "design_size",
]
