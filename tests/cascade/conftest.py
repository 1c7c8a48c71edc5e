"""Fixtures for the cascade tests: the tiny real detector of tests/detect (coloured squares)
as a bundle, and the tiny real colour classifier of tests/runtime (class = dominant channel)
under bird-species names, so a cascade's "classes" are visibly the classifier's."""

from __future__ import annotations

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
