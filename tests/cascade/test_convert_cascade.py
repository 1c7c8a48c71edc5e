"""`edgekit convert DETECTOR --classify CLASSIFIER`: a real Keras detector (coloured squares,
built here) quantized and co-compiled with a real classifier bundle in ONE call of the compiler
stand-in (tests/convert/fake_edgetpu_compiler); the written bundle carries the classifier, so
`detect BUNDLE`, `serve` with only `[model] path`, `bench` and `inspect` run or show the cascade;
fleet packing and signing cover the classifier; bad combinations are one line and write
nothing."""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edgekit import signing
from edgekit.cli import main
from edgekit.errors import EdgekitError
from edgekit.manifest import load_bundle
from edgekit.stream import fleet_wire as wire
from tests.cascade.conftest import serving
from tests.detect.conftest import LABELS, scene
from tests.stream.test_mqtt import broker  # noqa: F401  (fixture: a real mosquitto)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[2]
FAKE = ROOT / "tests" / "convert" / "fake_edgetpu_compiler"
COLOURS = ("red", "green", "blue")


def _cli(*args, env=None):
    return CliRunner(env=env).invoke(main, [str(a) for a in args], catch_exceptions=True)


def one_line_error(r, *needles, code=2):
    assert r.exit_code == code, (r.output, r.exception)
    err = r.stderr.strip().splitlines()[-1]
    assert err.startswith("Error:") and r.stderr.count("Error:") == 1, r.stderr
    assert "Traceback" not in r.output
    for n in needles:
        assert n in err, err


