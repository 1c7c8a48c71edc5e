"""Read a detection dataset in YOLO txt or COCO json layout, validating every box.

YOLO (Ultralytics) layout::

    DATA/images/<split>/*.jpg      DATA/labels/<split>/<same stem>.txt: "class cx cy w h" per
    DATA/data.yaml (names:) or DATA/classes.txt (one name per line)   line, normalized to 0..1

COCO layout::

    DATA/annotations/instances_<split>.json  ("images", "annotations" with "bbox" [x, y, w, h]
    DATA/images/<split>/<file_name>           in pixels, "categories"; category ids sorted are
                                              the class ids 0..n-1)

Splits: ``train`` and ``val`` (``valid``/``validation``/``test`` are accepted for val). Every
image needs its label file (an empty .txt for an image without objects): a missing one is far
more often a mistake than a background image. Anything wrong (no images, a missing label file, a
class id without a name, a box out of the image, NaN/inf, a zero-size box, malformed lines)
raises one EdgekitError naming the file (and line) and what to do.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from edgekit import images
from edgekit.errors import EdgekitError

VAL_NAMES = ("val", "valid", "validation", "test")
TOLERANCE = 1e-3  # normalized coordinates may exceed 0..1 by rounding in exporters


@dataclass(frozen=True)
class Scene:
    """One image: ``boxes`` (M, 4) float32 (x0, y0, x1, y1) in pixels, ``labels`` (M,) int."""

    path: Path
    boxes: np.ndarray
    labels: np.ndarray
    width: int
    height: int


@dataclass(frozen=True)
class DetectionDataset:
    root: Path
    layout: str  # "yolo" | "coco"
    names: tuple[str, ...]
    train: tuple[Scene, ...]
    val: tuple[Scene, ...]  # empty when the dataset has no validation split

    def counts(self) -> dict:
        def per(scenes):
            c = np.bincount(
                np.concatenate([s.labels for s in scenes] + [np.zeros(0, int)]).astype(int),
                minlength=len(self.names),
            )
            return {n: int(c[i]) for i, n in enumerate(self.names)}

        return {
            "train": {"images": len(self.train), "objects": per(self.train)},
            "val": {"images": len(self.val), "objects": per(self.val)},
        }


def load_dataset(root: str | os.PathLike) -> DetectionDataset:
    """Read ``root`` (YOLO if it has ``labels/``, COCO if it has ``annotations/*.json``)."""
    root = Path(root)
    if not root.is_dir():
        raise EdgekitError(f"{root}: no such dataset folder", "pass the dataset's top folder")
    if (root / "labels").is_dir():
        return _load_yolo(root)
    if (root / "annotations").is_dir():
        return _load_coco(root)
    raise EdgekitError(
        f"{root}: neither a YOLO (labels/) nor a COCO (annotations/*.json) dataset",
        "see `edgekit train --help` for the layouts (scripts/compose_detection_dataset.py "
        "makes one)",
    )


def _split_dirs(parent: Path) -> dict[str, Path]:
    found = {}
    if (parent / "train").is_dir():
        found["train"] = parent / "train"
    for name in VAL_NAMES:
        if (parent / name).is_dir():
            found["val"] = parent / name
            break
    return found


def _names_yolo(root: Path) -> tuple[str, ...]:
    yaml_path, txt_path = root / "data.yaml", root / "classes.txt"
    if yaml_path.is_file():
        names = _yaml_names(_read_text(yaml_path), yaml_path)
    elif txt_path.is_file():
        names = [ln.strip() for ln in _read_text(txt_path).splitlines() if ln.strip()]
    else:
        raise EdgekitError(
            f"{root}: no class names (data.yaml or classes.txt)",
            "write classes.txt with one class name per line, in class-id order",
        )
    if not names:
        raise EdgekitError(f"{root}: the class name list is empty", "name every class")
    return _one_line_names(tuple(names), yaml_path if yaml_path.is_file() else txt_path)


def _one_line_names(names: tuple[str, ...], where: Path) -> tuple[str, ...]:
    """Class names become labels.txt lines: an empty one (``''`` in data.yaml, ``"name": ""``
    in COCO) or one holding a line break would shift every later label."""
    for k, n in enumerate(names):
        if not n.strip() or n.splitlines() != [n]:
            raise EdgekitError(
                f"{where}: class {k} is named {n!r}: a label needs a name on one line",
                "name every class, without line breaks",
            )
    return names


def _yaml_names(text: str, path: Path) -> list[str]:
    """``names:`` of an Ultralytics data.yaml: a flow list ``[a, b]``, a block list (``- a``) or
    a block mapping (``0: a``). Only this key is read (no YAML library needed)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^names\s*:\s*(.*)$", line)
        if not m:
            continue
        rest = m.group(1).split("#")[0].strip()
        if rest.startswith("["):
            return [v.strip().strip("'\"") for v in rest.strip("[]").split(",") if v.strip()]
        items: dict[int, str] = {}
        for follow in lines[i + 1 :]:
            if not follow.strip() or follow.lstrip().startswith("#"):
                continue
            if not follow.startswith((" ", "\t", "-")):
                break
            body = follow.strip()
            if body.startswith("-"):
                items[len(items)] = body[1:].strip().strip("'\"")
                continue
            km = re.match(r"^(\d+)\s*:\s*(.+)$", body)
            if not km:
                raise EdgekitError(f"{path}: cannot read names entry {body!r}", "use '  0: apple'")
            items[int(km.group(1))] = km.group(2).strip().strip("'\"")
        if sorted(items) != list(range(len(items))):
            raise EdgekitError(f"{path}: class ids in names are not 0..n-1", "number them 0, 1...")
        return [items[k] for k in range(len(items))]
    raise EdgekitError(f"{path}: no 'names:' entry", "list the class names under names:")


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise EdgekitError(f"{path}: not a regular file", "replace it with a text file")
    try:
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise EdgekitError(f"{path}: cannot read ({e})", "is it a UTF-8 text file?") from None


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, ValueError, SyntaxError) as e:
        raise EdgekitError(f"{path}: cannot read image ({e})", "remove or replace it") from None


def _check_box(where: str, label: int, n_classes: int, box, width: int, height: int):
    if not all(math.isfinite(v) for v in box):
        raise EdgekitError(f"{where}: box {list(box)} is not finite", "fix or remove the line")
    if not 0 <= label < n_classes:
        raise EdgekitError(
            f"{where}: class id {label} but only {n_classes} class names",
            "fix the class id or add its name",
        )
    x0, y0, x1, y1 = box
    tol_x, tol_y = TOLERANCE * width, TOLERANCE * height
    if x0 < -tol_x or y0 < -tol_y or x1 > width + tol_x or y1 > height + tol_y:
        raise EdgekitError(
            f"{where}: box {[round(v, 2) for v in box]} lies outside the {width}x{height} image",
            "boxes must lie within the image (YOLO: normalized 0..1)",
        )
    if x1 - x0 < 1 or y1 - y0 < 1:
        raise EdgekitError(f"{where}: box {list(box)} is smaller than a pixel", "remove the line")


def _scene(path: Path, rows: list[tuple[int, list[float]]], width, height) -> Scene:
    boxes = [np.clip(b, 0, [width, height, width, height]) for _, b in rows]
    return Scene(
        path,
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray([lab for lab, _ in rows], np.int64),
        width,
        height,
    )


def _load_yolo(root: Path) -> DetectionDataset:
    names = _names_yolo(root)
    splits = _split_dirs(root / "images")
    if "train" not in splits:
        raise EdgekitError(f"{root}: no images/train folder", "put training images there")
    out = {}
    for split, folder in splits.items():
        label_dir = root / "labels" / folder.name
        scenes = []
        for img in images.find_images(folder):
            txt = label_dir / img.relative_to(folder).with_suffix(".txt")
            if not txt.exists():
                raise EdgekitError(
                    f"{img}: no label file {txt}",
                    "write one (an empty .txt for an image without objects)",
                )
            width, height = _image_size(img)
            rows = []
            for n, line in enumerate(_read_text(txt).splitlines(), start=1):
                if not line.strip():
                    continue
                parts = line.split()
                where = f"{txt}:{n}"
                try:
                    if len(parts) != 5:
                        raise ValueError
                    label, cx, cy, w, h = int(parts[0]), *(float(v) for v in parts[1:])
                except ValueError:
                    raise EdgekitError(
                        f"{where}: expected 'class cx cy w h', got {line.strip()[:60]!r}",
                        "one object per line, coordinates normalized to 0..1",
                    ) from None
                box = [(cx - w / 2) * width, (cy - h / 2) * height]
                box += [(cx + w / 2) * width, (cy + h / 2) * height]
                _check_box(where, label, len(names), box, width, height)
                rows.append((label, box))
            scenes.append(_scene(img, rows, width, height))
        if not scenes:
            raise EdgekitError(f"{folder}: no images", "put .jpg/.png images there")
        out[split] = tuple(scenes)
    return DetectionDataset(root, "yolo", names, out["train"], out.get("val", ()))


def _load_coco(root: Path) -> DetectionDataset:
    ann_dir = root / "annotations"
    files = {}
    for split in ("train", *VAL_NAMES):
        p = ann_dir / f"instances_{split}.json"
        if p.exists():
            files.setdefault("train" if split == "train" else "val", p)
    if "train" not in files:
        raise EdgekitError(f"{ann_dir}: no instances_train.json", "name the training file so")
    names: tuple[str, ...] | None = None
    out = {}
    for split, path in files.items():
        try:
            doc = json.loads(_read_text(path))
            cats = sorted((int(c["id"]), str(c["name"])) for c in doc["categories"])
            imgs = {int(i["id"]): i for i in doc["images"]}
            anns = doc["annotations"]
            if not isinstance(anns, list):  # "annotations": false raised in the loop below
                raise TypeError(f"annotations is {type(anns).__name__}, not a list")
        except (ValueError, KeyError, TypeError) as e:
            raise EdgekitError(f"{path}: not a COCO detection file ({e})", "check it") from None
        split_names = tuple(n for _, n in cats)
        if names is not None and split_names != names:
            raise EdgekitError(f"{path}: other categories than the train file", "use the same")
        names = split_names
        if not names:
            raise EdgekitError(f"{path}: no categories", "list the classes under categories")
        _one_line_names(names, path)
        class_of = {cid: k for k, (cid, _) in enumerate(cats)}
        rows: dict[int, list] = {i: [] for i in imgs}
        for a in anns:
            try:
                iid, cid = int(a["image_id"]), int(a["category_id"])
                x, y, w, h = (float(v) for v in a["bbox"])
            except (KeyError, TypeError, ValueError):
                raise EdgekitError(f"{path}: malformed annotation {a!r:.80}", "fix it") from None
            if iid not in imgs:
                raise EdgekitError(f"{path}: annotation for unknown image id {iid}", "fix it")
            rows[iid].append((class_of.get(cid, -1), [x, y, x + w, y + h]))
        folder = _split_dirs(root / "images").get(split, root / "images" / split)
        scenes = []
        for iid in sorted(imgs):
            img = folder / str(imgs[iid].get("file_name", ""))
            if not img.is_file():
                raise EdgekitError(f"{path}: image {img} not found", "check file_name and images/")
            width, height = _image_size(img)
            for label, box in rows[iid]:
                _check_box(f"{path} (image {img.name})", label, len(names), box, width, height)
            scenes.append(_scene(img, rows[iid], width, height))
        if not scenes:
            raise EdgekitError(f"{path}: no images", "list the images under images")
        out[split] = tuple(scenes)
    return DetectionDataset(root, "coco", names, out["train"], out.get("val", ()))
