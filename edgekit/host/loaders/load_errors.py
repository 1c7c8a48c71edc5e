"""A loader's exception turned into one line that keeps its cause.

Keras wraps the real cause at the END of long messages: ``Error when deserializing class 'Conv2D'
using config={...4 kB...}. Exception encountered: Unrecognized keyword arguments passed to
GlorotUniform: {'dtype': 'float32'}``. Cutting at a fixed length loses exactly that part, so the
config dumps are elided instead and the message is never truncated.
"""

from __future__ import annotations

import re
from pathlib import Path

from edgekit.errors import EdgekitError
from edgekit.host.loaders.refusals import CUSTOM_HINT

_UNKNOWN = re.compile(  # tf_keras: "Unknown layer: 'X'"; Keras 3: "Could not locate class 'X'"
    r"(?:Unknown (layer|activation(?: function)?|initializer|regularizer|constraint|loss|metric|"
    r"object|optimizer)[^:]*:|Could not locate (class|function))\s*'?([A-Za-z_][\w.>]*)'?"
)
_FUNCTION = re.compile(r"'class_name': 'function', 'config': '([A-Za-z_]\w*)'")
_CONFIG_DUMP = re.compile(r"(config|with config)=\{.*?\}(?=\.\s|\s*Exception|$)", re.S)


def cause(e: BaseException) -> str:
    """The exception's message on one line, config dumps elided, the cause kept whole."""
    text = str(e)
    if "Exception encountered:" in text:
        head = text.split("using config=")[0].split(" with config=")[0].strip().rstrip(".")
        tail = text.rsplit("Exception encountered:", 1)[1]
        text = f"{head}: {tail}"
    text = _CONFIG_DUMP.sub(r"\1={...}", text)
    text = " ".join(text.split())
    return text or type(e).__name__


def load_error(path: Path, e: BaseException, loader: str) -> EdgekitError:
    """EdgekitError for a loader's failure: a custom class by name when Keras says "Unknown
    ...", the loader's own cause otherwise."""
    m = _UNKNOWN.search(str(e))
    if m:
        what, name = (m.group(1) or m.group(2)).split()[0], m.group(3)
        if name == "function":  # tf_keras saves a plain function as {"class_name": "function",
            # "config": "<its name>"} and names the class in its error: show the function
            f = _FUNCTION.search(str(e))
            name = f.group(1) if f else name
        return EdgekitError(
            f"{path}: custom {what} {name!r} is not part of Keras",
            CUSTOM_HINT.format(it="it"),
        )
    return EdgekitError(
        f"{path}: {loader} cannot load the model ({cause(e)})",
        "if the file loads in the Keras that wrote it, save it again there with model.save()",
    )
