"""``ssd-postprocess``: outputs of the ``TFLite_Detection_PostProcess`` custom op (TF1/TF2 Object
Detection API exports, Coral's SSDs): boxes [1, N, 4] (ymin, xmin, ymax, xmax normalized to the
input), classes [1, N], scores [1, N], count [1], float32, NMS already done. TF1 and TF2
exporters order the four model outputs differently, so their roles come from the graph (the op's
own output list is always boxes, classes, scores, count), else from names; never from position.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from edgekit.detect.heads import POSTPROCESS_OP, Decoder, HeadIO, OutputTensor

_SSD_ROLES = ("boxes", "classes", "scores", "count")


class SsdPostprocess(Decoder):
    name = "ssd-postprocess"
    letterbox = False  # Coral's and TF's SSD pipelines resize without keeping the aspect
    value_range = None

    def __init__(self, io: HeadIO, params: dict[str, Any] | None = None):
        super().__init__(io, params)
        by_index = {o.index: o for o in io.outputs}
        if io.postprocess and all(i in by_index for i in io.postprocess[:4]):
            roles = dict(zip(_SSD_ROLES, io.postprocess))
        else:
            roles = _ssd_roles_by_name(io.outputs)
            if roles is None:
                raise self.refuse(
                    "no TFLite_Detection_PostProcess op feeds the outputs and their names do not "
                    "say which is boxes, classes, scores and count"
                )
        shapes = {r: by_index[i].shape for r, i in roles.items()}
        n = shapes["boxes"][1] if len(shapes["boxes"]) == 3 else -1
        if (
            shapes["boxes"] != (1, n, 4)
            or shapes["classes"] != (1, n)
            or shapes["scores"] != (1, n)
            or math.prod(shapes["count"]) != 1
        ):
            raise self.refuse(f"unexpected output shapes {shapes}")
        self.roles = roles
        self.tensors = {r: by_index[i] for r, i in roles.items()}

    def _decode(self, raw, threshold, iou, max_detections):
        t = self.tensors
        boxes = t["boxes"].dequantize(raw[self.roles["boxes"]]).reshape(-1, 4)
        classes = t["classes"].dequantize(raw[self.roles["classes"]]).reshape(-1)
        scores = t["scores"].dequantize(raw[self.roles["scores"]]).reshape(-1)
        count = float(t["count"].dequantize(raw[self.roles["count"]]).reshape(-1)[0])
        n = int(min(max(count, 0), boxes.shape[0])) if math.isfinite(count) else 0
        ok = np.isfinite(scores[:n]) & (scores[:n] >= threshold) & np.isfinite(classes[:n])
        ok &= np.isfinite(boxes[:n]).all(axis=1) & (np.abs(classes[:n]) < 2**31)
        keep = np.nonzero(ok)[0]
        keep = keep[np.argsort(-scores[keep], kind="stable")][:max_detections]
        b = boxes[keep].astype(np.float64)  # ymin, xmin, ymax, xmax in 0..1
        h, w = self.input_h, self.input_w
        xyxy = np.stack([b[:, 1] * w, b[:, 0] * h, b[:, 3] * w, b[:, 2] * h], axis=1)
        return xyxy, scores[keep].astype(np.float64), classes[keep].astype(np.int64)


def _ssd_roles_by_name(outputs: tuple[OutputTensor, ...]) -> dict[str, int] | None:
    """TF1 names (``TFLite_Detection_PostProcess``, ``:1``, ``:2``, ``:3``) or descriptive names
    (``detection_boxes``...); never the position in the output list alone."""
    roles: dict[str, int] = {}
    for o in outputs:
        name = o.name.lower()
        if name.startswith(POSTPROCESS_OP.lower()):
            suffix = name.rsplit(":", 1)[1] if ":" in name else "0"
            if suffix in ("0", "1", "2", "3"):
                roles[_SSD_ROLES[int(suffix)]] = o.index
            continue
        for role, words in (
            ("boxes", ("box",)), ("classes", ("class",)), ("scores", ("score",)),
            ("count", ("num_detections", "count")),
        ):  # fmt: skip
            if any(w in name for w in words):
                roles[role] = o.index
    return roles if len(roles) == 4 and len(set(roles.values())) == 4 else None
