"""convert's options are one validated object and its tasks sit behind one registry (issue 15
item 7). No TensorFlow here: everything below is checked before it is imported."""

from __future__ import annotations

import sys

import pytest

from edgekit.errors import EdgekitError
from edgekit.host.convert import convert
from edgekit.host.convert_options import ConvertOptions


def test_unknown_option_is_refused_by_name(tmp_path):
    model = tmp_path / "m.h5"
    model.write_bytes(b"x")
    with pytest.raises(EdgekitError) as e:
        convert(model, tmp_path / "out", calib=tmp_path, input_rnage=(0, 1))
    assert "input_rnage" in e.value.message and "input_range" in e.value.hint
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"input_range": (1, 0)}, "LO must be below HI"),
        ({"input_range": (0, float("nan"))}, "--input-range"),
        ({"resize": "zoom"}, "--resize"),
        ({"task": "segment"}, "--task"),
        ({"num_calib": 0}, "--num-calib"),
        ({"iou": 1.5}, "--iou"),
        ({"compile_timeout": 0}, "--compile-timeout"),
    ],
)
def test_bad_values_are_refused_when_the_options_are_built(kwargs, words):
    with pytest.raises(EdgekitError) as e:
        ConvertOptions.from_kwargs(**kwargs)
    assert words in e.value.message


def test_options_are_frozen_and_normalised(tmp_path):
    o = ConvertOptions.from_kwargs(calib=str(tmp_path), input_range=(-1, 1), input_size=[8, 9])
    assert o.calib == tmp_path and o.input_range == (-1.0, 1.0) and o.input_size == (8, 9)
    assert o.resize is None and o.input_range is not None  # None: decided later
    with pytest.raises(AttributeError):
        o.io = "int8"  # type: ignore[misc]


def test_bad_options_never_import_tensorflow(tmp_path):
    import subprocess

    code = (
        "import sys\n"
        "from edgekit.host.convert import convert\n"
        "from edgekit.errors import EdgekitError\n"
        f"open({str(tmp_path / 'm.h5')!r}, 'wb').write(b'\\x89HDF\\r\\n\\x1a\\n' + bytes(64))\n"
        "try:\n"
        f"    convert({str(tmp_path / 'm.h5')!r}, {str(tmp_path / 'o')!r}, calib=None)\n"
        "except EdgekitError as e:\n"
        "    print(e.message)\n"
        "print('tensorflow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "no calibration images" in out and out.strip().endswith("False")


def test_the_task_registry_picks_detect_for_the_head_else_classify():
    from edgekit.host import convert_task
    from edgekit.host.convert_classify import ClassifyTask
    from edgekit.host.convert_detect import DetectTask

    assert convert_task.task_class("classify") is ClassifyTask
    assert convert_task.task_class("detect") is DetectTask
    previous = convert_task.register_task("mine", "edgekit.host.convert_classify:ClassifyTask")
    try:
        assert previous is None and next(iter(convert_task._REGISTRY)) == "mine"
    finally:
        del convert_task._REGISTRY["mine"]
