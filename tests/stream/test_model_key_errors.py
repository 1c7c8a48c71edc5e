"""serve's `[model]` settings name themselves in their error line, as `[cascade]` ones do: a
service's config has many paths, and "Error: /x.txt: no such label file" did not say which one
(found by the QA pass)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from edgekit.cli import main


@pytest.mark.parametrize(
    "key, value, says",
    [
        ("labels", '"{tmp}/missing.txt"', "no such label file"),
        ("labels", '"{tmp}"', "is a folder"),
        ("labels", '"{bin}"', "not UTF-8"),
        ("path", '"{tmp}/missing.tflite"', "no such model file"),
        ("path", '"{bin}"', "not a TFLite model"),
    ],
)
def test_each_model_key_error_names_the_key(tmp_path, small_model, labels_path, video_avi, key,
                                            value, says):  # fmt: skip
    binary = tmp_path / "junk.tflite"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    settings = {"path": f'"{small_model}"', "labels": f'"{labels_path}"', "device": '"cpu"'}
    settings[key] = value.format(tmp=tmp_path, bin=binary)
    cfg = tmp_path / "edgekit.toml"
    cfg.write_text("[model]\n" + "".join(f"{k} = {v}\n" for k, v in settings.items())
                   + f'[source]\nuri = "{video_avi}"\n')  # fmt: skip
    r = CliRunner().invoke(main, ["serve", "--config", str(cfg), "--check"])
    assert r.exit_code == 1, r.output
    err = [x for x in r.stderr.splitlines() if x.startswith("Error:")]
    assert len(err) == 1 and err[0].startswith(f"Error: [model] {key}: "), r.stderr
    assert says in err[0] and "Traceback" not in r.output
    ok = tmp_path / "ok.toml"
    settings[key] = {"path": f'"{small_model}"', "labels": f'"{labels_path}"'}[key]
    ok.write_text("[model]\n" + "".join(f"{k} = {v}\n" for k, v in settings.items())
                  + f'[source]\nuri = "{video_avi}"\n')  # fmt: skip
    assert CliRunner().invoke(main, ["serve", "--config", str(ok), "--check"]).exit_code == 0
