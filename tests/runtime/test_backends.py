"""The hardware boundary: device strings, enumeration, model resolution, Edge TPU failure modes
(through a fake libedgetpu that follows the documented contract) and the CPU path for real."""

from __future__ import annotations

import os
import shutil
import sys

import numpy as np
import pytest

from edgekit import backends
from edgekit.backends import EdgeTpuError, default_cpu_threads, open_model, resolve_model
from edgekit.backends.devices import EdgeTpuDevice, list_edge_tpus, parse_device, select_device
from edgekit.backends.edgetpu import SystemStack, _google_pycoral, explain
from edgekit.backends.providers import find_provider
from edgekit.errors import EdgekitError

from .runtime_fakes import USB3, FakeStack, make_sysfs

V1 = "mobilenet_v1_0.25_128_quant"


@pytest.mark.parametrize(
    "s, want",
    [("usb", ("usb", None)), ("usb:1", ("usb", 1)), ("pci", ("pci", None)),
     ("pci:0", ("pci", 0)), (":2", (None, 2)), ("USB:0", ("usb", 0))],
)  # fmt: skip
def test_parse_device_accepts_libedgetpu_strings(s, want):
    assert parse_device(s) == want


@pytest.mark.parametrize("s", ["", ":", "usb:", "usb:x", "gpu", "usb:0:1", "tpu:0", "usb0"])
def test_parse_device_rejects_the_rest(s):
    with pytest.raises(EdgekitError, match="invalid device"):
        parse_device(s)


def test_open_model_rejects_bad_device_string(coral_dir):
    with pytest.raises(EdgekitError, match="invalid device 'usb:x'"):
        open_model(coral_dir / f"{V1}_edgetpu.tflite", "usb:x")


@pytest.mark.parametrize("device", ["usb:*", "usb:0,usb:1", "usb:0,,usb:1", "*"])
def test_a_device_list_outside_serve_says_where_it_belongs(coral_dir, device):
    """classify/detect/bench -d usb:* said only "invalid device 'usb:*'; use auto, cpu, ..."
    though the README offers usb:* and lists (for serve, and compiled segments)."""
    with pytest.raises(EdgekitError) as e:
        open_model(coral_dir / f"{V1}_edgetpu.tflite", device)
    assert str(e.value) == (
        f"{V1}_edgetpu.tflite: several Edge TPUs ({device!r}) are for `edgekit serve` (one "
        "worker per Coral) and compiled segments; name one device here, e.g. usb:0"
    )


def test_sysfs_enumeration_finds_both_usb_ids_and_apex(tmp_path):
    root = make_sysfs(tmp_path, usb=[("1-1", "046d", "c52b", 12),  # a mouse
                                     ("2-1", "18d1", "9302", 5000),
                                     ("1-1.2", "1a6e", "089a", 480)], apex=1)  # fmt: skip
    devs = list_edge_tpus(root)
    assert [d.name for d in devs] == ["usb:0", "usb:1", "pci:0"]
    assert [(d.path, d.speed_mbps, d.initialized) for d in devs[:2]] == [
        ("/sys/bus/usb/devices/1-1.2", 480, False),
        ("/sys/bus/usb/devices/2-1", 5000, True),
    ]
    assert devs[2].path == "/sys/class/apex/apex_0"
    assert select_device(devs, "usb:1").path.endswith("2-1")
    assert select_device(devs, ":2").type == "pci"
    assert select_device(devs, "pci").name == "pci:0"
    assert select_device(devs, None).name == "usb:0"
    assert select_device(devs, "usb:2") is None


def test_enumeration_without_sysfs_says_unknown_and_dev_apex_counts(tmp_path):
    assert list_edge_tpus(tmp_path) is None
    (tmp_path / "sys").mkdir()
    assert list_edge_tpus(tmp_path) == []
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev/apex_0").touch()
    assert [d.path for d in list_edge_tpus(tmp_path)] == ["/dev/apex_0"]


def test_resolve_model_finds_twins_and_rejects_non_models(coral_dir, tmp_path):
    f = resolve_model(coral_dir / f"{V1}_edgetpu.tflite")
    assert (f.cpu.name, f.edgetpu.name) == (f"{V1}.tflite", f"{V1}_edgetpu.tflite")
    f = resolve_model(coral_dir / f"{V1}.tflite")
    assert f.edgetpu is None and f.compiled_beside.name == f"{V1}_edgetpu.tflite"
    with pytest.raises(EdgekitError, match="not a TFLite model"):
        resolve_model(coral_dir / "cat.bmp")
    with pytest.raises(EdgekitError, match="no such model"):
        resolve_model(tmp_path / "nope.tflite")
    with pytest.raises(EdgekitError, match="not an edgekit bundle"):
        resolve_model(tmp_path)


