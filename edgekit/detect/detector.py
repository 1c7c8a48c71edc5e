"""Object detection on a Runner: letterbox/stretch, quantize, invoke, decode, undo the letterbox.

``Detector(model)`` takes a bundle directory (task, decoder and params from its edgekit.json), a
``.tflite`` or an ``_edgetpu.tflite`` (decoder guessed from the graph and output shapes,
:func:`edgekit.detect.decoders.guess_decoder`). Preprocessing is shared with classification
(:func:`edgekit.classify.make_quantizer`): pixels -> the float range the model was trained on
(the bundle's ``input.range``; for a bare YOLO export Ultralytics' 0..1; for a bare SSD the range
its input tensor covers) -> the input tensor's own scale and zero point.

Stateful models (Google's AutoML video SSDs: LSTM state inputs ``raw_inputs/init_lstm_c`` and the
matching outputs ``raw_outputs/lstm_c``) get each state output fed back into its input on the
next call; the state starts at zero and :meth:`Detector.reset` restarts it (a new video).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np

from edgekit.classify import make_quantizer, tensor_range
from edgekit.detect.decoders import (
    MAX_DETECTIONS,
    POSTPROCESS_OP,
    Decoder,
    HeadIO,
    check_params,
    get_decoder,
    guess_decoder,
)
from edgekit.detect.detector_tensors import (
    _image_input,
    _requantize,
    _shape,
    _state_pairs,
    _tensor,
    _write,
    _zeros,
)
from edgekit.detect.embedded import embedded_labels, embedded_metadata
from edgekit.detect.records import Detection, Detections
from edgekit.errors import EdgekitError
from edgekit.images import letterbox, load_rgb, prepare, stretch_box
from edgekit.stages import run_stages
from edgekit.task_model import TaskModel
from edgekit.tflite import read_model

__all__ = ["Detector", "embedded_labels", "embedded_metadata"]


class Detector(TaskModel):
    """Detect objects in RGB images.

    Args:
        model: bundle dir, ``.tflite`` or ``_edgetpu.tflite``.
        labels: label file or {id: label}; overrides the bundle's labels and the class names
            an Ultralytics export embeds. Ids are the model's own class indices.
        device: ``auto``, ``cpu`` or an Edge TPU string (see edgekit.backends.open_model).
        threshold, iou, max_detections: score threshold (0..1), NMS IoU (0..1), detections kept
            per image; None takes the bundle's params, else 0.25 / 0.45 / 100.
        decoder: a decoder name (overrides the bundle's and the guess).
        threads: CPU interpreter threads.
        anchors: a darknet anchors file or [[w, h], ...] in input pixels for an anchor head
            (``yolov3``); overrides the bundle's.
        on_warning: receives one-line notices (emulation, CPU twin).
    """

    task = "detect"

    def __init__(
        self,
        model: str | os.PathLike,
        labels: str | os.PathLike | dict[int, str] | None = None,
        device: str = "auto",
        threshold: float | None = None,
        iou: float | None = None,
        max_detections: int | None = None,
        decoder: str | None = None,
        threads: int | None = None,
        anchors: str | os.PathLike | list | None = None,
        *,
        on_warning: Callable[[str], None] | None = None,
    ):
        self._bind(model, device, threads, on_warning)
        manifest = self.bundle.manifest if self.bundle else None
        det = (manifest.detection if manifest else None) or {}
        if manifest is not None and manifest.task != "detect" and decoder is None:
            raise EdgekitError(
                f"{self.bundle.dir}: a {manifest.task} bundle, not a detector",
                "use `edgekit classify`, or pass --decoder if it really is a detector",
            )
        self._decoder_name = decoder or det.get("decoder")
        self._decoder_forced = decoder is not None
        self._params = (
            dict(det.get("params") or {}) if det.get("decoder") == (self._decoder_name) else {}
        )
        self._anchors_given = anchors is not None and anchors != ""
        if self._anchors_given:
            from edgekit.detect.yolov3 import read_anchors

            if isinstance(anchors, (str, os.PathLike)):
                anchors = read_anchors(anchors)
            self._params["anchors"] = anchors
        given = {"score_threshold": threshold, "iou": iou, "max_detections": max_detections}
        over = {k: v for k, v in given.items() if v is not None}
        # Range checks for the arguments too (one line, never a NaN threshold).
        over = check_params("detection", over, {})
        if "max_detections" in over and over["max_detections"] > MAX_DETECTIONS:
            raise EdgekitError(f"max_detections must be <= {MAX_DETECTIONS}")
        self.threshold = float(
            over.get("score_threshold", self._params.get("score_threshold", 0.25))
        )
        self.iou = float(over.get("iou", self._params.get("iou", 0.45)))
        self.max_detections = int(
            over.get("max_detections", self._params.get("max_detections", 100))
        )
        self.labels: dict[int, str] = self._resolve_labels(labels)
        self._open()

    # -- binding the model --------------------------------------------------------------------
    def _setup(self) -> None:
        r = self.runner
        interp = r.interpreter
        ins, outs = interp.get_input_details(), interp.get_output_details()
        image = _image_input(ins, outs, r.model_path)
        self._image = image
        self.input_size = (int(image["shape"][1]), int(image["shape"][2]))
        self.channels = int(image["shape"][3])
        self._state = _state_pairs([d for d in ins if d is not image], outs, r.model_path)
        state_outs = {o["index"] for _, o in self._state}
        info = read_model(r.model_path)
        if not self.labels:
            self.labels = embedded_labels(info)
        name = self._decoder_name or guess_decoder(info, frozenset(state_outs))
        if name is None:
            shapes = [_shape(o) for o in outs if o["index"] not in state_outs]
            scores = len(shapes) == 1 and sum(d > 1 for d in shapes[0]) == 1
            raise EdgekitError(
                f"{Path(r.model_path).name}: edgekit cannot tell how to decode outputs {shapes}"
                + (" (one score per class: a classifier?)" if scores else ""),
                ("run a classifier with `edgekit classify` (or as --classify of a detector); "
                 if scores else "")
                + "pass --decoder (ssd-postprocess, yolov8, yolov5, yolo-end2end, yolov3, "
                "edgekit-anchor-free) if it is a detector",
            )
        if self._anchors_given and name != "yolov3":
            raise EdgekitError(
                f"{Path(r.model_path).name}: --anchors is for a yolov3 head (anchor grids); "
                f"this model decodes as {name}",
                "leave --anchors out (or pass --decoder yolov3 if the model is one)",
            )
        self.decoder_name = name
        forced = self._decoder_forced and guess_decoder(info, frozenset(state_outs))
        if forced and forced != name:  # a forced decoder on another head decodes noise
            self._say(f"{Path(r.model_path).name}: --decoder {name} on outputs that look like a "
                      f"{forced} head: its detections may be meaningless (leave --decoder out "
                      f"to decode it as {forced})")  # fmt: skip
        post = next((op.outputs for op in info.main.operators if op.opcode == POSTPROCESS_OP), None)
        io = HeadIO(
            self.input_size,
            tuple(_tensor(o) for o in outs if o["index"] not in state_outs),
            tuple(post) if post else None,
        )
        cls = get_decoder(name)
        self.decoder: Decoder = cls(io, self._params)
        for note in self.decoder.notes:  # once per model opened (said by detect/bench/serve)
            self._say(note)
        spec = self.bundle.manifest.input if self.bundle else None
        if spec is not None and tuple(spec.shape) != tuple(_shape(image)):
            raise EdgekitError(
                f"{self.bundle.dir}: manifest input {list(spec.shape)} does not match its "
                f"model's {_shape(image)}",
                "re-create the bundle with `edgekit convert`",
            )
        self.color = spec.color if spec else "rgb"
        lb = self.decoder.params.get("letterbox", cls.letterbox)
        self.resize = "letterbox" if lb else "stretch"
        self.fill = int(self.decoder.params.get("fill", 114))
        scale, zp = image["quantization"]
        dtype = np.dtype(image["dtype"])
        rng = spec.range if spec else (cls.value_range or tensor_range(dtype, scale, zp))
        self._quantize, self.input_kind = make_quantizer(dtype, scale, zp, rng)
        self.reset()

    def _say(self, note: str) -> None:
        if self._on_warning is not None:
            self._on_warning(note)
        else:  # serve: its log handler prints "Warning: ..."
            logging.getLogger("edgekit.detect").warning(note)

    def reset(self) -> None:
        """Zero the carried state of a stateful model (start of a new video)."""
        self._carry = [_zeros(i) for i, _ in self._state]

    # -- running ------------------------------------------------------------------------------
    def detect(self, rgb: np.ndarray) -> Detections:
        """Detect objects in one (H, W, 3) uint8 RGB image of any size."""
        return run_stages(self.stages, rgb)

    # detect() in three stages (edgekit.stages), for serve's worker: frame n+1 is prepared and
    # frame n-1 decoded in one thread while invoke n runs on the device in another.
    @property
    def stages(self) -> tuple[Callable, Callable, Callable]:
        return self.make_input, self.invoke_input, self.finish

    def make_input(self, rgb: np.ndarray) -> tuple[tuple, float]:
        """(H, W, 3) uint8 RGB -> ((input tensor values, letterbox/stretch box, image (w, h)),
        preprocess ms); no interpreter. The values never share memory with ``rgb``."""
        if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3:
            raise EdgekitError("detect() needs an (H, W, 3) uint8 RGB array")
        if rgb.shape[0] < 1 or rgb.shape[1] < 1 or rgb.shape[2] != 3:
            raise EdgekitError(f"detect() needs an (H, W, 3) image, got shape {rgb.shape}")
        t0 = time.perf_counter_ns()
        if self.resize == "letterbox":
            fitted, box = letterbox(rgb, self.input_size, self.fill)
        else:
            fitted, box = stretch_box(rgb, self.input_size)
        pixels = prepare(fitted, self.input_size, "stretch", self.color, self.channels)
        x = self._quantize(pixels)
        if np.may_share_memory(x, rgb):  # raw uint8 input of the frame's own size
            x = x.copy()
        return (x, box, (rgb.shape[1], rgb.shape[0])), (time.perf_counter_ns() - t0) / 1e6

    def invoke_input(self, x: tuple, preprocess_ms: float = 0.0) -> tuple:
        """Write the input (and a stateful model's carried state), invoke, copy the outputs ->
        (raw outputs by tensor index, box, image size, preprocess ms including the writes,
        inference ms, output read ms)."""
        values, box, size = x
        interp = self.runner.interpreter
        if interp is None:
            raise EdgekitError("this detector was closed", "open it again")
        t0 = time.perf_counter_ns()
        _write(interp, self._image["index"], values)
        for (inp, _), value in zip(self._state, self._carry):
            _write(interp, inp["index"], value)
        t1 = time.perf_counter_ns()
        self.runner.invoke()
        t2 = time.perf_counter_ns()
        raw = {o.index: interp.get_tensor(o.index) for o in self.decoder.io.outputs}  # copies
        self._carry = [_requantize(interp.get_tensor(o["index"]), o, i) for i, o in self._state]
        t3 = time.perf_counter_ns()
        return (raw, box, size, preprocess_ms + (t1 - t0) / 1e6, (t2 - t1) / 1e6,
                (t3 - t2) / 1e6)  # fmt: skip

    def finish(self, raw: dict, box, size: tuple[int, int], preprocess_ms: float,
               inference_ms: float, read_ms: float = 0.0) -> Detections:  # fmt: skip
        """The raw outputs -> Detections (decode, NMS, boxes back to the image's pixels)."""
        t0 = time.perf_counter_ns()
        boxes, scores, classes = self.decoder.decode(
            raw, self.threshold, self.iou, self.max_detections
        )
        boxes = np.round(box.to_original(boxes), 2)
        # a box wholly in the letterbox padding clips to zero width or height: no object of
        # the image (a head's guess in the grey border), never reported
        seen = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxes, scores, classes = boxes[seen], scores[seen], classes[seen]
        dets = tuple(
            Detection(
                int(c), self.labels.get(int(c), str(int(c))), round(float(s), 5),
                tuple(round(float(v), 2) for v in b),  # type: ignore[arg-type]
            )
            for b, s, c in zip(boxes, scores, classes)
        )  # fmt: skip
        decode_ms = read_ms + (time.perf_counter_ns() - t0) / 1e6
        return Detections(dets, inference_ms, preprocess_ms, decode_ms, size)

    run = detect

    def detect_path(self, path: str | os.PathLike) -> Detections:
        return self.detect(load_rgb(Path(path)))

