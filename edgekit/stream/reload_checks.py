"""What hot reload (:mod:`edgekit.stream.reload`) checks and records, apart from its thread:
the watched paths' signatures, the startup rule for signed bundles, the check of a new model
(same task, finite outputs on one frame), its outcome record, and quiet closing."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError

log = logging.getLogger("edgekit.stream")


@dataclasses.dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str
    bundle: str = ""
    sha256: str = ""


def path_signature(path: str | os.PathLike) -> tuple | None:
    """What changes when ``path`` is replaced: (dev, inode, mtime) of the path (followed) and of
    its ``edgekit.json``; None while it does not exist (mid-swap)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    sig: tuple = (st.st_dev, st.st_ino, st.st_mtime_ns, os.path.realpath(path))
    try:
        m = os.stat(Path(path) / "edgekit.json")
        sig += (m.st_ino, m.st_mtime_ns, m.st_size)
    except OSError:
        pass
    return sig


def startup_config(config):
    """The config serve starts with: ``[fleet] public_key`` set means the bundle (and a
    ``[cascade]`` classifier) is checked before it is loaded (an unsigned or altered bundle is
    refused at startup too); with
    ``[fleet] topic``, the bundle the fleet deployed last is the one loaded
    (:func:`edgekit.stream.fleet.startup_config`)."""
    if config.fleet.topic:
        from edgekit.stream.fleet import startup_config as fleet_startup

        config = fleet_startup(config)
    key = config.fleet.public_key
    if key and config.model.path:
        from edgekit import signing

        path = config.model.path
        if not os.path.isdir(path):
            raise EdgekitError(
                f"{path}: [fleet] public_key is set: only signed bundles are accepted",
                "point [model] path at a signed bundle directory",
            )
        signing.verify(path, key)
        classifier = config.cascade.classifier  # loaded with the detector: the same rule
        if classifier:
            signing.verify(classifier, key)
    return config


def check_model(model, current, rgb) -> None:
    """The new ``model`` against the running one (``current``): same task, and one inference on
    ``rgb`` (the last (H, W, 3) uint8 frame; None: a black frame at the model's input size)
    gives a result whose every number is finite. Raises EdgekitError saying which check failed."""
    task, want = getattr(model, "task", "classify"), getattr(current, "task", "classify")
    if task != want:
        raise EdgekitError(
            f"it is a {task} model but serve runs a {want} model",
            "restart serve to change the task",
        )
    if rgb is None:
        size = getattr(model, "input_size", None) or (224, 224)
        rgb = np.zeros((*size, 3), np.uint8)
    run = getattr(model, "run", None) or model.classify
    out = run(rgb)
    bad = non_finite(out.to_dict() if hasattr(out, "to_dict") else {})
    ms = float(getattr(out, "inference_ms", 0.0))
    if bad or not math.isfinite(ms):
        raise EdgekitError(
            f"its output is not finite ({bad or 'inference_ms'})",
            "check the conversion (edgekit convert verifies the int8 model)",
        )


def close_quietly(model) -> None:
    try:
        if hasattr(model, "close"):
            model.close()
    except Exception as e:  # a model that fails to close must not stop serve
        log.warning("closing the previous model failed: %s", e)


def digest_or_empty(path: str) -> str:
    from edgekit import signing

    try:
        return signing.model_digest(path)
    except (EdgekitError, OSError):
        return ""


def non_finite(value, where: str = "") -> str:
    """The first non-finite number in a result dict (its key path), or ''."""
    if isinstance(value, float):
        return "" if math.isfinite(value) else (where or "value")
    if isinstance(value, dict):
        for k, v in value.items():
            bad = non_finite(v, f"{where}.{k}" if where else str(k))
            if bad:
                return bad
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            bad = non_finite(v, f"{where}[{i}]")
            if bad:
                return bad
    return ""
