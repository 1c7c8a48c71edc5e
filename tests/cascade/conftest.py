"""Fixtures for the cascade tests: the tiny real detector of tests/detect (coloured squares)
as a bundle, and the tiny real colour classifier of tests/runtime (class = dominant channel)
under bird-species names, so a cascade's "classes" are visibly the classifier's."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import pytest

from tests.detect.conftest import detect_bundle, tiny_detector  # noqa: F401  (fixtures)
from tests.runtime.conftest import tiny_models, write_bundle  # noqa: F401  (fixture)

SPECIES = ("cardinal", "parakeet", "bluejay")  # red, green, blue


@pytest.fixture(scope="session")
def species_bundle(tiny_models, tmp_path_factory) -> Path:  # noqa: F811
    """A 16x16 classifier bundle: red -> cardinal, green -> parakeet, blue -> bluejay."""
    return write_bundle(tmp_path_factory.mktemp("species") / "species",
                        tiny_models / "u8_01.tflite", (0, 1), labels=SPECIES)  # fmt: skip


@pytest.fixture(scope="session")
def species_labels(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("labels") / "species.txt"
    p.write_text("".join(f"{i} {n}\n" for i, n in enumerate(SPECIES)))
    return p


@contextlib.contextmanager
def serving(config: dict, tmp_path: Path, want: int = 5):
    """``serve.run`` in a thread on a looped video of a red and a blue square (static), with
    HTTP on a free port and no JSON lines; yields (base URL, results so far: Result records)
    once ``want`` results came, and stops serve after the block."""
    from edgekit.stream import serve
    from edgekit.stream.config import from_dict
    from edgekit.stream.sinks import CallbackSink
    from edgekit.stream.sources import OpenCVSource
    from tests.stream.conftest import free_port
    from tests.stream.test_serve_detect import cell, write_video

    avi = write_video(tmp_path / "static.avi", [[cell("red", 1, 1), cell("blue", 2, 2)]],
                      frames_per_scene=20)  # fmt: skip
    port, stop, enough, results = free_port(), threading.Event(), threading.Event(), []

    def on_result(r):
        results.append(r)
        if len(results) >= want:
            enough.set()

    cfg = from_dict({**config, "output": {"json_lines": False},
                     "http": {"listen": f"127.0.0.1:{port}"}})  # fmt: skip
    t = threading.Thread(target=serve.run, args=(cfg,), daemon=True,
                         kwargs={"stop": stop, "source": OpenCVSource(str(avi), loop=True),
                                 "extra_sinks": [CallbackSink(on_result)]})  # fmt: skip
    t.start()
    try:
        assert enough.wait(60), "serve gave no results"
        yield f"http://127.0.0.1:{port}", results
    finally:
        stop.set()
        t.join(10)
    assert not t.is_alive()