def test_cpu_runner_io(coral_dir):
    r = open_model(coral_dir / f"{V1}.tflite", "cpu", threads=1)
    assert (r.device, r.backend, r.provider) == ("cpu", "cpu", str(find_provider()))
    assert r.input_shape == (1, 128, 128, 3) and r.input_dtype == np.uint8
    x = np.full((128, 128, 3), 128, np.uint8)
    out = r.run(x)
    assert out.shape == (1, 1001) and out.dtype == np.uint8
    assert np.array_equal(r.run(x[None]), out)  # with or without the batch axis
    with pytest.raises(EdgekitError, match="dtype"):
        r.set_input(x.astype(np.int8))
    with pytest.raises(EdgekitError, match="does not fit"):
        r.set_input(np.zeros((64, 64, 3), np.uint8))
    r.close()
    with pytest.raises(EdgekitError, match="closed"):
        r.set_input(x)


def test_auto_without_edgetpu_warns_once_and_runs_the_cpu_twin(coral_dir, no_edgetpu):
    said = []
    r = open_model(coral_dir / f"{V1}_edgetpu.tflite", "auto", on_warning=said.append)
    assert r.backend == "cpu" and r.model_path.endswith(f"{V1}.tflite")
    want = f"no Edge TPU found: running on the CPU (emulation) with the CPU twin {V1}.tflite"
    n = default_cpu_threads()
    assert said == [
        f"{want}, {n} thread{'s' if n > 1 else ''} (cores minus one; --threads to change)"
    ]
    assert r.threads == n


def test_cpu_threads_default_to_cores_minus_one_and_can_be_overridden(coral_dir, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})  # a Pi 4
    assert default_cpu_threads() == 3
    assert open_model(coral_dir / f"{V1}.tflite", "cpu").threads == 3
    assert open_model(coral_dir / f"{V1}.tflite", "cpu", threads=1).threads == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert default_cpu_threads() == 1


def test_cpu_device_is_quiet_for_a_cpu_model_but_names_the_twin(coral_dir):
    said = []
    open_model(coral_dir / f"{V1}.tflite", "cpu", on_warning=said.append)
    assert said == []
    open_model(coral_dir / f"{V1}_edgetpu.tflite", "cpu", on_warning=said.append)
    assert said == [f"running the CPU twin {V1}.tflite of {V1}_edgetpu.tflite (emulation)"]


def test_compiled_model_without_twin_cannot_run_on_cpu(coral_dir, tmp_path, no_edgetpu):
    lone = tmp_path / f"{V1}_edgetpu.tflite"
    shutil.copy(coral_dir / lone.name, lone)
    said = []
    for device in ("cpu", "auto"):
        with pytest.raises(EdgekitError, match="compiled for the Edge TPU and cannot run without"):
            open_model(lone, device, on_warning=said.append)
    assert said == []  # the error alone, no warning line before it


def test_no_device_error_comes_first_and_names_what_to_check(coral_dir, no_edgetpu):
    for model in (f"{V1}_edgetpu.tflite", f"{V1}.tflite"):  # even for an uncompiled model
        with pytest.raises(EdgeTpuError) as e:
            open_model(coral_dir / model, "usb")
        msg = str(e.value)
        assert msg.startswith("no Edge TPU found (and libedgetpu is not installed)")
        for what in ("USB 3", "lsusb", "1a6e:089a", "18d1:9302", "plugdev", "edgekit doctor"):
            assert what in msg


def test_library_missing_with_a_device_attached(coral_dir, use_stack):
    use_stack(FakeStack(devices=[USB3], lib_missing=True))
    with pytest.raises(EdgeTpuError, match="libedgetpu is not installed.*edgekit stack"):
        open_model(coral_dir / f"{V1}_edgetpu.tflite", "usb:0")


def test_delegate_failure_with_device_present_is_explained(coral_dir, use_stack):
    use_stack(FakeStack(devices=[USB3], busy=True))
    with pytest.raises(EdgeTpuError, match=r"could not open the Edge TPU usb:0 .*another process"):
        open_model(coral_dir / f"{V1}_edgetpu.tflite", "usb")


