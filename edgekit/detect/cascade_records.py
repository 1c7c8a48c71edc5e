"""What a cascade reports: a detection with its crop's classes and the detections of one frame
with the time spent on the detector, the crops' invokes and the cropping
(:mod:`edgekit.detect.cascade`)."""

from __future__ import annotations

from dataclasses import dataclass

from edgekit.detect.records import Detection, Detections


@dataclass(frozen=True)
class ClassifiedDetection(Detection):
    """A detection and what the classifier said about its crop (best first; empty when the
    crop was not classified or no class reached the classifier's threshold)."""

    classes: tuple = ()

    @property
    def species(self) -> str:
        """The classifier's top label, else the detector's."""
        return self.classes[0].label if self.classes else self.label

    def to_dict(self) -> dict:
        return {**super().to_dict(), "classes": [c.to_dict() for c in self.classes]}


@dataclass(frozen=True)
class CascadeDetections(Detections):
    """Detections of one frame with their crops' classes. ``inference_ms`` is every invoke of
    the frame (detector + crops), ``detect_ms`` the detector's invoke, ``classify_ms`` the
    crops' invokes, ``crop_ms`` cutting and preprocessing the crops; ``crops`` how many were
    classified."""

    detect_ms: float = 0.0
    classify_ms: float = 0.0
    crop_ms: float = 0.0
    crops: int = 0

    def species_counts(self) -> dict[str, int]:
        """Objects per species (the classifier's top label; the detector's label for an
        unclassified one), labels sorted."""
        out: dict[str, int] = {}
        for d in self.detections:
            name = d.species if isinstance(d, ClassifiedDetection) else d.label
            out[name] = out.get(name, 0) + 1
        return dict(sorted(out.items()))

    def to_dict(self) -> dict:
        return {**super().to_dict(), "detect_ms": self.detect_ms,
                "classify_ms": self.classify_ms, "crop_ms": self.crop_ms,
                "crops": self.crops}  # fmt: skip