def build_detector(keras, path: Path) -> Path:
    """A real Keras model with the zoo detector's head (strides 8 and 16, one output
    ``detections`` (1, 16 + 4, 4 + 3), sigmoid): a 32x32 input is a 4x4 grid of 8-px cells and a
    red/green/blue cell is one detection of its colour, box = the cell (as
    tests/detect/make_tiny_detectors.py); the stride-16 rows never fire."""
    inp = keras.Input((32, 32, 3), batch_size=1, name="image")
    heads = []
    for stride, box, cls_bias in ((8, 0.125, -12.0), (16, 0.25, -40.0)):
        conv = keras.layers.Conv2D(7, 1, name=f"head{stride}")
        x = keras.layers.AveragePooling2D(stride)(inp)
        x = keras.layers.Activation("sigmoid")(conv(x))
        heads.append((keras.layers.Reshape(((32 // stride) ** 2, 7))(x), conv, box, cls_bias))
    out = keras.layers.Concatenate(axis=1, name="detections")([h[0] for h in heads])
    model = keras.Model(inp, out)
    for _, conv, box, cls_bias in heads:
        kernel = np.zeros((1, 1, 3, 7), np.float32)
        kernel[0, 0, :, 4:] = 20.0 * np.eye(3)
        logit = float(np.log(box / (1 - box)))
        conv.set_weights([kernel, np.array([logit] * 4 + [cls_bias] * 3, np.float32)])
    model.save(path)
    (path.parent / "labels.txt").write_text("".join(f"{n}\n" for n in LABELS))
    return path


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """The Keras detector, its calibration scenes (320x320, 80-px squares: one cell each), a
    float (not int8) classifier .tflite, and a photo with a red and a blue square."""
    import keras
    import tensorflow as tf

    d = tmp_path_factory.mktemp("cascade_convert")
    det = build_detector(keras, d / "det.h5")
    rng = np.random.default_rng(0)
    calib = d / "scenes"
    calib.mkdir()
    for i in range(40):
        cells = [(COLOURS[rng.integers(3)], 80 * c, 80 * r, 80 * c + 80, 80 * r + 80)
                 for r in range(4) for c in range(4) if rng.random() < 0.3]  # fmt: skip
        Image.fromarray(scene(320, 320, cells)).save(calib / f"scene_{i:02d}.png")
    inp = keras.Input((16, 16, 3), batch_size=1)
    flat = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(
        keras.layers.GlobalAveragePooling2D()(inp)))  # fmt: skip
    float_tflite = d / "float_clf.tflite"
    float_tflite.write_bytes(tf.lite.TFLiteConverter.from_keras_model(flat).convert())
    seg = keras.Model(inp, keras.layers.Conv2D(2, 1)(inp))  # a map, not one score per class
    conv = tf.lite.TFLiteConverter.from_keras_model(seg)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([np.random.rand(1, 16, 16, 3).astype("float32")]
                                           for _ in range(8))  # fmt: skip
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.uint8
    segmenter = d / "segmenter.tflite"
    segmenter.write_bytes(conv.convert())
    photo = d / "two.png"
    Image.fromarray(scene(128, 128, [("red", 64, 0, 96, 32), ("blue", 0, 64, 32, 96)])).save(photo)
    return {"det": det, "labels": d / "labels.txt", "calib": calib, "float": float_tflite,
            "photo": photo, "dir": d, "segmenter": segmenter}  # fmt: skip


def convert_args(made, out, classifier, *extra):
    return ["convert", made["det"], "--task", "detect", "--calib", made["calib"], "--labels",
            made["labels"], "--num-calib", 30, "-o", out, "--classify", classifier,
            "--compiler", FAKE, *extra]  # fmt: skip


@pytest.fixture(scope="module")
def cascade(made, species_bundle):
    """The cascade bundle, converted once; the compiler's argv and convert's outputs kept."""
    out = made["dir"] / "feeder"
    argv = made["dir"] / "argv.txt"
    r = _cli(*convert_args(made, out, species_bundle, "--crop-labels", "red,green",
                           "--classify-top-k", 2),
             env={"FAKE_EDGETPU_ARGS_FILE": str(argv)})  # fmt: skip
    assert r.exit_code == 0, (r.output, r.exception)
    return {"bundle": out, "argv": argv.read_text().split(), "text": r.stdout}


def test_one_compiler_call_compiles_both_and_the_bundle_carries_the_classifier(cascade):
    out = cascade["bundle"]
    models = [Path(a).name for a in cascade["argv"] if a.endswith(".tflite")]
    assert models == ["det_int8.tflite", "u8_01_int8.tflite"]  # detector first, one call
    b = load_bundle(out)
    m = b.manifest
    assert m.task == "detect" and m.labels == LABELS
    assert m.cascade == {"classifier": "classifier", "crop_labels": ("red", "green"), "top_k": 2}
    assert m.models["edgetpu"] == "det_int8_edgetpu.tflite" and b.edgetpu_model.is_file()
    assert m.compile["cocompiled_with"] == ["u8_01_int8"]
    c = load_bundle(out / "classifier")
    assert c.manifest.task == "classify"
    assert c.manifest.labels == ("cardinal", "parakeet", "bluejay")
    assert c.manifest.input.range == (0.0, 1.0)  # the classifier's own preprocessing, kept
    assert c.edgetpu_model.name == "u8_01_int8_edgetpu.tflite" and c.edgetpu_model.is_file()
    assert c.manifest.compile["cocompiled_with"] == ["det_int8"]
    assert (out / "classifier" / "labels.txt").read_text() == "cardinal\nparakeet\nbluejay\n"
    for man in (m, c.manifest):  # each model's share of the cache, from the compiler's blocks
        rep = man.compile["report"]
        assert rep["on_chip_bytes"] > 0 and rep["off_chip_bytes"] == 0
    text = cascade["text"]
    assert "classifier/" in text.splitlines()[0]
    assert "co-compiled in one edgetpu_compiler call, detector first" in text
    assert "detector   det_int8_edgetpu.tflite: on-chip" in text
    assert "classifier u8_01_int8_edgetpu.tflite: on-chip" in text
    assert "both models' parameters stay on-chip" in text


def test_detect_on_the_bundle_alone_runs_the_cascade(cascade, made):
    r = _cli("detect", cascade["bundle"], made["photo"], "-d", "cpu", "--json")
    assert r.exit_code == 0, r.output
    by = {d["label"]: d for d in json.loads(r.stdout)["detections"]}
    assert set(by) == {"red", "blue"}
    assert [c["label"] for c in by["red"]["classes"]] == ["cardinal", "parakeet"]  # top_k 2
    assert by["blue"]["classes"] == []  # not one of the bundle's crop labels
    # the user's options still win: every label, top 1; an explicit classifier replaces it
    r = _cli("detect", cascade["bundle"], made["photo"], "-d", "cpu", "--json",
             "--crop-labels", "blue", "--classify-top-k", "1")  # fmt: skip
    by = {d["label"]: d for d in json.loads(r.stdout)["detections"]}
    assert by["red"]["classes"] == [] and [c["label"] for c in by["blue"]["classes"]] == [
        "bluejay"]  # fmt: skip
    r = _cli("detect", cascade["bundle"], made["photo"], "-d", "cpu", "--json", "--no-classify")
    assert all("classes" not in d for d in json.loads(r.stdout)["detections"])
    text = _cli("detect", cascade["bundle"], made["photo"], "-d", "cpu")
    assert "-> cardinal (0)" in text.stdout and "1 crop classified" in text.stdout


def test_inspect_and_bench_show_both_models(cascade, made):
    r = _cli("inspect", cascade["bundle"], "--json")
    assert r.exit_code == 0, r.output
    c = json.loads(r.stdout)["cascade"]
    assert c["name"] == "u8_01" and c["labels"] == 3 and c["crop_labels"] == ["red", "green"]
    assert c["cocompiled_with"] == ["det_int8"] and c["together"]["fits"]
    text = _cli("inspect", cascade["bundle"]).stdout
    assert "Cascade  crops of red, green -> " in text and "co-compiled with det_int8" in text
    r = _cli("bench", cascade["bundle"], "-d", "cpu", "--runs", 3, "--warmup", 1, "--image",
             made["photo"], "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    b = json.loads(r.stdout)
    assert b["task"] == "cascade" and b["per_frame"]["crops_per_frame"] == 1  # red only


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def test_serve_with_only_the_bundle_carries_classes(cascade, tmp_path):
    with serving({"model": {"path": str(cascade["bundle"]), "device": "cpu"}},
                 tmp_path) as (base, _):  # fmt: skip
        latest = get(base + "/latest")
        by = {d["label"]: d for d in latest["result"]["detections"]}
        assert [c["label"] for c in by["red"]["classes"]] == ["cardinal", "parakeet"]
        assert by["blue"]["classes"] == []
        assert latest["in_view"] == {"blue": 1, "cardinal": 1}
        model = latest["model"]  # HotReload.info(): the classifier the bundle carries
        assert model["classifier"].endswith("classifier") and model["classifier_carried"]


def test_reload_info_names_the_cascade_classifier(detect_bundle, species_bundle):
    from edgekit.stream.config import from_dict
    from edgekit.stream.reload import HotReload

    cfg = from_dict({"model": {"path": str(detect_bundle), "device": "cpu"},
                     "cascade": {"classifier": str(species_bundle)}})  # fmt: skip
    info = HotReload(cfg, resilient=None, emit=lambda *a: None, load=lambda c: None).info()
    assert info["classifier"] == str(species_bundle)
    assert info["classifier_sha256"] == signing.bundle_digest(species_bundle)


def test_signing_and_the_fleet_archive_cover_the_classifier(cascade, tmp_path):
    b = tmp_path / "b"
    shutil.copytree(cascade["bundle"], b)
    key, _, _ = signing.keygen(tmp_path / "k")
    signing.sign(b, key)
    files = {e.path for e in signing.bundle_files(b)}
    assert {"classifier/edgekit.json", "classifier/u8_01_int8.tflite",
            "classifier/u8_01_int8_edgetpu.tflite"} <= files  # fmt: skip
    out = tmp_path / "unpacked"
    wire.unpack(wire.pack(b), out, 64 << 20)  # what `edgekit rollout` ships
    assert signing.verify(out, str(tmp_path / "k.pub")).digest == signing.bundle_digest(b)
    assert load_bundle(out).cascade_classifier == (out / "classifier").resolve()
    # a changed classifier breaks the bundle's signature
    (b / "classifier" / "labels.txt").write_text("x\ny\nz\n")
    with pytest.raises(EdgekitError, match="since it was signed"):
        signing.verify(b, str(tmp_path / "k.pub"))


def test_bad_combinations_are_one_line_and_write_nothing(made, species_bundle, detect_bundle,
                                                         tiny_detector, tmp_path):  # fmt: skip
    out = tmp_path / "out"
    one_line_error(_cli(*convert_args(made, out, made["float"])), "not an int8 model")
    one_line_error(_cli(*convert_args(made, out, made["segmenter"])),
                   "output [1, 16, 16, 2] is not one score per class")  # fmt: skip
    one_line_error(_cli(*convert_args(made, out, detect_bundle)), "a detector bundle")
    one_line_error(_cli(*convert_args(made, out, tiny_detector)), "a detector, not a classifier")
    one_line_error(_cli(*convert_args(made, out, tmp_path / "nope")), "no such classifier")
    one_line_error(_cli(*convert_args(made, out, made["labels"])), "not a TFLite model")
    one_line_error(_cli(*convert_args(made, out, species_bundle, "--crop-labels", "bird")),
                   "--crop-labels bird: not a label of the detector")  # fmt: skip
    one_line_error(_cli(*convert_args(made, out, species_bundle, "--segments", 2)), "--segments")
    one_line_error(_cli("convert", made["det"], "-o", out, "--calib", made["calib"],
                        "--crop-labels", "red"), "--crop-labels needs --classify")  # fmt: skip
    # the compiler fails: nothing half-written
    r = _cli(*convert_args(made, out, species_bundle),
             env={"FAKE_EDGETPU_MODE": "internal-error"})  # fmt: skip
    one_line_error(r, "edgetpu_compiler", code=1)
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_a_coral_model_is_carried_through_its_int8_twin(made, tmp_path):
    """Coral's download: mobilenet_v1_0.25_128_quant_edgetpu.tflite beside the int8 .tflite
    it was compiled from; the labels come from --classify-labels."""
    coral = ROOT / "tests" / "data" / "coral"
    out = tmp_path / "feeder"
    r = _cli(*convert_args(made, out, coral / "mobilenet_v1_0.25_128_quant_edgetpu.tflite",
                           "--classify-labels", coral / "imagenet_labels.txt", "--json"))
    assert r.exit_code == 0, (r.output, r.exception)
    summary = json.loads(r.stdout)["cascade"]
    assert summary["cocompiled"] and summary["classifier_labels"] == 1001
    c = load_bundle(out / "classifier")
    assert c.cpu_model.name == "mobilenet_v1_0.25_128_quant.tflite"
    assert c.edgetpu_model.name == "mobilenet_v1_0.25_128_quant_edgetpu.tflite"
    assert c.manifest.compile["cocompiled_with"] == ["det_int8"]
    assert c.manifest.input.range == pytest.approx((-1.0, 127 / 128))  # its tensor's range
    assert c.manifest.labels[0] == "background"
    r = _cli("detect", out, made["photo"], "-d", "cpu", "--json")
    assert r.exit_code == 0, r.output
    dets = json.loads(r.stdout)["detections"]
    assert len(dets) == 2 and all(len(d["classes"]) == 3 for d in dets)
    # the compiled file alone (no int8 twin beside it) cannot be co-compiled
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(coral / "mobilenet_v1_0.25_128_quant_edgetpu.tflite", lone)
    one_line_error(_cli(*convert_args(made, tmp_path / "x", lone /
                                      "mobilenet_v1_0.25_128_quant_edgetpu.tflite")),
                   "compiled for the Edge TPU")  # fmt: skip


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["cascade"].update(classifier="../elsewhere"), "cascade.classifier"),
    (lambda d: d["cascade"].update(top_k=0), "cascade.top_k"),
    (lambda d: d["cascade"].update(crop_labels=[]), "cascade.crop_labels"),
    (lambda d: d["cascade"].update(extra=1), "unknown key(s) extra"),
    (lambda d: d["cascade"].update(classifier="gone"), "missing its classifier"),
    (lambda d: d.update(task="classify", detection=None), '"cascade" in a classify bundle'),
])  # fmt: skip
def test_a_damaged_cascade_manifest_is_one_line(cascade, tmp_path, edit, message):
    from tests.detect.conftest import edit_manifest

    b = edit_manifest(cascade["bundle"], tmp_path / "b", edit)
    with pytest.raises(EdgekitError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_bundle(b)
    r = _cli("detect", b, tmp_path / "none.png", "-d", "cpu")
    assert r.exit_code == 1 and "Traceback" not in r.output and message.split()[0] in r.stderr


def test_on_a_terminal_with_the_users_umask(made, species_bundle, tmp_path):
    """As a user runs it (a pseudo-terminal: progress bars), umask 022: the service user of
    serve must be able to read the classifier folder too."""
    import stat

    from tests.tty import EDGEKIT, run_in_pty

    out = tmp_path / "feeder"
    short = tmp_path / "two_labels.txt"  # one label short: said once, the conversion goes on
    short.write_text("cardinal\nparakeet\n")
    old = os.umask(0o022)
    try:
        code, text = run_in_pty([*EDGEKIT, *convert_args(made, out, species_bundle,
                                                         "--classify-labels", short)],
                                timeout=300)  # fmt: skip
    finally:
        os.umask(old)
    assert code == 0, text[-3000:]
    assert "Traceback" not in text and "Error" not in text, text[-3000:]
    assert "co-compiled in one edgetpu_compiler call" in text and "[#" in text
    assert text.count("2 labels for 3") == 1, text[-3000:]
    for p in [out / "classifier", *(out / "classifier").iterdir()]:
        assert stat.S_IMODE(p.stat().st_mode) & 0o044 == 0o044, (p, oct(p.stat().st_mode))
    r = _cli("serve", "--model", out, "--source", made["photo"], "--device", "cpu", "--check")
    assert r.exit_code == 0, r.output
    assert f"(detect, cpu) + classifier {out / 'classifier'} (carried by the bundle)" in r.stdout


def test_a_rollout_ships_the_cascade_whole(cascade, detect_bundle, broker, tmp_path):  # noqa: F811
    """`edgekit rollout` of the signed cascade bundle to a real `edgekit serve` (real mosquitto)
    that runs the plain detector: after the switch its results carry the species."""
    import subprocess
    import uuid

    from tests.stream.conftest import edgekit_cmd
    from tests.stream.test_fleet import Device
    from tests.stream.test_mqtt import Subscriber
    from tests.stream.test_serve_detect import cell, write_video

    key, pub, _ = signing.keygen(tmp_path / "fleet")
    start, feeder = tmp_path / "det", tmp_path / "feeder"
    shutil.copytree(detect_bundle, start)
    shutil.copytree(cascade["bundle"], feeder)
    for b in (start, feeder):
        signing.sign(b, key)
    avi = write_video(tmp_path / "red.avi", [[cell("red", 1, 1)]], frames_per_scene=20)
    topic = f"fleet-{uuid.uuid4().hex[:6]}"
    cfg = tmp_path / "cam.toml"
    cfg.write_text(
        f'[model]\npath = "{start}"\ndevice = "cpu"\n'
        f'[source]\nuri = "{avi}"\nloop = true\nrealtime = true\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker}\n'
        f'[fleet]\ntopic = "{topic}"\ndevice = "cam"\npublic_key = "{pub}"\n'
        f'state_dir = "{tmp_path / "state"}"\n'
    )
    watcher = Subscriber(broker, f"{topic}/+/status")
    dev = Device("cam", cfg)
    try:
        dev.wait(lambda lines: any("frame" in x for x in lines), what="first result")
        watcher.wait_for(lambda m: m[0] == f"{topic}/cam/status" and '"online"' in m[1])
        before = dev.results()[-1]["detections"]
        assert before and "classes" not in before[0]
        mark = dev.mark()
        out = subprocess.run([*edgekit_cmd(), "rollout", str(feeder), "--broker",
                              f"127.0.0.1:{broker}", "--topic", topic, "--wait", "1", "--json"],
                             capture_output=True, text=True, timeout=180)  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["sha256"] == signing.bundle_digest(feeder)
        dev.wait(lambda lines: any(x.get("detections") and "classes" in x["detections"][0]
                                   for x in lines[mark:] if "frame" in x),
                 what="results of the cascade")  # fmt: skip
        after = [x for x in dev.results(mark) if x["detections"] and "classes" in
                 x["detections"][0]][-1]  # fmt: skip
        assert [c["label"] for c in after["detections"][0]["classes"]] == ["cardinal", "parakeet"]
        assert after["counts"] == {"cardinal": 1}
        current = Path(os.path.realpath(tmp_path / "state" / "current"))
        assert (current / "classifier" / "edgekit.json").is_file()  # shipped with the detector
    finally:
        watcher.close()
        dev.proc.terminate()
        try:
            dev.proc.wait(20)
        except subprocess.TimeoutExpired:
            dev.proc.kill()
    assert "Traceback" not in "".join(dev.err), "".join(dev.err)


def test_without_a_compiler_the_cascade_is_still_written(made, tmp_path):
    """No edgetpu_compiler on PATH: both models carried uncompiled, except the compiled twin a
    Coral classifier came with (compiled alone: said once), and detect still runs the cascade."""
    import sys

    coral = ROOT / "tests" / "data" / "coral"
    out = tmp_path / "feeder"
    args = [a for a in convert_args(made, out, coral / "mobilenet_v1_0.25_128_quant.tflite",
                                    "--classify-labels", coral / "imagenet_labels.txt")
            if a not in ("--compiler", FAKE)]  # fmt: skip
    r = _cli(*args, env={"PATH": os.path.dirname(sys.executable) + os.pathsep + "/usr/bin:/bin"})
    assert r.exit_code == 0, (r.output, r.exception)
    assert "edgetpu_compiler not found" in r.stderr and "compiled alone" in r.stderr
    assert "not co-compiled" in r.stdout
    b, c = load_bundle(out), load_bundle(out / "classifier")
    assert b.edgetpu_model is None and "cocompiled_with" not in b.manifest.compile
    assert c.edgetpu_model.name == "mobilenet_v1_0.25_128_quant_edgetpu.tflite"
    r = _cli("detect", out, made["photo"], "-d", "cpu", "--json")
    assert r.exit_code == 0 and all(d["classes"] for d in json.loads(r.stdout)["detections"])
    # compiled later, on a machine with the compiler: `edgekit compile BUNDLE` co-compiles both
    argv = tmp_path / "argv.txt"
    r = _cli("compile", out, "--compiler", FAKE, env={"FAKE_EDGETPU_ARGS_FILE": str(argv)})
    assert r.exit_code == 0, r.output
    assert [Path(a).name for a in argv.read_text().split() if a.endswith(".tflite")] == [
        "det_int8.tflite", "mobilenet_v1_0.25_128_quant.tflite"]  # fmt: skip
    b, c = load_bundle(out), load_bundle(out / "classifier")
    assert b.manifest.compile["cocompiled_with"] == ["mobilenet_v1_0.25_128_quant"]
    assert c.manifest.compile["cocompiled_with"] == ["det_int8"] and b.edgetpu_model.is_file()
