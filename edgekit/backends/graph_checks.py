"""What a model file must hold for an interpreter to be worth running, checked when it opens
(CPU and Edge TPU backends alike): a graph with inputs, outputs and operators, tensor names
that decode; and why the CPU interpreter refused a file, read from the file itself."""

from __future__ import annotations

from edgekit.errors import EdgekitError


def cpu_load_failure(model_path: str, first: str) -> EdgekitError:
    """Why the interpreter refused ``model_path``, read from the file itself where it can be
    (edgekit's reader names a cut file and a compiled one; the interpreter says "not a valid
    Flatbuffer buffer" or "unresolved custom op" for both), else the interpreter's words."""
    from edgekit.tflite import read_model

    try:
        info = read_model(model_path)
    except EdgekitError as e:
        return e  # "not a TFLite model (corrupt or truncated flatbuffer: read at byte N ...)"
    except Exception:  # a diagnosis only: the interpreter's words stand
        info = None
    if info is not None and info.is_edgetpu_compiled:
        return EdgekitError(
            f"{model_path}: compiled for the Edge TPU (edgetpu-custom-op): the CPU interpreter "
            "cannot run it",
            "attach a Coral, or pass the uncompiled int8 .tflite (a bundle's models.cpu must "
            "be that one)",
        )
    return EdgekitError(
        f"{model_path}: the CPU interpreter cannot load it ({first})",
        "is it a valid TFLite model? (a compiled _edgetpu model needs an Edge TPU)",
    )


def check_graph(interp, model_path: str) -> None:
    """A graph with no input, no output or no operator runs "in 0 ms" and computes nothing:
    say so when the model is opened (bench would report 0 ms, serve would blame the device).
    Every tensor name an op uses is decoded here too: the interpreter decodes them as UTF-8
    when asked for details, and a damaged byte in one raised UnicodeDecodeError (a traceback)
    from whichever call came first."""
    try:
        _check_graph(interp, model_path)
    except UnicodeDecodeError as e:
        raise EdgekitError(
            f"{model_path}: a tensor name in it is not UTF-8 text ({e.reason} at byte {e.start} "
            "of the name): the file is damaged",
            "copy it again, or export the model again",
        ) from None


def _check_graph(interp, model_path: str) -> None:
    if not interp.get_input_details() or not interp.get_output_details():
        raise EdgekitError(
            f"{model_path}: the model has no input or no output tensor",
            "is it the whole model? re-export it with its image input and its output",
        )
    ops = getattr(interp, "_get_ops_details", None)  # ai_edge_litert, tflite_runtime, tf.lite
    if ops is not None and not ops():
        raise EdgekitError(
            f"{model_path}: the model has no operators (it computes nothing)",
            "re-export the whole model; a graph whose outputs are its inputs cannot be run",
        )
