"""Calibration and verification images: find, split, decode once, preprocess like the device.

Each image is decoded and resized once (Pillow, in a small thread pool: decoding releases the
GIL), with :mod:`edgekit.images` -- the same pixel path the device uses -- and kept as uint8
pixels; float conversion happens per batch.

The split (sha1 of each group key, near-duplicates on one side) is
:mod:`edgekit.host.calibration_split`'s.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from edgekit import images
from edgekit.errors import EdgekitError
from edgekit.host.calibration_split import Split, split  # noqa: F401  (re-exported)

Progress = Optional[Callable[[str, int, int], None]]  # (stage, done, total)

FEW_IMAGES = 100  # below this many calibration images the quantization ranges get noisy


@dataclass(frozen=True)
class Preprocessing:
    """How a photo becomes model input: ``size`` (height, width) in pixels, ``channels`` 1 or 3,
    ``color`` rgb|bgr, ``resize`` stretch|crop|pad, float ``range`` (lo, hi) for pixels 0..255."""

    size: tuple[int, int]
    channels: int = 3
    color: str = "rgb"
    resize: str = "stretch"
    range: tuple[float, float] = (0.0, 1.0)

    def pixels(self, rgb: np.ndarray) -> np.ndarray:
        """(H0, W0, 3) uint8 RGB photo -> (H, W, C) uint8 model pixels."""
        return images.prepare(rgb, self.size, self.resize, self.color, self.channels)

    def to_float(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 pixels (any shape) -> float32 in ``range``."""
        return images.to_float(pixels, self.range)


@dataclass
class ImageSet:
    """Decoded images. ``calib``/``verify``: (N, H, W, C) uint8. ``verify_classes``: class index
    per verification image when the folder is class-per-folder (else None), ``calib_classes``
    the same per calibration image; ``class_names``:
    the sorted top-level folder names; ``stats``: counts for the manifest."""

    calib: np.ndarray
    verify: np.ndarray
    verify_classes: np.ndarray | None = None
    class_names: list[str] | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    calib_classes: np.ndarray | None = None

    def representative(self, prep: Preprocessing, progress: Progress = None) -> Iterator[list]:
        """The converter's representative dataset: one [(1, H, W, C) float32] per image."""
        return representative(self.calib, prep, progress)


def representative(calib: np.ndarray, prep: Preprocessing, progress: Progress = None):
    """The converter's representative dataset over ``calib`` (N, H, W, C) uint8: one
    [(1, H, W, C) float32] per image, ``progress("calibrating", done, N)`` after each."""
    n = len(calib)
    for i in range(n):
        yield [prep.to_float(calib[i : i + 1])]
        if progress:
            progress("calibrating", i + 1, n)


