"""Rewrite a Keras 3 ``.h5`` file into the layout tf.keras 2.x (TF <= 2.15) wrote, so the
legacy-file path of the loader is tested on the real incompatibilities without needing Keras 2.

What Keras 2 wrote differently, reproduced here:
- ``keras_version`` "2.15.0" on the file and on ``model_weights``;
- layer configs: ``dtype`` as a plain string, initializers without ``module``/``registered_name``
  and with only ``seed``; ``InputLayer`` with ``batch_input_shape``;
- ``DepthwiseConv2D`` configs carry ``"groups": 1`` (inherited from Conv2D.get_config), the key
  Keras 3 rejects with ``Unrecognized keyword arguments ... {'groups': 1}``;
- ``inbound_nodes`` as ``[[[layer, node, tensor, {}]]]`` and ``input_layers`` /
  ``output_layers`` as lists of ``[layer, node, tensor]``;
- weight datasets named ``<layer>/<weight>:0`` (``depthwise_kernel`` for DepthwiseConv2D).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py

K2 = "2.15.0"


def _initializer(v):
    if isinstance(v, dict) and "class_name" in v and "module" in v:
        cfg = {"seed": v.get("config", {}).get("seed")} if "seed" in v.get("config", {}) else {}
        return {"class_name": v["class_name"], "config": cfg}
    return v


def _layer(layer: dict) -> dict:
    cls, cfg = layer["class_name"], dict(layer["config"])
    if isinstance(cfg.get("dtype"), dict):
        cfg["dtype"] = cfg["dtype"]["config"]["name"]
    for k, v in list(cfg.items()):
        cfg[k] = _initializer(v)
    if cls == "InputLayer":
        cfg = {
            "batch_input_shape": cfg["batch_shape"],
            "dtype": cfg["dtype"],
            "sparse": False,
            "ragged": False,
            "name": cfg["name"],
        }
    if cls == "DepthwiseConv2D":
        cfg["groups"] = 1
    nodes = []
    for node in layer.get("inbound_nodes", []):
        args = node["args"]
        args = args[0] if len(args) == 1 and isinstance(args[0], list) else args
        nodes.append([[*a["config"]["keras_history"], {}] for a in args])
    return {"class_name": cls, "config": cfg, "name": layer["name"], "inbound_nodes": nodes}


def keras2_config(config: dict) -> dict:
    c = config["config"]
    out = {
        "name": c["name"],
        "layers": [_layer(layer) for layer in c["layers"]],
        "input_layers": [c["input_layers"]]
        if isinstance(c["input_layers"][0], str)
        else c["input_layers"],
        "output_layers": [c["output_layers"]]
        if isinstance(c["output_layers"][0], str)
        else c["output_layers"],
    }
    return {"class_name": "Functional", "config": out}


def make_keras2_h5(src: str | Path, dst: str | Path) -> Path:
    """Copy the Keras 3 functional-model ``src`` .h5 to ``dst`` in Keras 2's layout."""
    dst = Path(dst)
    shutil.copyfile(src, dst)
    with h5py.File(dst, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        cfg = keras2_config(cfg)
        f.attrs["model_config"] = json.dumps(cfg)
        f.attrs["keras_version"] = K2
        mw = f["model_weights"]
        mw.attrs["keras_version"] = K2
        if "top_level_model_weights" in mw:
            del mw["top_level_model_weights"]
        mw.attrs["layer_names"] = [
            n for n in mw.attrs["layer_names"] if n != "top_level_model_weights"
        ]
        kinds = {layer["name"]: layer["class_name"] for layer in cfg["config"]["layers"]}
        for lname in list(mw.attrs["layer_names"]):
            g = mw[lname]
            names = [n.decode() if isinstance(n, bytes) else n for n in g.attrs["weight_names"]]
            new_names = []
            for n in names:
                layer, weight = n.split("/", 1)
                if kinds.get(lname) == "DepthwiseConv2D" and weight == "kernel":
                    weight = "depthwise_kernel"
                new = f"{layer}/{weight}:0"
                g.move(n, new)
                new_names.append(new)
            if names:
                g.attrs["weight_names"] = new_names
    return dst
