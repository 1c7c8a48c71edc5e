"""Detection result records: small, immutable, picklable (pycoral's ``adapters.detect`` style).

Boxes are ``(x0, y0, x1, y1)`` in pixels of the ORIGINAL image (before any resize or letterbox),
x to the right and y down, with ``0 <= x0 <= x1 <= width`` and ``0 <= y0 <= y1 <= height``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Detection:
    """One object: ``id`` is the model's own class index (COCO 80 contiguous ids for Ultralytics
    YOLO, the 90-id map of Coral's coco_labels.txt for its SSDs), ``score`` in 0..1."""

    id: int
    label: str
    score: float
    box: tuple[float, float, float, float]

    def to_dict(self) -> dict:
        return {"id": self.id, "label": self.label, "score": self.score, "box": list(self.box)}


@dataclass(frozen=True)
class Detections:
    """Every detection of one image, best score first.

    ``inference_ms`` is invoke() alone, ``preprocess_ms`` resize/letterbox + quantize + the write
    into the input tensor, ``decode_ms`` dequantize + decode + NMS + box mapping.
    ``image_size`` is the original image's (width, height) in pixels.
    """

    detections: tuple[Detection, ...]
    inference_ms: float
    preprocess_ms: float
    decode_ms: float
    image_size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.detections)

    def __iter__(self):
        return iter(self.detections)

    def counts(self) -> dict[str, int]:
        """Detections per label, e.g. ``{"car": 3, "person": 1}`` (labels sorted)."""
        out: dict[str, int] = {}
        for d in self.detections:
            out[d.label] = out.get(d.label, 0) + 1
        return dict(sorted(out.items()))

    def to_dict(self) -> dict:
        return {
            "detections": [d.to_dict() for d in self.detections],
            "inference_ms": self.inference_ms,
            "preprocess_ms": self.preprocess_ms,
            "decode_ms": self.decode_ms,
            "image_size": list(self.image_size),
        }
