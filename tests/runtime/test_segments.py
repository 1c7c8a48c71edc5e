"""Compiled segments (edgetpu_compiler --num_segments N): Google's real SSD segments found as a
set, refused on the CPU in one line, chained over two stand-in Corals; and CPU segments split
from a small real model chained to the same output as the whole model."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit import backends
from edgekit.backends.edgetpu import SystemStack
from edgekit.backends.segments import segment_set
from edgekit.errors import EdgekitError
from tests.edgetpu_standin import edgetpu_standins  # noqa: F401 - the fixture
from tests.runtime.runtime_fakes import make_sysfs


def test_real_segments_are_one_set_and_need_edge_tpus_or_the_twin(ssd_segments):
    assert segment_set(ssd_segments[1]) == ssd_segments
    for device in ("cpu", "auto"):  # no Edge TPU here
        notes: list[str] = []
        with pytest.raises(EdgekitError) as e:
            backends.open_model(ssd_segments[0], device=device, on_warning=notes.append)
        assert "compiled segments (edgetpu-custom-op) cannot run on the CPU interpreter" in str(
            e.value) and "\n" not in str(e.value)  # fmt: skip
        assert notes == []  # no "running on the CPU" notice before the refusal
    ssd_segments[1].unlink()
    with pytest.raises(EdgekitError, match=r"is segment 0 of 2, but .*segment_1_of_2.* missing"):
        backends.open_model(ssd_segments[0], device="cpu")


def test_real_segments_run_over_two_standin_corals(ssd_segments, edgetpu_standins, tmp_path,  # noqa: F811
                                                   monkeypatch):  # fmt: skip
    root = make_sysfs(tmp_path / "root", usb=[("2-1", "18d1", "9302", 5000),
                                              ("2-2", "18d1", "9302", 5000)])  # fmt: skip
    monkeypatch.setenv("EDGEKIT_LIBEDGETPU", str(edgetpu_standins["works"]))
    monkeypatch.setenv("EDGETPU_STANDIN_DEVICES", "2")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    old = backends.register_backend("edgetpu", backends.EdgeTpuBackend(SystemStack(root=root)))
    try:
        r = backends.open_model(ssd_segments[0], device="auto")
        try:
            assert r.backend == "edgetpu" and r.device == "usb:0+usb:1"
            out = r.run(np.zeros(r.input_shape, r.input_dtype))  # segment 0 -> 1 -> outputs
            names = [d["name"] for d in r.interpreter.get_output_details()]
            assert names[0] == "TFLite_Detection_PostProcess" and out.shape == (1, 20, 4)
        finally:
            r.close()
        from edgekit.tasks import open_task_model

        det = open_task_model(ssd_segments[0])  # the head (SSD post-processing) is in segment 1
        try:
            assert det.task == "detect" and det.runner.device == "usb:0+usb:1"
            assert det.run(np.zeros((300, 300, 3), np.uint8)).image_size == (300, 300)
        finally:
            det.close()
        with pytest.raises(EdgekitError, match="2 segments need 2 devices; '.*' names 3"):
            backends.open_model(ssd_segments[0], device="usb:0,usb:1,usb:1")
        with pytest.raises(EdgekitError, match="invalid device ''"):
            backends.open_model(ssd_segments[0], device="usb:0,")
    finally:
        backends.register_backend("edgetpu", old)


def _rename(data: bytes, old: str, new: str) -> bytes:
    """A tensor renamed in place (flatbuffer strings are length-prefixed: same length only)."""
    assert len(old) == len(new) and data.count(old.encode()) == 1
    return data.replace(old.encode(), new.encode())


def test_cpu_segments_split_from_a_model_give_the_whole_models_output(tmp_path):
    from edgekit.host.tfenv import load_tensorflow

    tf = load_tensorflow()
    keras = tf.keras
    inp = keras.Input((16, 16, 3), batch_size=1, name="image")
    conv = keras.layers.Conv2D(4, 3, activation="relu")
    head = keras.Sequential([keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(5)])
    whole, first = keras.Model(inp, head(conv(inp))), keras.Model(inp, conv(inp))

    def tflite(model) -> bytes:
        return tf.lite.TFLiteConverter.from_keras_model(model).convert()

    from edgekit.tflite import read_model

    seg0 = tflite(first)
    out0 = read_model(seg0).outputs[0].name
    # segment 1's input named "serving_default_<f...>:0", as long as segment 0's output name
    feat_in = keras.Input((14, 14, 4), batch_size=1, name="f" * (len(out0) - 18))
    seg1 = tflite(keras.Model(feat_in, head(feat_in)))
    in1 = read_model(seg1).inputs[0].name
    # What edgetpu_compiler guarantees: the cut tensor has one name in both segments.
    (tmp_path / "tiny.tflite").write_bytes(tflite(whole))
    (tmp_path / "tiny_segment_0_of_2_edgetpu.tflite").write_bytes(seg0)
    (tmp_path / "tiny_segment_1_of_2_edgetpu.tflite").write_bytes(_rename(seg1, in1, out0))
    x = np.random.default_rng(0).random((1, 16, 16, 3), dtype=np.float32)
    want = backends.open_model(tmp_path / "tiny.tflite", device="cpu").run(x)
    # without the twin: the segments in sequence (no edgetpu-custom-op in them)
    (tmp_path / "tiny.tflite").rename(tmp_path / "whole.tflite")
    notes: list[str] = []
    r = backends.open_model(tmp_path / "tiny_segment_1_of_2_edgetpu.tflite", device="auto",
                            on_warning=notes.append)  # fmt: skip
    got = r.run(x)
    assert r.backend == "cpu" and r.device == "cpu"
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # with the twin beside them, the twin runs (one notice says so)
    (tmp_path / "whole.tflite").rename(tmp_path / "tiny.tflite")
    notes.clear()
    r2 = backends.open_model(tmp_path / "tiny_segment_0_of_2_edgetpu.tflite", device="cpu",
                             on_warning=notes.append)  # fmt: skip
    np.testing.assert_allclose(r2.run(x), want, rtol=1e-6)
    assert r2.model_path.endswith("tiny.tflite") and any("CPU twin" in n for n in notes)
