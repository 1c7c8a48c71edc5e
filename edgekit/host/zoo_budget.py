"""`edgekit zoo build --budget-ms N`: the widest width multiplier / input size of a zoo design that
fits a latency budget on a USB 3 Coral, predicted from layer shapes (no conversion).

Each candidate is built in Keras (random weights: latency depends on shapes), summarised by
:func:`edgekit.host.keras_stats.inspect_keras` and predicted by
:func:`edgekit.edgetpu.latency.latency_of_keras_stats` (every layer assumed mapped: the zoo's
designs all map, tested). Candidates: the design's width multipliers ``ALPHAS`` (when it has
``alpha`` and none was given) times MobileNet's input sizes ``SIZES`` (when no input size was
given; a design whose own input is larger, as yolov3_tiny's 416, from that input down
first). The pick is the widest alpha that fits, then the largest input at that alpha.
"""

from __future__ import annotations

from typing import Any, Callable

from edgekit.edgetpu.latency import CALIBRATION
from edgekit.errors import EdgekitError

ALPHAS = (1.0, 0.75, 0.5, 0.25)  # MobileNet's published width multipliers
SIZES = (224, 192, 160, 128, 96)  # MobileNet's published input sizes
STEP = 32  # between sizes above 224: a multiple of every zoo design's largest stride


def candidates(entry, alpha: float | None, input_size: int | None) -> list[tuple]:
    """(alpha or None, input size) pairs to try, widest first. Designs made for small inputs
    (default below 96, e.g. inception_lite's 28x28 with a Flatten) keep their input size."""
    has_alpha = "alpha" in entry.options()
    alphas = [alpha] if alpha is not None else (list(ALPHAS) if has_alpha else [None])
    if input_size is not None:
        sizes = [input_size]
    elif entry.default_input < min(SIZES):
        sizes = [entry.default_input]
    else:
        # a design made for more than 224 (yolov3_tiny: 416) is tried from its own input down,
        # in steps of 32 (the largest stride of the zoo's designs), before MobileNet's sizes
        sizes = list(range(entry.default_input, max(SIZES), -STEP)) + list(SIZES)
    return [(a, s) for a in alphas for s in sizes]


def predict_design(entry, alpha: float | None, size: int, options: dict) -> dict[str, Any]:
    """Predicted latency of one candidate: ``{"alpha", "input_size", "usb3_ms", "latency_ms",
    "params", "macs"}``."""
    import keras

    from edgekit import zoo as registry
    from edgekit.edgetpu.latency import latency_of_keras_stats
    from edgekit.host.keras_stats import inspect_keras

    opts = dict(options)
    if alpha is not None:
        opts["alpha"] = alpha
    keras.backend.clear_session()
    stats = inspect_keras(registry.build(entry.name, input_size=size, **opts))
    lat = latency_of_keras_stats(stats)
    return {"alpha": alpha, "input_size": size, "usb3_ms": lat["latency_ms"]["usb3"],
            "latency_ms": lat["latency_ms"], "params": stats["params"],
            "macs": stats["macs"]}  # fmt: skip


def pick(entry, budget_ms: float, options: dict, alpha: float | None = None,
         input_size: int | None = None,
         progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """The widest candidate predicted within ``budget_ms`` on a USB 3 Coral, and every candidate
    tried (``{"picked": {...}, "tried": [...]}``). Raises EdgekitError when none fits."""
    tried = []
    picked = None
    cands = candidates(entry, alpha, input_size)
    for i, (a, s) in enumerate(cands):
        if progress:
            progress("predicting", i, len(cands))
        r = predict_design(entry, a, s, options)
        tried.append(r)
        if r["usb3_ms"] <= budget_ms:
            picked = r  # the widest alpha, largest input: smaller ones are not needed
            break
    if picked is None:
        fastest = min(tried, key=lambda r: r["usb3_ms"])
        raise EdgekitError(
            f"no {entry.name} setting fits {budget_ms:g} ms on a USB 3 Coral: the fastest tried, "
            f"{describe(fastest)}, is predicted {fastest['usb3_ms']:g} ms (about "
            f"{CALIBRATION['invoke_overhead_us'] / 1000:.1f} ms of any inference is the USB round "
            "trip)",
            "raise --budget-ms, or pick a smaller design",
        )
    return {"picked": picked, "tried": tried, "budget_ms": budget_ms}


def describe(r: dict[str, Any]) -> str:
    a = "" if r["alpha"] is None else f"alpha {r['alpha']:g}, "
    return f"{a}input {r['input_size']}x{r['input_size']}"
