"""The CLI shell: help, version, one-line errors, and the device path staying light."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

import edgekit
from edgekit.cli import COMMANDS, main


def test_help_lists_every_command_without_importing_them():
    res = CliRunner().invoke(main, ["--help"])
    assert res.exit_code == 0
    for name in COMMANDS:
        assert name in res.output


def test_version():
    res = CliRunner().invoke(main, ["--version"])
    assert res.exit_code == 0 and edgekit.__version__ in res.output


def test_unknown_command_is_a_usage_error():
    res = CliRunner().invoke(main, ["frobnicate"])
    assert res.exit_code == 2 and "No such command" in res.output


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_import_edgekit_is_light():
    mods = _modules_after(
        "import edgekit, edgekit.manifest, edgekit.images, edgekit.labels, edgekit.detect, "
        "edgekit.tasks"
    )
    heavy = {"tensorflow", "keras", "cv2", "matplotlib", "click"}
    assert not heavy & mods, heavy & mods


def test_cli_help_does_not_import_tensorflow():
    mods = _modules_after(
        "from edgekit.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    )
    assert "tensorflow" not in mods and "keras" not in mods


def test_every_package_is_listed_for_the_wheel():
    # pyproject lists packages explicitly (models/ is mapped to edgekit.zoo); a subpackage missing
    # from that list works in an editable install but vanishes from the wheel.
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    text = (root / "pyproject.toml").read_text()
    listed = set(
        re.findall(r'"(edgekit(?:\.\w+)*)"', text.split("packages = [", 1)[1].split("]")[0])
    )
    found = {
        ".".join(p.parent.relative_to(root).parts) for p in (root / "edgekit").rglob("__init__.py")
    } | {"edgekit.zoo"}
    assert found == listed
