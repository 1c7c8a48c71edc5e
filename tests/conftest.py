"""Shared test fixtures: bundled data paths only. Area-specific fixtures live in the test
modules (or a conftest next to them) that use them."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
CORAL = DATA / "coral"
APPLE_BANANA = ROOT / "examples" / "apple-banana"
# Groups near-duplicate variants of one original photo (see examples/apple-banana/README.md).
APPLE_BANANA_GROUP = r"(?:apple|bana)[-_](\d+)"


@pytest.fixture(scope="session")
def coral_dir() -> Path:
    return CORAL


@pytest.fixture(scope="session")
def apple_banana_dir() -> Path:
    return APPLE_BANANA
