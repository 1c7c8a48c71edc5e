"""Model zoo: Edge-TPU-friendly Keras designs (installed as ``edgekit.zoo``).

Importing this package is light: the registry names each design's module, which (and Keras with
it) is imported only when a model is built. ``PARAMS_MACS`` caches every design's parameter and
multiply-add counts at its default settings so that ``edgekit zoo list`` needs no TensorFlow;
tests/zoo checks the cache against :func:`edgekit.host.keras_stats.inspect_keras`.

    >>> from edgekit import zoo
    >>> model = zoo.build("mobilenet_v1", input_size=128, classes=2, alpha=0.25)
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any

from edgekit.errors import EdgekitError


@dataclass(frozen=True)
class ZooEntry:
    """One design: ``module`` (in this package) has ``build(input_size, ...)``."""

    name: str
    module: str
    description: str
    default_input: int
    default_classes: int | None  # None: the design has no classifier (dsconv)
    paper: str
    params: int  # at the default settings (cached, checked by the tests)
    macs: int
    task: str = "classify"  # "detect": an edgekit-anchor-free detector (edgekit train --task)
    # predicted ms per inference on a USB 3 Coral at the default settings, from the layer shapes
    # (edgekit.edgetpu.latency; cached like params/macs, checked by the tests)
    usb3_ms: float | None = None
    decoder: str | None = None  # a detector's head (edgekit.detect.decoders name)
    usb2_ms: float | None = None  # the same on a USB 2 Coral (or a USB 3 one in a USB 2 port)
    pci_ms: float | None = None  # and on a PCIe / M.2 Coral

    @property
    def latency_ms(self) -> dict[str, float | None]:
        """Predicted ms per inference per link, as ``inspect --json``'s ``edgetpu.latency_ms``."""
        return {"usb3": self.usb3_ms, "usb2": self.usb2_ms, "pci": self.pci_ms}

    def builder(self):
        """The design's ``build`` function (imports the module, and Keras)."""
        return importlib.import_module(f"{__name__}.{self.module}").build

    def module_attr(self, name: str):
        """An attribute of the design's module (the detector's ``STRIDES`` and ``cells``)."""
        return getattr(importlib.import_module(f"{__name__}.{self.module}"), name)

    def options(self) -> dict[str, Any]:
        """Design parameters ``build`` accepts besides ``input_size``, with their defaults."""
        sig = inspect.signature(self.builder())
        return {k: p.default for k, p in sig.parameters.items() if k != "input_size"}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "default_input": self.default_input,
            "default_classes": self.default_classes,
            "params": self.params,
            "macs": self.macs,
            "latency_ms": self.latency_ms,
            "predicted_usb3_ms": self.usb3_ms,  # = latency_ms["usb3"] (kept for scripts)
            "paper": self.paper,
            "task": self.task,
            "decoder": self.decoder,
        }


