"""Object detection: result records, head decoders, class-aware NMS and the Detector (numpy only,
no TensorFlow: this is the device path)."""

from edgekit.detect.decoders import available_decoders, get_decoder, guess_decoder
from edgekit.detect.detector import Detector
from edgekit.detect.nms import batched_nms, nms
from edgekit.detect.records import Detection, Detections

__all__ = [
    "Detection", "Detections", "Detector", "available_decoders", "batched_nms", "get_decoder",
    "guess_decoder", "nms",
]  # fmt: skip
