"""A detector's calibration and verification images for ``edgekit convert``.

Images: when ``--calib`` is a detection dataset (YOLO txt or COCO json, :mod:`edgekit.detect.
dataset`), calibration uses its train split and verification its held-out split, WITH labels;
any other folder is split like a classifier's (group pattern, sha1 order) and verified without
labels. Pixels are letterboxed (grey 114) exactly as :class:`edgekit.detect.Detector` does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from edgekit import images
from edgekit.detect.metrics import ImageBoxes
from edgekit.errors import EdgekitError
from edgekit.host.calibration import representative
from edgekit.host.detect_eval import LETTERBOX_FILL

Progress = Optional[Callable[[str, int, int], None]]


@dataclass
class DetectionImages:
    """Letterboxed uint8 pixels: ``calib`` (N, H, W, 3), ``verify`` (M, H, W, 3); for labelled
    verification images their ``letterboxes`` and ``truths`` (original pixels)."""

    calib: np.ndarray
    verify: np.ndarray
    letterboxes: list
    truths: list[ImageBoxes] | None
    stats: dict[str, Any]
    warnings: list[str]

    def representative(self, prep, progress: Progress = None):
        """The converter's representative dataset (:func:`edgekit.host.calibration.
        representative`)."""
        return representative(self.calib, prep, progress)


def load_images(
    folder: str | os.PathLike,
    input_hw: tuple[int, int],
    num_calib: int,
    num_verify: int | None,
    group_pattern: str | None,
    progress: Progress = None,
) -> DetectionImages:
    folder = Path(folder)
    warnings: list[str] = []
    is_dataset = (folder / "labels").is_dir() or (folder / "annotations").is_dir()
    if is_dataset:
        from edgekit.detect.dataset import load_dataset

        data = load_dataset(folder)
        calib_paths = [s.path for s in data.train]
        val = list(data.val)
        if not val:
            warnings.append(f"{folder} has no validation split: verifying without labels")
        limit = len(val) if num_verify is None else num_verify
        val = val[: min(limit, 100 if num_verify is None else limit)]
        verify_paths = [s.path for s in val]
        truths = [ImageBoxes.make(s.boxes, s.labels) for s in val] if val else None
        source = f"{data.layout} dataset: train split calibrates, val split verifies (labelled)"
    else:
        from edgekit.host.calibration import split

        files = images.find_images(folder)
        if not files:
            raise EdgekitError(f"{folder}: no images found", "point --calib at scene images")
        rels = [f.relative_to(folder).as_posix() for f in files]
        sp = split(rels, group_pattern, num_verify)
        calib_paths = [files[i] for i in sp.calib]
        verify_paths = [files[i] for i in sp.verify]
        truths = None
        source = "image folder: sha1 split by group; verification without labels"
    # Spread calibration over the whole train split rather than its first files.
    if len(calib_paths) > num_calib:
        pick = np.linspace(0, len(calib_paths) - 1, num_calib).round().astype(int)
        calib_paths = [calib_paths[i] for i in pick]
    total = len(calib_paths) + len(verify_paths)
    unreadable: list[str] = []

    def read(paths, offset):
        """Letterboxed pixels of the readable ``paths``, their letterboxes and indices."""
        out, boxes, kept = [], [], []
        for k, p in enumerate(paths):
            try:
                rgb = images.load_rgb(p)
            except EdgekitError:  # skipped and counted, as for classifiers
                unreadable.append(str(Path(p).relative_to(folder)))
                continue
            img, lb = images.letterbox(rgb, input_hw, LETTERBOX_FILL)
            out.append(img)
            boxes.append(lb)
            kept.append(k)
            if progress:
                progress("loading images", offset + k + 1, total)
        h, w = input_hw
        return (np.stack(out) if out else np.zeros((0, h, w, 3), np.uint8)), boxes, kept

    calib, _, _ = read(calib_paths, 0)
    verify, letterboxes, kept = read(verify_paths, len(calib_paths))
    if not len(calib) and not len(verify) and unreadable:
        raise EdgekitError(
            f"{folder}: none of the {len(unreadable)} image files could be read",
            "check the files are valid jpg/png/bmp/webp images",
        )
    if not len(calib):
        raise EdgekitError(f"{folder}: no readable calibration image", "add images")
    verify_paths = [verify_paths[k] for k in kept]
    if truths is not None:
        truths = [truths[k] for k in kept] or None
    if unreadable:
        warnings.append(f"skipped {len(unreadable)} unreadable image file(s), e.g. {unreadable[0]}")
    if len(calib) < 100:
        warnings.append(f"only {len(calib)} calibration images (100-500 recommended)")
    stats = {
        "folder": str(folder),
        "found": total,
        "used": len(calib),
        "verify": len(verify),
        "unreadable": len(unreadable),
        "unreadable_files": unreadable[:10],
        "split": source,
        "verify_files": [str(Path(p).relative_to(folder)) for p in verify_paths],
        "resize": "letterbox",
        "fill": LETTERBOX_FILL,
        "synthetic": False,
    }
    return DetectionImages(calib, verify, letterboxes, truths, stats, warnings)