REGISTRY: dict[str, ZooEntry] = {
    e.name: e
    for e in (
        ZooEntry(
            "inception_lite",
            "inception_lite",
            "One Inception module (1x1, 3x3, 5x5, pool branches) + dense 64; 28x28 input",
            28,
            2,
            "Szegedy et al. 2015, Going Deeper with Convolutions, arXiv:1409.4842",
            3_335_842,
            100_439_936,
            usb3_ms=0.95, usb2_ms=0.99, pci_ms=0.95,
        ),
        ZooEntry(
            "mobilenet_v1",
            "mobilenet_v1",
            "MobileNet v1: 13 depthwise-separable blocks; width multiplier alpha",
            224,
            1000,
            "Howard et al. 2017, MobileNets, arXiv:1704.04861",
            4_253_864,
            568_740_352,
            usb3_ms=2.64, usb2_ms=5.18, pci_ms=2.64,
        ),
        ZooEntry(
            "squeezenet",
            "squeezenet",
            "SqueezeNet v1.1: fire modules (squeeze 1x1, expand 1x1 + 3x3), optional bypass",
            224,
            1000,
            "Iandola et al. 2016, SqueezeNet, arXiv:1602.07360",
            1_235_496,
            387_358_720,
            usb3_ms=1.99, usb2_ms=4.54, pci_ms=1.99,
        ),
        ZooEntry(
            "densenet_lite",
            "densenet_lite",
            "Compact DenseNet-BC: pre-activation, bottleneck, growth 16, blocks 4-4-4",
            96,
            1000,
            "Huang et al. 2017, Densely Connected Convolutional Networks, arXiv:1608.06993",
            304_296,
            45_186_240,
            usb3_ms=1.42, usb2_ms=1.9, pci_ms=1.42,
        ),
        ZooEntry(
            "dsconv",
            "dsconv",
            "Standard 3x3 conv vs its depthwise-separable split, 100 -> 1000 channels",
            14,
            None,
            "Howard et al. 2017, MobileNets, section 3.1, arXiv:1704.04861",
            1_000_900,
            196_176_400,
            usb3_ms=1.81, usb2_ms=8.72, pci_ms=1.81,
        ),
        ZooEntry(
            "detector",
            "detector",
            "Anchor-free detector: MobileNet-style backbone, FCOS/YOLOX-like head at strides 8, 16",
            160,
            2,
            "Tian et al. 2019, FCOS, arXiv:1904.01355; Ge et al. 2021, YOLOX, arXiv:2107.08430",
            93_516,
            30_515_200,
            task="detect",
            usb3_ms=1.38, usb2_ms=2.72, pci_ms=1.38,
            decoder="edgekit-anchor-free",
        ),
        ZooEntry(
            "yolov3_tiny",
            "yolov3_tiny",
            "YOLOv3-Tiny, ReLU (Edge TPU ports): anchor heads at strides 32, 16; darknet anchors",
            416,
            80,
            "Redmon & Farhadi 2018, YOLOv3: An Incremental Improvement, arXiv:1804.02767",
            8_858_734,
            2_782_480_896,
            task="detect",
            usb3_ms=19.82, usb2_ms=139.64, pci_ms=19.82,
            decoder="yolov3",
        ),
    )
}


def get(name: str) -> ZooEntry:
    """The registry entry for ``name``; EdgekitError listing the known names otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise EdgekitError(
            f"unknown zoo model {name!r}", f"known: {', '.join(sorted(REGISTRY))}"
        ) from None


def build(name: str, input_size: int | tuple[int, int] | None = None, **options):
    """Build zoo model ``name`` (a ``keras.Model`` with a free batch dimension).

    ``input_size`` defaults to the design's; ``options`` are the design's parameters (``classes``,
    ``alpha``, ``growth_rate``...). An option the design does not have raises EdgekitError.
    """
    entry = get(name)
    accepted = entry.options()
    for key in options:
        if key not in accepted:
            raise EdgekitError(
                f"zoo model {name!r} has no option {key!r}",
                f"its options: {', '.join(accepted) or 'none'}",
            )
    size = entry.default_input if input_size is None else input_size
    return entry.builder()(input_size=size, **options)


MODEL_SUFFIXES = (".h5", ".keras")


def save_model(model, path, force: bool = False):
    """Save a Keras model to ``path`` (.h5 or .keras) atomically.

    Keras writes a temporary file in the destination's directory (its name keeps the suffix,
    which selects Keras' format), which is then renamed over ``path``: a crash never leaves a
    half-written model. An existing ``path`` is refused unless ``force``.
    """
    from pathlib import Path

    from edgekit import atomic

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise EdgekitError(f"{path}: unknown model file type", "name it FILE.h5 or FILE.keras")
    if path.exists() and not force:
        raise EdgekitError(f"{path} already exists", "choose another output or pass --force")
    if path.is_dir():
        raise EdgekitError(f"{path} is a directory", "choose a file name")
    with atomic.replacing(path) as tmp, _quiet_h5_warning():
        model.save(tmp)
    return path


class _DropLegacyH5:
    """logging filter for Keras' "HDF5 format is considered legacy" warning: .h5 is what the
    user asked for, and what Keras 2 era tools (and Coral's examples) read."""

    def filter(self, record) -> bool:
        return "legacy" not in record.getMessage()


def _quiet_h5_warning():
    import contextlib
    import logging

    @contextlib.contextmanager
    def ctx():
        log = logging.getLogger("absl")
        f = _DropLegacyH5()
        log.addFilter(f)
        try:
            yield
        finally:
            log.removeFilter(f)

    return ctx()
