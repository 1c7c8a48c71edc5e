"""A small real model cut into two segment files, as ``edgetpu_compiler --num_segments 2``
writes them (for the segment pipeline's tests and scripts/bench_segments.py).

The cut is made in Keras (segment 0: image -> a conv feature map; segment 1: that feature map
-> GAP -> Dense), each part converted on its own, and segment 1's input renamed to segment 0's
output name (what the compiler guarantees: one name for the cut tensor in both files).
``compiled=True`` passes each segment through the stand-in compiler's rewrite
(tests/convert/fake_edgetpu_compiler: every op becomes one edgetpu-custom-op), so that the
stand-in libedgetpu claims the whole segment and its invoke takes ``EDGETPU_STANDIN_INVOKE_MS``.
Uncompiled, the stand-in claims nothing and the CPU computes every op: real numbers through
the real Edge TPU path.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path

HERE = Path(__file__).resolve().parent
FAKE_COMPILER = HERE.parent / "convert" / "fake_edgetpu_compiler"


def _rename(data: bytes, old: str, new: str) -> bytes:
    """A tensor renamed in place (flatbuffer strings are length-prefixed: same length only)."""
    assert len(old) == len(new) and data.count(old.encode()) == 1
    return data.replace(old.encode(), new.encode())


def _compiled_twin(data: bytes) -> bytes:
    loader = importlib.machinery.SourceFileLoader("fake_edgetpu_compiler", str(FAKE_COMPILER))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    from edgekit.tflite import read_model

    return mod.compiled_twin(data, len(read_model(data).main.operators))


def make_segments(out: Path, name: str = "tiny", compiled: bool = False, size: int = 32,
                  twin: bool = True) -> list[Path]:  # fmt: skip
    """Write ``NAME_segment_{0,1}_of_2_edgetpu.tflite`` (and the whole model ``NAME.tflite``
    when ``twin``) into ``out``; returns the two segment paths. Float32 input (1, size, size,
    3), output (1, 5)."""
    from edgekit.host.tfenv import load_tensorflow
    from edgekit.tflite import read_model

    tf = load_tensorflow()
    keras = tf.keras
    keras.utils.set_random_seed(3)
    inp = keras.Input((size, size, 3), batch_size=1, name="image")
    convs = keras.Sequential([keras.layers.Conv2D(8, 3, activation="relu"),
                              keras.layers.Conv2D(8, 3, activation="relu")])  # fmt: skip
    head = keras.Sequential([keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(5)])
    whole, first = keras.Model(inp, head(convs(inp))), keras.Model(inp, convs(inp))

    def tflite(model) -> bytes:
        return tf.lite.TFLiteConverter.from_keras_model(model).convert()

    seg0 = tflite(first)
    out0 = read_model(seg0).outputs[0].name
    feat = keras.Input(tuple(first.output.shape[1:]), batch_size=1, name="f" * (len(out0) - 18))
    seg1 = tflite(keras.Model(feat, head(feat)))
    seg1 = _rename(seg1, read_model(seg1).inputs[0].name, out0)
    if compiled:
        seg0, seg1 = _compiled_twin(seg0), _compiled_twin(seg1)
    out.mkdir(parents=True, exist_ok=True)
    if twin:
        (out / f"{name}.tflite").write_bytes(tflite(whole))
    paths = [out / f"{name}_segment_{k}_of_2_edgetpu.tflite" for k in (0, 1)]
    paths[0].write_bytes(seg0)
    paths[1].write_bytes(seg1)
    return paths


def standin_segments(model: str, root: str, device: str = "usb:*", **kwargs):
    """The task model of a segment set on stand-in Edge TPUs through the real SystemStack over
    the fake sysfs under ``root`` (a module-level function: a spawned worker builds it)."""
    from edgekit import backends
    from edgekit.backends.edgetpu import SystemStack
    from edgekit.tasks import open_task_model

    backends.register_backend("edgetpu", backends.EdgeTpuBackend(SystemStack(root=root)))
    return open_task_model(model, device=device, **kwargs)


def standin_chained(model: str, root: str, device: str = "usb:*", **kwargs):
    """:func:`standin_segments` run the way edgekit ran segments before the pipeline: the same
    interpreters on the same devices as a ChainInterpreter, one frame at a time (the
    comparison of scripts/bench_segments.py)."""
    from edgekit.backends.segments import ChainInterpreter

    m = standin_segments(model, root, device, **kwargs)
    parts = m.runner.interpreter.parts
    m.runner.interpreter = ChainInterpreter(parts, [f"segment {k}" for k in range(len(parts))])
    return m
