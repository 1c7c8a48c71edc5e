#!/usr/bin/env python3
"""Compose a detection dataset (YOLO txt + COCO json) from the apple/banana photos.

Photos from SOURCE/<class>/ (RGBA: the alpha is the cut-out) are pasted at random positions
and scales on procedural backgrounds, with exact boxes; train and val scenes use disjoint
ORIGINAL photos (all augmented variants of one photo stay on one side). Deterministic for a
seed. See edgekit/detect/compose.py for the details and the output layout.

    .venv/bin/python scripts/compose_detection_dataset.py -o out/scenes \\
        [--source examples/apple-banana] [--train 400] [--val 100] [--size 320x240] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgekit.detect.compose import compose_dataset  # noqa: E402
from edgekit.errors import EdgekitError  # noqa: E402


def _pair(text: str, sep: str, kind=float):
    try:
        a, b = (kind(v) for v in text.lower().split(sep))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected A{sep}B") from None
    return a, b


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", required=True, help="output folder (must not exist)")
    p.add_argument("--source", default=str(ROOT / "examples" / "apple-banana"))
    p.add_argument("--train", type=int, default=400, help="training scenes")
    p.add_argument("--val", type=int, default=100, help="held-out scenes")
    p.add_argument("--size", default="320x240", type=lambda t: _pair(t, "x", int), help="WxH")
    p.add_argument("--max-objects", type=int, default=3)
    p.add_argument(
        "--scale",
        default="0.2,0.5",
        type=lambda t: _pair(t, ","),
        help="object's longer side as a fraction of the scene's shorter side: MIN,MAX",
    )
    p.add_argument("--val-fraction", type=float, default=0.25, help="held-out originals/class")
    p.add_argument("--group-pattern", default=r"(?:apple|bana)[-_](\d+)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = p.parse_args(argv)
    try:
        summary = compose_dataset(
            args.source,
            args.output,
            train_scenes=args.train,
            val_scenes=args.val,
            size=args.size,
            max_objects=args.max_objects,
            scale=args.scale,
            val_fraction=args.val_fraction,
            group_pattern=args.group_pattern,
            seed=args.seed,
            force=args.force,
        )
    except EdgekitError as e:
        print(f"Error: {e}", file=sys.stderr)
        return e.exit_code
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    for split, info in summary["splits"].items():
        objects = ", ".join(f"{n} {k}" for k, n in info["objects"].items())
        print(f"{split}: {info['scenes']} scenes from {info['photos']} photos ({objects})")
    held = "; ".join(f"{k}: {', '.join(v)}" for k, v in summary["val_originals"].items())
    print(f"held-out originals: {held}")
    print(f"wrote {summary['out']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
