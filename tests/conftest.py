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


@pytest.fixture(scope="session", autouse=True)
def _private_device_locks(tmp_path_factory):
    """Edge TPU lock files (edgekit.backends.devicelock) in a directory of this test session:
    fake devices of concurrent test runs on one machine must not lock each other out. Child
    processes (CLI tests) inherit it."""
    import os

    old = os.environ.get("EDGEKIT_LOCK_DIR")
    os.environ["EDGEKIT_LOCK_DIR"] = str(tmp_path_factory.mktemp("locks"))
    yield
    if old is None:
        os.environ.pop("EDGEKIT_LOCK_DIR", None)
    else:
        os.environ["EDGEKIT_LOCK_DIR"] = old


@pytest.fixture(autouse=True)
def _backend_registry_restored():
    """Each test starts from the backend registry the previous one started from: a test that
    registers a fake Edge TPU (its sysfs in a tmp dir gone after the test) and forgets to put
    the old one back must not make later tests see that fake device."""
    from edgekit import backends

    saved = dict(backends._BACKENDS)
    yield
    backends._BACKENDS.clear()
    backends._BACKENDS.update(saved)
