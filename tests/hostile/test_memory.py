"""An --input-size that cannot fit is refused with one line before any work, instead of the OOM
killer ending train / zoo build silently (issue 9)."""

from __future__ import annotations

import shutil

import pytest

from edgekit import zoo
from edgekit.host import memory

from .conftest import cli


def test_params_extrapolation_is_exact_for_a_flatten_design():
    entry = zoo.get("inception_lite")
    opts = {"classes": 2}
    params, acts = memory.design_size(entry, 84, opts)  # 3x the default side
    from edgekit.host.keras_stats import inspect_keras

    real = inspect_keras(entry.builder()(input_size=84, **opts))
    assert params == real["params"]
    assert acts > 0


def test_zoo_build_of_a_huge_flatten_design_is_refused(tmp_path):
    r = cli("zoo", "build", "inception_lite", "--input-size", "16384", "-o", tmp_path / "m.h5")
    assert r.exit_code == 1 and "needs about" in r.output and "GiB" in r.output
    assert "--input-size" in r.output and list(tmp_path.iterdir()) == []


@pytest.fixture
def dataset(tmp_path, photo):
    for cls in ("a", "b"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for i in range(3):
            shutil.copy(photo, tmp_path / "data" / cls / f"{cls}{i}.jpg")
    return tmp_path / "data"


def test_train_at_a_size_that_cannot_fit_is_refused_before_reading_images(
    dataset, tmp_path, monkeypatch
):
    monkeypatch.setattr(memory, "available_bytes", lambda root="/": 2 * memory.GiB)
    read = []
    from edgekit import images

    real = images.load_rgb
    monkeypatch.setattr(images, "load_rgb", lambda p: read.append(p) or real(p))
    r = cli("train", dataset, "--model", "squeezenet", "--input-size", "4096",
            "-o", tmp_path / "out" / "m.h5")  # fmt: skip
    assert r.exit_code == 1 and "training squeezenet at 4096x4096 on 6 images needs about" in (
        r.output
    )
    assert "2.0 GiB is available" in r.output and read == []
    assert not (tmp_path / "out").exists()


def test_available_memory_reads_meminfo_and_cgroup(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "meminfo").write_text("MemTotal: 8000000 kB\nMemAvailable: 4000000 kB\n")
    assert memory.available_bytes(str(tmp_path)) == 4000000 * 1024
    cg = tmp_path / "sys" / "fs" / "cgroup"
    cg.mkdir(parents=True)
    (cg / "memory.max").write_text("1073741824\n")
    (cg / "memory.current").write_text("73741824\n")
    assert memory.available_bytes(str(tmp_path)) == 1_000_000_000
