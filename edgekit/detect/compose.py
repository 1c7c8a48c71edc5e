"""Compose a detection dataset from object photos pasted on procedural backgrounds.

Source: ``SOURCE/<class>/*.png`` (one folder per class, sorted names = class ids), RGBA photos
whose alpha marks the object (the apple-banana sample: photos with transparent borders after
augmentation). Each scene is a background made here (linear gradients, smooth value noise,
stripes and checks, pixel noise, unlabelled distractor shapes: nothing downloaded) with 1 to
``max_objects`` photos pasted at random positions and scales, randomly mirrored. A photo's box is
the bounding box of its pasted alpha mask (alpha >= 128), exact in scene pixels; photos are
placed so that they do not overlap (boxes' IoU 0), so every box is fully visible.

Split by ORIGINAL photo: ``group_pattern`` names the original in each file name (for
apple-banana ``(?:apple|bana)[-_](\\d+)``) and the group key includes the class folder, so
``apple_7`` and ``bana_7`` are different photos. Per class, ``val_fraction`` of the originals
(at least one, never all) and all their augmented variants go to validation scenes only; the
train scenes never see them. Deterministic for a seed.

Output (written to a temporary sibling, renamed into place)::

    OUT/images/{train,val}/scene_00000.jpg
    OUT/labels/{train,val}/scene_00000.txt   YOLO: "class cx cy w h" normalized, one per object
    OUT/annotations/instances_{train,val}.json   the same boxes in COCO json (category_id = class)
    OUT/data.yaml, OUT/classes.txt              class names (Ultralytics layout and plain)
    OUT/compose.json                            settings, which originals went where, counts
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from edgekit import images
from edgekit.atomic import atomic_dir
from edgekit.errors import EdgekitError
from edgekit.groups import compile_pattern, group_key

ALPHA_OPAQUE = 128  # alpha at or above this counts as object when measuring the box


@dataclass(frozen=True)
class SourcePhoto:
    path: Path
    label: int
    group: str  # "<class folder>/<original>": apple_7 and bana_7 differ


def scan_sources(source: str | os.PathLike, group_pattern: str | None):
    """(class names, photos) of ``SOURCE/<class>/*``; EdgekitError if fewer than 1 class."""
    root = Path(source)
    if not root.is_dir():
        raise EdgekitError(f"{root}: no such folder", "pass a folder with one sub-folder per class")
    regex = compile_pattern(group_pattern)
    names, photos = [], []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = images.find_images(d)
        if not files:
            continue
        label = len(names)
        names.append(d.name)
        for f in files:
            key = group_key(f.name, regex)
            photos.append(SourcePhoto(f, label, f"{d.name}/{key if key is not None else f.name}"))
    if not names:
        raise EdgekitError(f"{root}: no images in class sub-folders", "e.g. SOURCE/apple/*.png")
    return names, photos


def split_groups(photos: list[SourcePhoto], val_fraction: float, seed: int):
    """Per class, choose the validation originals. Returns (train photos, val photos, {class id:
    sorted val groups})."""
    if not 0.0 < val_fraction < 1.0:
        raise EdgekitError(f"val fraction {val_fraction} must be between 0 and 1", "e.g. 0.25")
    rng = random.Random(seed)
    train, val, chosen = [], [], {}
    for label in sorted({p.label for p in photos}):
        groups = sorted({p.group for p in photos if p.label == label})
        if len(groups) < 2:
            raise EdgekitError(
                f"class {label} has a single original photo ({groups[0]}): none can be held out",
                "add photos, or fix --group-pattern so that it tells originals apart",
            )
        rng.shuffle(groups)
        n = min(len(groups) - 1, max(1, round(val_fraction * len(groups))))
        chosen[label] = sorted(groups[:n])
        for p in photos:
            if p.label == label:
                (val if p.group in chosen[label] else train).append(p)
    return train, val, chosen


def load_cutout(path: Path) -> Image.Image:
    """RGBA image cropped to its opaque part (a photo without alpha is opaque everywhere)."""
    try:
        with Image.open(path) as img:
            rgba = img.convert("RGBA")
    except (OSError, ValueError, SyntaxError) as e:
        raise EdgekitError(f"{path}: cannot read image ({e})", "is it a valid image?") from None
    bbox = _opaque_bbox(np.asarray(rgba)[..., 3])
    if bbox is None:
        raise EdgekitError(f"{path}: fully transparent", "remove it from the source folder")
    return rgba.crop(bbox)


def _opaque_bbox(alpha: np.ndarray):
    ys, xs = np.nonzero(alpha >= ALPHA_OPAQUE)
    if not len(xs):
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def background(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A random procedural background (H, W, 3): gradient, value noise, or stripes/checks,
    with pixel noise and a few unlabelled distractor shapes."""
    kind = rng.integers(3)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    if kind == 0:  # linear gradient at a random angle
        a = rng.uniform(0, 2 * np.pi)
        t = xx * np.cos(a) + yy * np.sin(a)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
    elif kind == 1:  # smooth value noise: a coarse random grid, bicubically upsampled
        cells = rng.integers(3, 9)
        coarse = (rng.random((cells, cells)) * 255).astype(np.uint8)
        t = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC)) / 255.0
    else:  # stripes or checks
        period = rng.uniform(8, 48)
        a = rng.uniform(0, np.pi)
        u = xx * np.cos(a) + yy * np.sin(a)
        t = (np.floor(u / period) % 2).astype(np.float32)
        if rng.random() < 0.5:
            v = -xx * np.sin(a) + yy * np.cos(a)
            t = np.abs(t - (np.floor(v / period) % 2))
    rgb = c0 + (c1 - c0) * t[..., None]
    rgb += rng.normal(0, rng.uniform(2, 14), rgb.shape)
    img = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    from PIL import ImageDraw

    draw = ImageDraw.Draw(img)
    for _ in range(rng.integers(0, 5)):
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        w, h = rng.uniform(6, width / 4), rng.uniform(6, height / 4)
        fill = tuple(int(v) for v in rng.uniform(0, 255, 3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape([x0, y0, x0 + w, y0 + h], fill=fill)
    return img


def compose_scene(rng, cutouts, width, height, max_objects, scale):
    """One scene: (RGB image, [(class id, (x0, y0, x1, y1)), ...]) with exact, disjoint boxes.

    ``cutouts``: list of (class id, RGBA cut-out); ``scale``: (min, max) of an object's longer
    side as a fraction of the scene's shorter side.
    """
    img = background(rng, width, height)
    objects: list[tuple[int, tuple[int, int, int, int]]] = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        label, cut = cutouts[int(rng.integers(len(cutouts)))]
        for _attempt in range(20):
            side = rng.uniform(*scale) * min(width, height)
            f = side / max(cut.size)
            w, h = max(4, round(cut.width * f)), max(4, round(cut.height * f))
            if w >= width or h >= height:
                continue
            x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            piece = cut.resize((w, h), Image.BILINEAR)
            if rng.random() < 0.5:
                piece = piece.transpose(Image.FLIP_LEFT_RIGHT)
            bbox = _opaque_bbox(np.asarray(piece)[..., 3])
            if bbox is None:
                continue
            box = (x + bbox[0], y + bbox[1], x + bbox[2], y + bbox[3])
            # Paste only where the whole piece (transparent margin too) overlaps no object.
            rect = (x, y, x + w, y + h)
            if any(_overlap(rect, b) for _, b in objects):
                continue
            img.paste(piece, (x, y), piece)
            objects.append((label, box))
            break
    return img, objects


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def compose_dataset(
    source: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    train_scenes: int = 400,
    val_scenes: int = 100,
    size: tuple[int, int] = (320, 240),
    max_objects: int = 3,
    scale: tuple[float, float] = (0.2, 0.5),
    val_fraction: float = 0.25,
    group_pattern: str | None = r"(?:apple|bana)[-_](\d+)",
    seed: int = 0,
    quality: int = 90,
    force: bool = False,
) -> dict:
    """Compose the dataset (see the module docstring); returns the summary also written to
    ``compose.json``. ``size`` is (width, height) of a scene."""
    width, height = (int(v) for v in size)
    if not (32 <= width <= 4096 and 32 <= height <= 4096):
        raise EdgekitError(f"scene size {width}x{height} out of range", "use 32..4096 pixels")
    if train_scenes < 1 or val_scenes < 1:
        raise EdgekitError("need at least 1 train and 1 validation scene")
    if not 1 <= max_objects <= 20:
        raise EdgekitError(f"max objects {max_objects} out of range", "use 1..20")
    lo, hi = (float(v) for v in scale)
    if not (np.isfinite(lo) and np.isfinite(hi) and 0.02 <= lo <= hi <= 0.95):
        raise EdgekitError(f"scale {lo:g},{hi:g} out of range", "use MIN,MAX within 0.02..0.95")
    if not 0 <= seed < 2**32:
        raise EdgekitError(f"seed {seed} out of range", "use 0..4294967295")
    if not 1 <= quality <= 100:
        raise EdgekitError(f"JPEG quality {quality} out of range", "use 1..100")
    names, photos = scan_sources(source, group_pattern)
    train_p, val_p, val_groups = split_groups(photos, val_fraction, seed)
    rng = np.random.default_rng(seed)
    summary: dict = {
        "source": str(source),
        "classes": names,
        "size": [width, height],
        "seed": seed,
        "max_objects": max_objects,
        "scale": [lo, hi],
        "group_pattern": group_pattern,
        "val_originals": {names[c]: g for c, g in val_groups.items()},
        "train_originals": {
            names[c]: sorted({p.group for p in train_p if p.label == c}) for c in val_groups
        },
        "splits": {},
    }
    # --force replaces a dataset composed before (compose.json), never a folder of photos.
    with atomic_dir(Path(out_dir), force=force, marker="compose.json") as tmp:
        for split, pool, count in (("train", train_p, train_scenes), ("val", val_p, val_scenes)):
            cutouts = [(p.label, load_cutout(p.path)) for p in pool]
            (tmp / "images" / split).mkdir(parents=True)
            (tmp / "labels" / split).mkdir(parents=True)
            coco = {"images": [], "annotations": [], "categories": []}
            coco["categories"] = [{"id": i, "name": n} for i, n in enumerate(names)]
            counts = [0] * len(names)
            for k in range(count):
                img, objects = compose_scene(rng, cutouts, width, height, max_objects, (lo, hi))
                stem = f"scene_{k:05d}"
                img.save(tmp / "images" / split / f"{stem}.jpg", quality=quality)
                lines = []
                coco["images"].append(
                    {"id": k, "file_name": f"{stem}.jpg", "width": width, "height": height}
                )
                for label, (x0, y0, x1, y1) in objects:
                    counts[label] += 1
                    cx, cy = (x0 + x1) / 2 / width, (y0 + y1) / 2 / height
                    bw, bh = (x1 - x0) / width, (y1 - y0) / height
                    lines.append(f"{label} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}\n")
                    coco["annotations"].append(
                        {
                            "id": len(coco["annotations"]),
                            "image_id": k,
                            "category_id": label,
                            "bbox": [x0, y0, x1 - x0, y1 - y0],
                            "area": (x1 - x0) * (y1 - y0),
                            "iscrowd": 0,
                        }
                    )
                (tmp / "labels" / split / f"{stem}.txt").write_text("".join(lines), "utf-8")
            (tmp / "annotations").mkdir(exist_ok=True)
            (tmp / "annotations" / f"instances_{split}.json").write_text(json.dumps(coco), "utf-8")
            summary["splits"][split] = {
                "scenes": count,
                "photos": len(pool),
                "objects": dict(zip(names, counts)),
            }
        yaml_names = "".join(f"  {i}: {n}\n" for i, n in enumerate(names))
        (tmp / "data.yaml").write_text(
            f"path: .\ntrain: images/train\nval: images/val\nnames:\n{yaml_names}", "utf-8"
        )
        (tmp / "classes.txt").write_text("".join(f"{n}\n" for n in names), "utf-8")
        (tmp / "compose.json").write_text(json.dumps(summary, indent=2) + "\n", "utf-8")
    summary["out"] = str(out_dir)
    return summary
