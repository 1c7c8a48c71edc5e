"""Fixtures for the device runtime tests: tiny real bundles (converted once per session in a
TensorFlow subprocess) and a swappable Edge TPU boundary."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ai_edge_litert.interpreter import Interpreter

from edgekit import backends
from edgekit.manifest import InputSpec, Manifest, OutputSpec

HERE = Path(__file__).resolve().parent
TINY_LABELS = ("red", "green", "blue")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> Path:
    """u8_01.tflite, i8_01.tflite, u8_m11.tflite (see make_tiny_runtime_models.py)."""
    out = tmp_path_factory.mktemp("tiny_models")
    proc = subprocess.run([sys.executable, str(HERE / "make_tiny_runtime_models.py"), str(out)],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def write_bundle(dest: Path, tflite: Path, value_range, color="rgb", resize="stretch",
                 labels=TINY_LABELS) -> Path:  # fmt: skip
    """A bundle as `edgekit convert` lays it out, manifest written with edgekit.manifest."""
    dest.mkdir(parents=True)
    model = dest / f"{tflite.stem}_int8.tflite"
    shutil.copy(tflite, model)
    it = Interpreter(model_path=str(model))
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    manifest = Manifest(
        name=tflite.stem,
        input=InputSpec(shape=tuple(int(d) for d in i["shape"]), dtype=i["dtype"].__name__,
                        scale=float(i["quantization"][0]), zero_point=int(i["quantization"][1]),
                        color=color, range=tuple(value_range), resize=resize),
        output=OutputSpec(shape=tuple(int(d) for d in o["shape"]), dtype=o["dtype"].__name__,
                          scale=float(o["quantization"][0]), zero_point=int(o["quantization"][1])),
        models={"cpu": model.name, "edgetpu": None, "edgetpu_log": None},
        labels=labels,
    )  # fmt: skip
    (dest / "edgekit.json").write_text(manifest.to_json())
    return dest


@pytest.fixture(scope="session")
def bundles(tiny_models, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bundles")
    return {
        "rgb": write_bundle(root / "rgb", tiny_models / "u8_01.tflite", (0, 1)),
        "bgr": write_bundle(root / "bgr", tiny_models / "u8_01.tflite", (0, 1), color="bgr"),
        "crop": write_bundle(root / "crop", tiny_models / "u8_01.tflite", (0, 1), resize="crop"),
        "int8": write_bundle(root / "int8", tiny_models / "i8_01.tflite", (0, 1)),
        "m11": write_bundle(root / "m11", tiny_models / "u8_m11.tflite", (-1, 1)),
    }


@pytest.fixture(autouse=True)
def _probe_cache_in_tmp(tmp_path_factory, monkeypatch):
    """The libedgetpu probe cache (edgekit.backends.probe) never lands in the real ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))


@pytest.fixture(autouse=True)
def _libedgetpu_choice_restored():
    """`--libedgetpu PATH` exports EDGEKIT_LIBEDGETPU to the process (for its children): a CLI
    test run in-process must not leave that choice to the tests after it."""
    saved = os.environ.pop("EDGEKIT_LIBEDGETPU", None)
    yield
    os.environ.pop("EDGEKIT_LIBEDGETPU", None)
    if saved is not None:
        os.environ["EDGEKIT_LIBEDGETPU"] = saved


@pytest.fixture
def use_stack():
    """use_stack(fake) puts a fake EdgeTpuStack behind the registered `edgetpu` backend."""
    previous = []

    def install(stack):
        previous.append(backends.register_backend("edgetpu", backends.EdgeTpuBackend(stack)))
        return stack

    yield install
    if previous:
        backends.register_backend("edgetpu", previous[0])


@pytest.fixture
def no_edgetpu(use_stack):
    """This machine's truth, made explicit: no Edge TPU, no libedgetpu."""
    from .runtime_fakes import FakeStack

    return use_stack(FakeStack(devices=(), lib_missing=True))


from tests.edgetpu_standin import edgetpu_standins  # noqa: E402, F401  (fixture)

SSD_PIPELINE = Path(__file__).resolve().parents[3] / "shared" / "data" / "coral" / "pipeline"
SSD_SEGMENT = "ssd_mobilenet_v2_coco_quant_postprocess_segment_{}_of_2_edgetpu.tflite"


@pytest.fixture
def ssd_segments(tmp_path) -> list[Path]:
    """Google's real SSD MobileNet v2 segments (2 of 2) from ../shared, copied to tmp_path."""
    if not (SSD_PIPELINE / SSD_SEGMENT.format(0)).is_file():
        pytest.skip("../shared/data/coral/pipeline is not here")
    out = []
    for k in (0, 1):
        out.append(tmp_path / SSD_SEGMENT.format(k))
        shutil.copy(SSD_PIPELINE / SSD_SEGMENT.format(k), out[-1])
    return out
