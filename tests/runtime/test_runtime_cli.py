"""`edgekit classify` / `edgekit bench` as users run them, the no-TensorFlow rule, and the
interpreter provider fallback."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from edgekit.backends import list_edge_tpus
from edgekit.cli import main

V1, V2 = "mobilenet_v1_0.25_128_quant", "mobilenet_v2_1.0_224_quant"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_classify_json_on_coral_photos(coral_dir):
    r = run("classify", coral_dir / f"{V2}.tflite", coral_dir / "cat.bmp",
            coral_dir / "parrot.jpg", "--labels", coral_dir / "imagenet_labels.txt",
            "--top-k", 2, "--device", "cpu", "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert [o["image"] for o in out] == [str(coral_dir / "cat.bmp"), str(coral_dir / "parrot.jpg")]
    assert [o["classes"][0]["id"] for o in out] == [286, 89]
    assert set(out[0]["classes"][0]) == {"id", "label", "score"} and len(out[0]["classes"]) == 2
    assert out[0]["classes"][0]["label"] == "Egyptian cat"
    assert r.stderr == ""  # --device cpu: quiet


def test_classify_text_with_emulation_warning_and_bad_images(coral_dir, tmp_path, no_edgetpu):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    r = run("classify", coral_dir / f"{V1}_edgetpu.tflite", coral_dir / "cat.bmp", broken,
            tmp_path / "missing.png", coral_dir / "parrot.jpg", "-k", 1)  # fmt: skip
    assert r.exit_code == 1
    lines = r.stdout.splitlines()
    assert lines == [f"{coral_dir / 'cat.bmp'}: 286 (0.133)",
                     f"{coral_dir / 'parrot.jpg'}: 89 (0.762)"]  # fmt: skip
    err = r.stderr.splitlines()
    assert err[0].startswith("Warning: no Edge TPU found: running on the CPU (emulation)")
    assert err[1].startswith(f"Error: {broken}: cannot read image")
    assert err[2] == f"Error: {tmp_path / 'missing.png'}: no such image file; check the path"
    assert "Traceback" not in r.output


def test_classify_bundle_cli(bundles):
    r = run("classify", bundles["int8"], bundles["int8"] / ".." / "nope.png", "--json")
    assert r.exit_code == 1
    out = json.loads(r.stdout)
    assert out[0]["classes"] == [] and "no such image file" in out[0]["error"]


def test_classify_model_errors_are_one_line(coral_dir, tmp_path):
    for model, msg in [(tmp_path / "nope.tflite", "no such model file"),
                       (coral_dir / "cat.bmp", "not a TFLite model"),
                       (tmp_path, "not an edgekit bundle")]:  # fmt: skip
        r = run("classify", model, coral_dir / "cat.bmp")
        assert r.exit_code == 1 and msg in r.stderr and len(r.stderr.splitlines()) == 1


def test_bench_json_and_plot(coral_dir, tmp_path):
    png = tmp_path / "lat.png"
    r = run("bench", coral_dir / f"{V1}.tflite", "--device", "cpu", "--runs", 30,
            "--warmup", 2, "--threads", 1, "--json", "--plot", png)  # fmt: skip
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    for key in ("device", "model", "runs", "first_ms", "p50_ms", "p90_ms", "p99_ms", "mean_ms",
                "min_ms", "max_ms", "fps", "provider", "versions"):  # fmt: skip
        assert key in d
    assert d["device"] == "cpu" and d["runs"] == 30 and d["threads"] == 1
    assert d["min_ms"] <= d["p50_ms"] <= d["p90_ms"] <= d["p99_ms"] <= d["max_ms"]
    # both rounded: mean_ms to 1 us (0.0005 ms: 0.11 % of a 0.44 ms model), fps to 0.01
    assert d["fps"] == pytest.approx(1000 / d["mean_ms"], rel=1e-3 + 0.0005 / d["mean_ms"])
    assert d["versions"]["provider"].startswith("ai_edge_litert")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["lat.png"]  # nothing half-written left


def test_bench_text_and_bad_options(coral_dir):
    r = run("bench", coral_dir / f"{V1}.tflite", "-d", "cpu", "-n", 5, "--warmup", 0)
    assert r.exit_code == 0
    assert [ln.split()[0] for ln in r.stdout.splitlines()] == ["model", "device", "first", "steady"]
    assert run("bench", coral_dir / f"{V1}.tflite", "--runs", 0).exit_code == 2


def test_bench_plot_without_matplotlib_is_a_clear_error(coral_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    r = run("bench", coral_dir / f"{V1}.tflite", "-d", "cpu", "--plot", tmp_path / "x.png")
    assert r.exit_code == 1 and "pip install matplotlib" in r.stderr
    assert not (tmp_path / "x.png").exists()


SCRIPT = textwrap.dedent(
    """
    import json, sys
    from edgekit.cli import main
    codes = []
    for args in {calls!r}:
        try:
            main(args, standalone_mode=False)
            codes.append(0)
        except SystemExit as e:
            codes.append(e.code)
        except Exception as e:
            codes.append(repr(e))
    heavy = sorted(m for m in ("tensorflow", "keras", "cv2", "torch") if m in sys.modules)
    print(json.dumps({{"codes": codes, "heavy": heavy}}))
    """
)


def test_runtime_commands_never_import_tensorflow(coral_dir):
    m = str(coral_dir / f"{V1}_edgetpu.tflite")
    calls = [["classify", m, str(coral_dir / "cat.bmp"), "--json"],
             ["bench", m, "--runs", "3", "--warmup", "0", "--json"],
             ["doctor", "--json"]]  # fmt: skip
    p = subprocess.run([sys.executable, "-c", SCRIPT.format(calls=calls)], capture_output=True,
                       text=True, timeout=300)  # fmt: skip
    result = json.loads(p.stdout.strip().splitlines()[-1])
    assert result["heavy"] == [], result
    assert result["codes"][:2] == [0, 0], p.stderr


@pytest.mark.skipif(bool(list_edge_tpus()), reason="an Edge TPU is attached to this machine")
def test_bench_device_usb_on_this_machine_says_no_edgetpu(coral_dir):
    for model in (f"{V1}_edgetpu.tflite", f"{V1}.tflite"):
        p = subprocess.run([sys.executable, "-c", "from edgekit.cli import run; run()", "bench",
                            str(coral_dir / model), "--device", "usb"],
                           capture_output=True, text=True, timeout=120)  # fmt: skip
        assert p.returncode == 1 and p.stdout == ""
        lines = p.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: no Edge TPU found"), p.stderr
        assert "lsusb" in lines[0] and "edgekit doctor" in lines[0]


def test_provider_falls_back_to_tf_lite_only_as_a_last_resort(coral_dir):
    """ai_edge_litert and tflite_runtime made unimportable: tf.lite is used and reported."""
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["ai_edge_litert"] = None
        sys.modules["tflite_runtime"] = None
        from edgekit.backends import open_model
        r = open_model({str(coral_dir / (V1 + ".tflite"))!r}, "cpu")
        import numpy as np
        print(r.provider, int(r.run(np.zeros((128, 128, 3), np.uint8)).argmax()))
        """
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    provider, top = p.stdout.strip().splitlines()[-1].rsplit(" ", 1)
    assert provider.startswith("tensorflow 2.")
    import numpy as np

    from edgekit.backends import open_model

    cpu = open_model(coral_dir / f"{V1}.tflite", "cpu")
    assert int(top) == int(cpu.run(np.zeros((128, 128, 3), np.uint8)).argmax())


def test_no_provider_at_all_is_a_clear_error():
    from edgekit.backends.providers import find_provider
    from edgekit.errors import EdgekitError

    with pytest.raises(EdgekitError, match="no TFLite interpreter.*pip install ai-edge-litert"):
        find_provider(("edgekit_no_such_provider",))


def test_bench_plot_never_replaces_the_image_it_measures(coral_dir, tmp_path):
    """`bench M --image shot.png --plot shot.png` replaced the photo with the latency plot."""
    shot = tmp_path / "shot.png"
    shot.write_bytes((coral_dir / "cat.bmp").read_bytes())
    before = shot.read_bytes()
    r = run("bench", coral_dir / f"{V1}.tflite", "-d", "cpu", "--runs", 2, "--image", shot,
            "--plot", tmp_path / "." / "shot.png")  # fmt: skip
    assert r.exit_code == 1 and "is the --image file" in r.stderr
    assert r.stderr.count("Error:") == 1 and shot.read_bytes() == before
