"""The architecture a Keras file declares, read without building it, and the refusals that can be
decided from it alone (so a Lambda layer's Python bytecode is never unmarshalled, a Keras 1 file
never reaches a loader that fails with "pop expected at most 1 argument").

Where the JSON lives: HDF5 files keep it in the root attribute ``model_config`` with
``keras_version`` and ``backend`` beside it; ``.keras`` zips keep ``config.json`` and
``metadata.json``. Layouts differ by vintage: Keras 2.1's Sequential config is a bare list of
layers, 2.2+ a dict with ``layers``; Keras 2 InputLayers say ``batch_input_shape``, Keras 3
``batch_shape``; Keras 3 functional configs hold a single input as a flat ``[name, 0, 0]``.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from edgekit.errors import EdgekitError
from edgekit.host.loaders.sniff import MODEL_HINT

RECURRENT = {
    "LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional", "ConvLSTM1D", "ConvLSTM2D",
    "ConvLSTM3D", "CuDNNLSTM", "CuDNNGRU", "StackedRNNCells",
}  # fmt: skip
MODEL_CLASSES = {"Sequential", "Functional", "Model"}


@dataclass(frozen=True)
class LayerRef:
    """One layer of the declared architecture: class, name, and the nested model it sits in
    (``outer/inner``, empty at the top level)."""

    class_name: str
    name: str
    where: str
    config: dict
    module: str = ""
    registered_name: str = ""

    @property
    def label(self) -> str:
        return f"{self.class_name} '{self.where + '/' if self.where else ''}{self.name}'"


@dataclass
class Architecture:
    """``config``: the top ``{"class_name", "config"}`` dict; ``keras_version``: "" if unknown;
    ``layers``: every layer at every nesting depth, in file order."""

    config: dict
    keras_version: str = ""
    backend: str = ""
    layers: list[LayerRef] = field(default_factory=list)

    @property
    def major(self) -> Optional[int]:
        m = re.match(r"\s*(\d+)\.", self.keras_version)
        return int(m.group(1)) if m else None

    def top_layers(self, cfg: Optional[dict] = None) -> list[dict]:
        return _layer_list(cfg if cfg is not None else self.config)


def read_hdf5(path: Path) -> Architecture:
    """The architecture of an HDF5 model file; refuses weights-only and corrupt files."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
            version = f.attrs.get("keras_version", "")
            backend = f.attrs.get("backend", "")
            weights_only = raw is None and ("layer_names" in f.attrs or "model_weights" in f)
    except (OSError, RuntimeError, ValueError, KeyError) as e:  # truncated or corrupt HDF5
        # HDF5's superblock records the file's length: a cut file (interrupted download or
        # copy) is said in words, with what to do, not as h5py's "eof = N, stored_eof = M"
        cut = re.search(r"truncated file: eof = (\d+), .*stored_eof = (\d+)", str(e))
        if cut:
            have, want = int(cut[1]), int(cut[2])
            raise EdgekitError(
                f"{path}: the file is cut short ({have:,} of its {want:,} bytes)",
                "an interrupted download or copy? copy or save the model again",
            ) from None
        raise EdgekitError(f"{path}: corrupt HDF5 file ({_one_line(e)})", MODEL_HINT) from None
    if raw is None:
        what = "weights only" if weights_only else "no Keras model"
        raise EdgekitError(
            f"{path}: HDF5 file holds {what}, no model architecture (model_config)",
            "save the whole model (model.save), not model.save_weights; or rebuild the model "
            "in code, load_weights() this file, and save that",
        )
    return _parse(path, raw, _text(version), _text(backend))


def read_zip(path: Path) -> Architecture:
    """The architecture of a ``.keras`` zip archive (``config.json`` + ``metadata.json``)."""
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            if "config.json" not in names:
                raise EdgekitError(
                    f"{path}: zip archive without config.json: not a Keras model", MODEL_HINT
                )
            raw = z.read("config.json")
            meta = json.loads(z.read("metadata.json")) if "metadata.json" in names else {}
    except EdgekitError:
        raise
    except (OSError, zipfile.BadZipFile, ValueError, KeyError) as e:
        raise EdgekitError(f"{path}: corrupt .keras archive ({_one_line(e)})", MODEL_HINT) from None
    version = meta.get("keras_version", "") if isinstance(meta, dict) else ""
    return _parse(path, raw, str(version), "")


def _parse(path: Path, raw: Any, version: str, backend: str) -> Architecture:
    try:
        config = json.loads(_text(raw))
    except (UnicodeDecodeError, ValueError, TypeError, RecursionError):
        raise EdgekitError(f"{path}: corrupt model architecture in the file", MODEL_HINT) from None
    if not isinstance(config, dict) or "class_name" not in config:
        raise EdgekitError(f"{path}: corrupt model architecture in the file", MODEL_HINT)
    arch = Architecture(config=config, keras_version=version, backend=backend)
    _walk(config, "", arch.layers)
    return arch


def _walk(model_cfg: dict, where: str, out: list[LayerRef]) -> None:
    for layer in _layer_list(model_cfg):
        if not isinstance(layer, dict):
            continue
        cls = str(layer.get("class_name", ""))
        cfg = layer.get("config") if isinstance(layer.get("config"), dict) else {}
        name = str(layer.get("name") or cfg.get("name") or "")
        out.append(
            LayerRef(cls, name, where, cfg, str(layer.get("module") or ""),
                     str(layer.get("registered_name") or ""))
        )  # fmt: skip
        if cls in MODEL_CLASSES or _layer_list(layer):
            _walk(layer, f"{where}/{name}" if where else name, out)


def _layer_list(model_cfg: dict) -> list:
    cfg = model_cfg.get("config")
    if isinstance(cfg, list):  # Keras <= 2.1 Sequential: a bare list of layers
        return cfg
    if isinstance(cfg, dict) and isinstance(cfg.get("layers"), list):
        return cfg["layers"]
    return []


def declared_io(arch: Architecture) -> tuple[list[str], list[str], Optional[tuple]]:
    """(input names, output names, first input's declared shape or None) of the top model."""
    cfg = arch.config.get("config")
    shape = None
    layers = arch.top_layers()
    if isinstance(cfg, dict) and "input_layers" in cfg:
        ins, outs = _io_names(cfg.get("input_layers")), _io_names(cfg.get("output_layers"))
    else:  # Sequential: one input, one output
        ins, outs = ["input"], ["output"]
    for layer in layers:
        lc = layer.get("config") if isinstance(layer, dict) else None
        if isinstance(lc, dict):
            shape = lc.get("batch_input_shape") or lc.get("batch_shape")
            if shape is None and lc.get("input_shape") is not None:  # Keras 1 / 2.0 style
                shape = [None, *lc["input_shape"]]
            if shape is not None:
                break
        if layer.get("class_name") not in ("InputLayer",):
            break
    return ins, outs, tuple(shape) if isinstance(shape, list) else None


def _io_names(spec: Any) -> list[str]:
    if not isinstance(spec, list) or not spec:
        return []
    if isinstance(spec[0], str):  # Keras 3, one tensor: ["name", 0, 0]
        return [spec[0]]
    return [str(s[0]) if isinstance(s, list) and s else "?" for s in spec]


def _text(v: Any) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8")
    return "" if v is None else str(v)


def _one_line(e: BaseException) -> str:
    """An exception's message on one line, whole (never cut: the cause is often at the end)."""
    text = " ".join(str(e).split())
    return text or type(e).__name__
