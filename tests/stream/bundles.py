"""Small real bundles for hot reload, signing and rollout tests: Coral's MobileNet v1 0.25 128
(0.5 MB) with the ImageNet labels, each version prefixed (``a:macaw``, ``b:macaw``), so every
result line says which bundle produced it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from edgekit.manifest import InputSpec, Manifest, OutputSpec

CORAL = Path(__file__).resolve().parents[1] / "data" / "coral"
MODEL = CORAL / "mobilenet_v1_0.25_128_quant.tflite"


def make_bundle(dest: Path, version: str, extra: bytes = b"", edgetpu: bool = False) -> Path:
    """A classifier bundle whose labels read ``<version>:<imagenet label>``; ``extra`` bytes go
    into ``notes.bin`` (a bigger bundle); ``edgetpu`` adds the compiled twin."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(MODEL, dest / "model_int8.tflite")
    if edgetpu:
        shutil.copy(CORAL / "mobilenet_v1_0.25_128_quant_edgetpu.tflite",
                    dest / "model_int8_edgetpu.tflite")  # fmt: skip
    names = (CORAL / "imagenet_labels.txt").read_text().splitlines()
    m = Manifest(
        name=f"tiny-{version}",
        input=InputSpec((1, 128, 128, 3), "uint8", 0.0078125, 128, "rgb", (-1.0, 1.0)),
        output=OutputSpec((1, 1001), "uint8", 0.00390625, 0),
        models={
            "cpu": "model_int8.tflite",
            "edgetpu_log": None,
            "edgetpu": "model_int8_edgetpu.tflite" if edgetpu else None,
        },  # fmt: skip
        labels=tuple(f"{version}:{n}" for n in names),
    )
    (dest / "edgekit.json").write_text(json.dumps(m.to_dict()))
    if extra:
        (dest / "notes.bin").write_bytes(extra)
    return dest


def version_of(line: dict) -> str | None:
    """``a`` for a result line of bundle a (its top class label's prefix)."""
    classes = line.get("classes") or []
    return classes[0]["label"].split(":", 1)[0] if classes else None
