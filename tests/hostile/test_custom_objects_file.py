"""``--custom-objects FILE.py`` runs the user's file: one that calls ``sys.exit`` while being
imported ended edgekit with that status. Before: ``convert model.h5 --custom-objects f.py -o out``
with ``sys.exit(0)`` in f.py exited 0, printed nothing and wrote no bundle (a "success" that did
nothing); ``sys.exit(3)`` exited 3, outside the 0/1/2 contract."""

from __future__ import annotations

import pytest

from edgekit.errors import EdgekitError
from edgekit.host.loaders.custom import load_custom_objects

from .conftest import cli


@pytest.mark.parametrize("call", ["sys.exit(0)", "sys.exit(3)", "sys.exit()", "sys.exit('bye')",
                                  "raise SystemExit(0)"])  # fmt: skip
def test_an_exit_while_imported_is_one_edgekit_error(tmp_path, call):
    f = tmp_path / "layers.py"
    f.write_text(f"import sys\nclass Scale:\n    pass\n{call}\n")
    with pytest.raises(EdgekitError, match=r"layers.py: calls sys.exit\(.*\) while being "
                                           "imported"):  # fmt: skip
        load_custom_objects(f)


def test_convert_with_such_a_file_fails_and_writes_nothing(tiny_keras, tmp_path):
    f = tmp_path / "layers.py"
    f.write_text("import sys\nsys.exit(0)\n")
    out = tmp_path / "bundle"
    r = cli("convert", tiny_keras["h5"], "-o", out, "--synthetic-calib", "--no-compile",
            "--custom-objects", f)  # fmt: skip
    assert r.exit_code == 1, r.output
    assert r.output.strip().splitlines()[-1].startswith(f"Error: {f}: calls sys.exit(0)")
    assert not out.exists()
