"""Hostile [cascade] sections for `serve --check`: any text as crop_labels, any bytes as the
classifier's label file or as the classifier itself. Each time: exit 0 or one Error line that
names the [cascade] key to fix (they named a bare path, or nothing), never a traceback."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from tests.cascade.conftest import species_bundle  # noqa: F401  (fixture)
from tests.detect.conftest import detect_bundle, tiny_detector  # noqa: F401  (fixtures)
from tests.runtime.conftest import tiny_models  # noqa: F401  (fixture)

from .conftest import cli

NAMES = st.sampled_from(["red", "green", "blue", "bird", "", " ", ",", "red,", "ré d", "\t"])


def _check(tmp, detector, cascade: dict):
    src = tmp / "frames"
    if not src.exists():
        src.mkdir()
        Image.new("RGB", (32, 32), (200, 30, 30)).save(src / "frame.png")
    lines = "\n".join(f"{k} = {v!r}".replace("'", '"') if isinstance(v, str) else f"{k} = {v}"
                      for k, v in cascade.items())  # fmt: skip
    cfg = tmp / "edgekit.toml"
    cfg.write_text(f'[model]\npath = "{detector}"\ndevice = "cpu"\n[source]\nuri = "{src}"\n'
                   f"[cascade]\n{lines}\n", encoding="utf-8")  # fmt: skip
    return cli("serve", "--config", cfg, "--check")


def _named(r, key: str) -> bool:
    err = [x for x in r.stderr.splitlines() if x.startswith("Error:")]
    return len(err) == 1 and (f"[cascade] {key}" in err[0] or f"cascade.{key}" in err[0])


@given(names=st.lists(NAMES, max_size=4))
def test_crop_labels(names, detect_bundle, species_bundle, tmp_path_factory):  # noqa: F811
    tmp = tmp_path_factory.mktemp("c")
    text = ",".join(names)
    r = _check(tmp, detect_bundle, {"classifier": str(species_bundle), "crop_labels": text})
    wanted = {n.strip() for n in text.split(",") if n.strip()}
    if wanted and wanted <= {"red", "green", "blue"}:
        assert r.exit_code == 0, r.output
    elif text.strip() == "":
        assert r.exit_code == 0, r.output  # "" is the default: every label
    else:
        assert r.exit_code == 1 and _named(r, "crop_labels"), r.output


@given(data=st.binary(max_size=300))
def test_label_file_bytes(data, detect_bundle, species_bundle, tmp_path_factory):  # noqa: F811
    tmp = tmp_path_factory.mktemp("l")
    (tmp / "labels.txt").write_bytes(data)
    r = _check(tmp, detect_bundle, {"classifier": str(species_bundle),
                                    "labels": str(tmp / "labels.txt")})  # fmt: skip
    assert r.exit_code == 0 or (r.exit_code == 1 and _named(r, "labels")), r.output


@given(data=st.binary(max_size=300))
def test_classifier_bytes(data, detect_bundle, tmp_path_factory):  # noqa: F811
    tmp = tmp_path_factory.mktemp("m")
    (tmp / "m.tflite").write_bytes(data)
    r = _check(tmp, detect_bundle, {"classifier": str(tmp / "m.tflite")})
    assert r.exit_code == 1 and _named(r, "classifier"), r.output