def load_images(
    folder: str | os.PathLike,
    prep: Preprocessing,
    num_calib: int = 300,
    num_verify: int | None = None,
    group_pattern: str | None = None,
    progress: Progress = None,
    train_split: dict | None = None,
) -> ImageSet:
    """Find images below ``folder`` (recursive), split, decode and preprocess them.

    Args:
        num_calib: at most this many calibration images.
        num_verify: held-out images; default ``min(100, 20% of the files found)``; 0 disables.
        group_pattern: regex naming the original photo of each file (matched against the path
            relative to ``folder``), e.g. ``(?:apple|bana)[-_](\\d+)``.
        progress: called as ``progress("loading images", done, total)``.
        train_split: the model's split file (:func:`edgekit.groups.read_split`): its held-out
            photos verify, and none of them calibrates.

    Raises EdgekitError when the folder is missing or holds no readable image.
    """
    folder = Path(folder)
    files = images.find_images(folder)
    if not files:
        raise EdgekitError(
            f"{folder}: no images found (looked for {', '.join(images.IMAGE_EXTENSIONS)})",
            "point --calib at a folder of training-like photos",
        )
    rels = [f.relative_to(folder).as_posix() for f in files]
    held_out = None
    split_note = ""
    if train_split is not None:
        if train_split["held_out"] & set(rels):
            held_out = train_split["held_out"]
            split_note = f"; training's split from {Path(train_split['path']).name}"
        else:
            split_warning = (
                f"{train_split['path']} names none of the images in {folder}: splitting by "
                "group instead (held-out images may have been trained on)"
            )
    sp = split(rels, group_pattern, num_verify, held_out)
    calib_idx, verify_idx, num_verify = sp.calib, sp.verify, sp.num_verify

    # Class-per-folder: the first path component, when every image sits in a subfolder.
    tops = [r.split("/", 1)[0] if "/" in r else None for r in rels]
    class_names = sorted(set(tops)) if all(tops) and len(set(tops)) > 1 else None

    total = min(num_calib, len(calib_idx)) + len(verify_idx)
    done = [0]
    unreadable: list[str] = []

    def decode(idx: list[int], want: int) -> list[int]:
        """Decode candidates in order until ``want`` are readable; returns their indices."""
        ok: list[int] = []
        pos = 0
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            while len(ok) < want and pos < len(idx):
                chunk = idx[pos : pos + (want - len(ok))]
                pos += len(chunk)
                for i, px in zip(chunk, pool.map(_load, [files[i] for i in chunk])):
                    if px is None:
                        unreadable.append(rels[i])
                        continue
                    pixels[i] = prep.pixels(px)
                    ok.append(i)
                    done[0] += 1
                    if progress:
                        progress("loading images", done[0], total)
        return ok

    pixels: dict[int, np.ndarray] = {}
    verify_ok = decode(verify_idx, len(verify_idx))
    calib_ok = decode(calib_idx, num_calib)
    if not calib_ok and not verify_ok:
        raise EdgekitError(
            f"{folder}: none of the {len(unreadable)} image files could be read",
            "check the files are valid jpg/png/bmp/webp images",
        )
    if not calib_ok:
        raise EdgekitError(f"{folder}: no readable image left for calibration", "add images")
    h, w = prep.size
    empty = np.zeros((0, h, w, prep.channels), np.uint8)
    calib = np.stack([pixels[i] for i in calib_ok]) if calib_ok else empty
    verify = np.stack([pixels[i] for i in verify_ok]) if verify_ok else empty
    classes = calib_classes = None
    if class_names is not None:
        classes = np.array([class_names.index(tops[i]) for i in verify_ok], dtype=np.int64)
        calib_classes = np.array([class_names.index(tops[i]) for i in calib_ok], dtype=np.int64)
    warnings = []
    if train_split is not None and held_out is None:
        warnings.append(split_warning)
    if len(calib_ok) < FEW_IMAGES:
        warnings.append(
            f"only {len(calib_ok)} calibration images (100-500 recommended): "
            "quantization ranges may be off and accuracy may suffer"
        )
    if unreadable:
        warnings.append(f"skipped {len(unreadable)} unreadable image file(s), e.g. {unreadable[0]}")
    if num_verify > 0 and not verify_ok:
        warnings.append("no held-out images for verification (all images are in one group)")
    stats = {
        "folder": str(folder),
        "found": len(files),
        "used": len(calib_ok),
        "verify": len(verify_ok),
        "unreadable": len(unreadable),
        "unreadable_files": unreadable[:10],
        "groups": sp.groups,
        "group_pattern": group_pattern,
        "ungrouped": sp.ungrouped,
        "verify_groups": sp.verify_groups,
        # Relative paths of the held-out images, so anyone can re-measure on exactly them.
        "verify_files": [rels[i] for i in verify_ok],
        "split": (
            "the photos training held out" + split_note
            if held_out is not None
            else "deterministic by sha1 of the group key"
            + (" (group pattern, within each folder)" if group_pattern else " (one group per file)")
        )
        + "; verification images are never used for calibration",
        "split_file": train_split["path"] if held_out is not None else None,
        "synthetic": False,
    }
    if not verify_ok:
        classes = None
    return ImageSet(calib, verify, classes, class_names, stats, warnings, calib_classes)


def synthetic_images(prep: Preprocessing, num_calib: int = 300, seed: int = 0) -> ImageSet:
    """Uniform random pixels for calibration (no verification): a last resort, since ranges
    learned from noise are not those of real photos."""
    h, w = prep.size
    rng = np.random.default_rng(seed)
    calib = rng.integers(0, 256, size=(num_calib, h, w, prep.channels), dtype=np.uint8)
    empty = np.zeros((0, h, w, prep.channels), np.uint8)
    stats = {
        "folder": None,
        "found": 0,
        "used": num_calib,
        "verify": 0,
        "unreadable": 0,
        "synthetic": True,
        "split": "synthetic random pixels; no verification",
    }
    return ImageSet(
        calib,
        empty,
        stats=stats,
        warnings=[
            "calibrating on synthetic random images: int8 accuracy will suffer; pass --calib DIR"
        ],
    )


def _load(path: Path) -> np.ndarray | None:
    try:
        return images.load_rgb(path)
    except EdgekitError:
        return None