def test_missing_index_lists_what_is_attached(coral_dir, use_stack):
    use_stack(FakeStack(devices=[USB3]))
    with pytest.raises(EdgeTpuError, match=r"no Edge TPU at 'usb:1': attached: usb:0"):
        open_model(coral_dir / f"{V1}_edgetpu.tflite", "usb:1")


def test_runtime_too_old_names_both_versions_and_the_fixes(coral_dir, use_stack):
    use_stack(FakeStack(devices=[USB3], runtime=13, model_runtime=14))
    with pytest.raises(EdgeTpuError) as e:
        open_model(coral_dir / f"{V1}_edgetpu.tflite", "usb")
    msg = str(e.value)
    assert "needs Edge TPU runtime 14" in msg and "libedgetpu is runtime 13" in msg
    assert "newer libedgetpu" in msg and "edgetpu_compiler -m 13" in msg


def test_uncompiled_model_on_an_attached_edgetpu(coral_dir, use_stack):
    stack = use_stack(FakeStack(devices=[USB3]))
    with pytest.raises(EdgekitError, match=f"{V1}.tflite is not compiled.*{V1}_edgetpu.tflite"):
        open_model(coral_dir / f"{V1}.tflite", "usb")
    said = []
    r = open_model(coral_dir / f"{V1}.tflite", "auto", on_warning=said.append)
    assert r.backend == "cpu" and said == [f"{V1}.tflite is not compiled for the Edge TPU: "
                                           "running it on the CPU"]  # fmt: skip
    assert stack.opened == []


def test_edgetpu_runner_through_the_boundary(coral_dir, use_stack):
    stack = use_stack(FakeStack(devices=[USB3]))
    said = []
    r = open_model(coral_dir / f"{V1}_edgetpu.tflite", "auto", on_warning=said.append)
    assert (r.backend, r.device, r.provider) == ("edgetpu", "usb:0", "fake-libedgetpu 16.0")
    assert said == [] and stack.opened == [(str(coral_dir / f"{V1}_edgetpu.tflite"), None)]
    cpu = open_model(coral_dir / f"{V1}.tflite", "cpu")
    x = np.random.default_rng(1).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    assert np.array_equal(r.run(x), cpu.run(x))
    # bundles pick their compiled model too, and the device string reaches libedgetpu as given
    r2 = open_model(coral_dir / f"{V1}_edgetpu.tflite", ":0")
    assert r2.device == "usb:0" and stack.opened[-1][1] == ":0"


def test_auto_never_falls_back_to_cpu_when_the_edgetpu_fails(coral_dir, use_stack):
    use_stack(FakeStack(devices=[USB3], busy=True))
    with pytest.raises(EdgeTpuError, match="could not open"):
        open_model(coral_dir / f"{V1}_edgetpu.tflite", "auto")


def test_fault_during_inference_is_an_edgetpu_error(coral_dir, use_stack):
    use_stack(FakeStack(devices=[USB3], fail_invoke_after=1))
    r = open_model(coral_dir / f"{V1}_edgetpu.tflite", "usb")
    x = np.zeros((128, 128, 3), np.uint8)
    r.run(x)
    with pytest.raises(EdgeTpuError, match="inference failed on usb:0: Error in device opening"):
        r.run(x)


def test_registry_plugin_backend(coral_dir):
    calls = []

    def factory(model_path, device, threads):
        calls.append(device)
        return backends._cpu_factory(model_path, "cpu", threads)

    old = backends.register_backend("myaccel", factory)
    try:
        assert "myaccel" in backends.available_backends()
        assert open_model(coral_dir / f"{V1}.tflite", "myaccel:0").backend == "cpu"
        assert calls == ["myaccel:0"]
    finally:
        backends._BACKENDS.pop("myaccel")
        assert old is None


def test_real_stack_here_reports_the_missing_library(coral_dir, tmp_path, use_stack):
    """SystemStack for real (ctypes dlopen, the provider's load_delegate), with a fake sysfs
    that shows a Coral: this machine has no libedgetpu, so that is the error."""
    if SystemStack().library_problem() is None:
        pytest.skip("libedgetpu is installed here")
    stack = use_stack(SystemStack(root=make_sysfs(tmp_path, usb=[("2-1", "18d1", "9302", 5000)])))
    assert "ai_edge_litert" in stack.provider and "libedgetpu.so.1" in stack.provider
    with pytest.raises(EdgeTpuError, match="libedgetpu is not installed.*cannot open shared"):
        open_model(coral_dir / f"{V1}_edgetpu.tflite", "usb")


