"""The crop classifier a cascade bundle carries (``edgekit convert DETECTOR --classify C``), and
the one rule by which ``detect``, ``serve`` and ``bench`` pick the cascade to run.

A cascade bundle is a detector bundle whose ``edgekit.json`` has ``"cascade": {"classifier":
"classifier", "crop_labels": [...] or null, "top_k": K or null}``; ``classifier/`` is the
classifier's own bundle (co-compiled with the detector when a compiler ran). The rule:

- an explicit classifier (``--classify``, ``[cascade] classifier``) replaces the carried one,
  its crop labels and top_k with it: the user's cascade, as without a cascade bundle;
- else the carried classifier runs, with the bundle's crop labels and top_k unless the user
  gave their own (``--crop-labels``, ``--classify-top-k``, ``[cascade] crop_labels``/``top_k``);
- ``top_k`` falls back to :data:`DEFAULT_TOP_K`.

Pure file reading (no interpreter): serve calls it in the parent to decide which factory to
send to its worker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from edgekit.errors import EdgekitError

DEFAULT_TOP_K = 3


@dataclass(frozen=True)
class CascadeChoice:
    """The cascade to open: ``classifier`` path, ``crop_labels`` (None: every label),
    ``top_k``, and ``carried`` (True: the bundle's own classifier)."""

    classifier: str
    crop_labels: Optional[tuple[str, ...]]
    top_k: int
    carried: bool


def carried(model: str | os.PathLike) -> Optional[tuple[Path, dict]]:
    """(classifier bundle folder, the ``cascade`` block) of a cascade bundle (or a model file
    inside one), else None. None too when ``model`` cannot be read: whoever opens it next says
    why, in its own words."""
    from edgekit.backends import resolve_model

    try:
        bundle = resolve_model(model).bundle
    except EdgekitError:
        return None
    if bundle is None or bundle.cascade_classifier is None:
        return None
    return bundle.cascade_classifier, dict(bundle.manifest.cascade)


def choose(
    model: str | os.PathLike,
    classifier: str | os.PathLike | None = None,
    crop_labels: Optional[list[str] | tuple[str, ...]] = None,
    top_k: Optional[int] = None,
) -> Optional[CascadeChoice]:
    """The cascade for ``model`` under the rule above, or None (no classifier at all)."""
    labels = tuple(crop_labels) if crop_labels else None
    if classifier:
        return CascadeChoice(os.fspath(classifier), labels, top_k or DEFAULT_TOP_K, False)
    found = carried(model)
    if found is None:
        return None
    folder, block = found
    mine = block.get("crop_labels")
    return CascadeChoice(
        str(folder),
        labels if labels is not None else (tuple(mine) if mine else None),
        top_k or block.get("top_k") or DEFAULT_TOP_K,
        True,
    )


def describe(bundle) -> Optional[dict]:
    """``inspect BUNDLE`` of a cascade bundle (a :class:`edgekit.manifest.Bundle`): the carried
    classifier (name, labels, input, compile status, co-compiled partners) and whether the two
    fit on-chip together (:func:`edgekit.edgetpu.cocompile.together`, from the compiled files
    when there are any). None for any other bundle."""
    from edgekit.edgetpu.cocompile import together
    from edgekit.manifest import load_bundle

    folder = bundle.cascade_classifier
    if folder is None:
        return None
    c = load_bundle(folder)
    block = bundle.manifest.cascade
    comp = c.manifest.compile or {}
    models = [b.edgetpu_model if b.edgetpu_model and b.edgetpu_model.is_file() else b.cpu_model
              for b in (bundle, c)]  # fmt: skip
    return {
        "classifier": str(folder),
        "name": c.manifest.name,
        "labels": len(c.manifest.labels or ()),
        "input": list(c.manifest.input.shape),
        "resize": c.manifest.input.resize,
        "crop_labels": list(block.get("crop_labels") or []) or None,
        "top_k": block.get("top_k") or DEFAULT_TOP_K,
        "compiled": c.edgetpu_model is not None,
        "cocompiled_with": comp.get("cocompiled_with"),
        "together": together([str(m) for m in models]),
    }


def format_description(d: dict) -> list[str]:
    """Text lines of :func:`describe` for ``inspect``."""
    from edgekit.edgetpu.cocompile import format_together

    crops = ", ".join(d["crop_labels"]) if d["crop_labels"] else "every label"
    size = "x".join(str(v) for v in d["input"][1:3])
    state = ("co-compiled with " + ", ".join(d["cocompiled_with"]) if d.get("cocompiled_with")
             else "compiled alone" if d["compiled"] else "not compiled")  # fmt: skip
    return [
        f"Cascade  crops of {crops} -> {d['classifier']} ({d['name']}, {d['labels']} labels, "
        f"{size} {d['resize']}, top {d['top_k']}; {state})",
        *(f"         {line}" for line in format_together(d["together"]).splitlines()),
    ]
