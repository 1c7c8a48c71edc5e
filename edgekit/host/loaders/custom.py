"""``--custom-objects FILE.py``: a user's Python file that defines the custom layers (or
activations, initializers...) a model was saved with.

The file is imported as a module of its own; every class and function it defines becomes a
custom object under its own name, and a module-level ``custom_objects`` dict, if present, adds
or overrides names. Which Keras loads the model follows the classes' base: subclasses of
``tf_keras`` layers need the legacy loader, subclasses of Keras 3 layers need Keras 3.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
from pathlib import Path
from typing import Optional

from edgekit.errors import EdgekitError

HINT = "pass a Python file that defines the model's custom classes"


def load_custom_objects(path: str | os.PathLike) -> dict:
    """{name: object} from ``path``; raises EdgekitError if it cannot be imported."""
    path = Path(path)
    if not path.is_file():
        raise EdgekitError(f"{path}: no such custom-objects file", HINT)
    if path.suffix != ".py":
        raise EdgekitError(f"{path}: --custom-objects takes a .py file", HINT)
    name = f"edgekit_custom_objects_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise EdgekitError(f"{path}: cannot import it as Python", HINT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SystemExit as e:  # sys.exit(0) there ended convert "successfully", writing nothing
        sys.modules.pop(name, None)
        raise EdgekitError(
            f"{path}: calls sys.exit({e.code!r}) while being imported",
            "a --custom-objects file must only define the model's classes; remove the exit",
        ) from None
    except Exception as e:  # whatever the user's file raises on import
        sys.modules.pop(name, None)
        msg = " ".join(str(e).split())
        raise EdgekitError(
            f"{path}: importing it failed ({type(e).__name__}: {msg})", "fix the file"
        ) from None
    found = {
        k: v
        for k, v in vars(module).items()
        if not k.startswith("_")
        and (inspect.isclass(v) or inspect.isfunction(v))
        and getattr(v, "__module__", None) == name
    }
    extra = getattr(module, "custom_objects", None)
    if isinstance(extra, dict):
        found.update({str(k): v for k, v in extra.items()})
    if not found:
        raise EdgekitError(f"{path}: defines no class or function", HINT)
    return found


def preferred_keras(custom: dict) -> Optional[str]:
    """``"tf_keras"`` or ``"keras"`` when the custom classes subclass one of them, else None."""
    for obj in custom.values():
        if inspect.isclass(obj):
            for base in obj.__mro__:
                mod = base.__module__ or ""
                if mod.startswith("tf_keras"):
                    return "tf_keras"
                if mod.startswith("keras"):
                    return "keras"
    return None