def test_real_delegate_path_translates_load_delegate_errors(coral_dir, tmp_path, monkeypatch,
                                                            edgetpu_standins):  # fmt: skip
    # The probe child passes on the working stand-in; the in-process load then fails.
    lib = edgetpu_standins["works"]
    stack = SystemStack(root=make_sysfs(tmp_path, usb=[("2-1", "18d1", "9302", 5000)]), library=lib)
    provider = find_provider()
    seen = []

    def load_delegate(library, options=None):
        seen.append((library, options))
        raise ValueError("Failed to load delegate from libedgetpu.so.1\n")

    monkeypatch.setattr(stack, "library_problem", lambda: None)
    monkeypatch.setattr(
        "edgekit.backends.edgetpu.find_provider",
        lambda: type(provider)(provider.name, provider.version, provider.interpreter_cls,
                               load_delegate),
    )  # fmt: skip
    backend = backends.EdgeTpuBackend(stack)
    with pytest.raises(EdgeTpuError, match="could not open the Edge TPU usb:0"):
        backend(str(coral_dir / f"{V1}_edgetpu.tflite"), "usb:0")
    assert seen == [(str(lib), {"device": "usb:0"})]
    with pytest.raises(EdgeTpuError):
        backend(str(coral_dir / f"{V1}_edgetpu.tflite"), None)
    assert seen[-1] == (str(lib), {})


def test_explain_missing_shared_object():
    e = explain(OSError("libedgetpu.so.1: cannot open shared object file: No such file or "
                        "directory"), "m_edgetpu.tflite", "usb:0")  # fmt: skip
    assert str(e).startswith("libedgetpu is not installed") and "edgekit stack" in str(e)


def test_pypi_pycoral_impostor_is_ignored_and_googles_is_used(tmp_path, monkeypatch, request,
                                                              edgetpu_standins):  # fmt: skip
    # The fake pycoral modules imported here must not outlive the test (monkeypatch only
    # restores what it deleted).
    request.addfinalizer(lambda: [sys.modules.pop(m) for m in list(sys.modules)
                                  if m.startswith("pycoral")])  # fmt: skip
    impostor = tmp_path / "impostor"
    (impostor / "pycoral").mkdir(parents=True)
    (impostor / "pycoral/__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(impostor))
    for m in [m for m in sys.modules if m.startswith("pycoral")]:
        monkeypatch.delitem(sys.modules, m)
    assert _google_pycoral() is None

    # Google's pycoral API: list_edge_tpus() -> [{'type', 'path'}], make_interpreter(path, device)
    google = tmp_path / "google"
    (google / "pycoral/utils").mkdir(parents=True)
    (google / "pycoral/__init__.py").write_text("")
    (google / "pycoral/utils/__init__.py").write_text("")
    (google / "pycoral/utils/edgetpu.py").write_text(
        "def list_edge_tpus():\n"
        "    return [{'type': 'usb', 'path': '/sys/bus/usb/devices/2-1'},"
        " {'type': 'pci', 'path': '/dev/apex_0'}]\n"
        "def make_interpreter(model_path_or_content, device=None, delegate=None):\n"
        "    raise ValueError('Failed to load delegate from libedgetpu.so.1')\n"
    )
    for m in [m for m in sys.modules if m.startswith("pycoral")]:
        monkeypatch.delitem(sys.modules, m)
    monkeypatch.syspath_prepend(str(google))
    root = make_sysfs(tmp_path / "root", usb=[("2-1", "18d1", "9302", 480)])
    stack = SystemStack(root=root, library=edgetpu_standins["works"])  # passes the probe
    assert stack.provider.startswith("pycoral")
    assert stack.list_devices() == [
        EdgeTpuDevice("usb", "/sys/bus/usb/devices/2-1", 0, 480, True),
        EdgeTpuDevice("pci", "/dev/apex_0", 0, None, True),
    ]
    monkeypatch.setattr(stack, "library_problem", lambda: None)
    with pytest.raises(EdgeTpuError, match="could not open the Edge TPU pci:0"):
        backends.EdgeTpuBackend(stack)("m_edgetpu.tflite", "pci")
