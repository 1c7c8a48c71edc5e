"""Every reader of a user-named file: FIFOs and devices refused without hanging, bounded sizes,
corrupt and truncated files as one line (issue 9: "Files", "seeded campaign")."""

from __future__ import annotations

import contextlib
import os
import signal
import zipfile

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgekit import labels, safeio
from edgekit.errors import EdgekitError

from .conftest import TINY, cli


@contextlib.contextmanager
def within(seconds: int):
    """Fail (instead of hanging the suite) if the block blocks, e.g. on a FIFO."""

    def timeout(signum, frame):
        raise AssertionError(f"still blocked after {seconds} s")

    old = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture
def fifo(tmp_path):
    def make(name):
        path = tmp_path / name
        os.mkfifo(path)
        return path

    return make


def test_fifo_as_image_is_refused(bundle, fifo):
    with within(20):
        r = cli("classify", bundle, fifo("frame.jpg"), "--device", "cpu")
    assert r.exit_code == 1 and "FIFO" in r.output


def test_fifo_as_labels_is_refused(bundle, photo, fifo):
    with within(20):
        r = cli("classify", bundle, photo, "--labels", fifo("labels.txt"), "--device", "cpu")
    assert r.exit_code == 1 and "labels.txt: is a FIFO (named pipe), not a label file" in r.output


@pytest.mark.parametrize("command", ["classify", "inspect", "bench"])
def test_fifo_as_model_is_refused(command, photo, fifo):
    args = {"classify": [photo], "inspect": [], "bench": ["--runs", "1"]}[command]
    with within(20):
        r = cli(command, fifo("model.tflite"), *args)
    assert r.exit_code == 1 and "FIFO" in r.output


def test_fifo_as_keras_model_is_refused(fifo, tmp_path):
    with within(60):
        r = cli("convert", fifo("model.h5"), "-o", tmp_path / "out", "--synthetic-calib")
    assert r.exit_code == 1 and "FIFO" in r.output
    assert not (tmp_path / "out").exists()


def test_fifo_as_manifest_is_refused(tmp_path, photo):
    (tmp_path / "b").mkdir()
    os.mkfifo(tmp_path / "b" / "edgekit.json")
    with within(20):
        r = cli("classify", tmp_path / "b", photo)
    assert r.exit_code == 1 and "FIFO" in r.output


def test_labels_from_dev_zero_are_refused_at_once():
    with pytest.raises(EdgekitError, match="character device"), within(10):
        labels.read_labels("/dev/zero")


def test_huge_label_file_is_refused(tmp_path):
    big = tmp_path / "labels.txt"
    with open(big, "wb") as f:
        f.truncate(labels.LABELS_LIMIT + 1)  # sparse: costs no disk
    with pytest.raises(EdgekitError, match="too large for a label file"):
        labels.read_labels(big)


def test_utf8_bom_does_not_end_up_in_the_first_label(tmp_path):
    p = tmp_path / "labels.txt"
    p.write_bytes("\ufeffapple\nbanana\n".encode())
    assert labels.read_labels(p) == {0: "apple", 1: "banana"}
    p.write_bytes("\ufeff0 apple\n1 banana\n".encode())
    assert labels.read_labels(p) == {0: "apple", 1: "banana"}


def test_blank_line_in_labels_explained_not_contradictory(tmp_path):
    # Two labels for two classes, but the blank line makes the second one class 2 (Coral's
    # rule): the message must say why, not "2 labels but the model has 2 classes".
    problem = labels.mismatch(labels.parse_labels("apple\n\nbanana\n"), 2)
    assert problem.startswith("2 labels, but their ids go up to 2 for 2 model outputs")
    assert "blank line" in problem
    assert labels.mismatch(labels.parse_labels("apple\nbanana\n\n\n"), 2) is None


def test_label_file_not_utf8_is_one_line(tmp_path):
    p = tmp_path / "labels.txt"
    p.write_bytes(b"caf\xe9\n")
    with pytest.raises(EdgekitError, match="not UTF-8"):
        labels.read_labels(p)


def test_safeio_refuses_a_folder_and_a_socket(tmp_path):
    import socket

    with pytest.raises(EdgekitError, match="is a folder"):
        safeio.read_bytes(tmp_path, "model")
    sock_path = tmp_path / "s"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(sock_path))
    try:
        with pytest.raises(EdgekitError, match="socket"):
            safeio.read_bytes(sock_path, "model")
    finally:
        s.close()


def _keras_h5(path):
    """An HDF5 file laid out like a Keras .h5 (attributes only; enough for the loader's checks)."""
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = '{"class_name": "Functional", "config": {}}'
        f.attrs["keras_version"] = "2.15.0"
        f.create_dataset("w", data=np.zeros(4096, np.float32))
    return path


@pytest.mark.parametrize("damage", ["truncated", "random", "bad-config"])
def test_corrupt_h5_is_one_line(tmp_path, damage):
    path = _keras_h5(tmp_path / "model.h5")
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 3])
    elif damage == "random":
        path.write_bytes(data[:8] + np.random.default_rng(0).bytes(len(data) - 8))
    else:
        with h5py.File(path, "a") as f:
            f.attrs["model_config"] = b"\xff\xfe not json"
    r = cli("inspect", path)
    assert r.exit_code == 1 and r.output.startswith("Error: ") and len(r.output.splitlines()) == 1


def test_truncated_keras_zip_is_one_line(tmp_path):
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", '{"class_name": "Functional"}')
        z.writestr("model.weights.h5", b"\0" * 10000)
    path.write_bytes(path.read_bytes()[:-40])
    r = cli("inspect", path)
    assert r.exit_code == 1 and len(r.output.splitlines()) == 1


@pytest.mark.parametrize("cut", [8, 100, 1000, 200_000])
def test_truncated_tflite_is_one_line(tiny_tflite, tmp_path, cut):
    path = tmp_path / "cut.tflite"
    path.write_bytes(tiny_tflite.read_bytes()[:cut])
    for args in (("inspect", path), ("classify", path, tiny_tflite, "-d", "cpu")):
        r = cli(*args)
        assert r.exit_code == 1 and "Error" in r.output


@settings(max_examples=20)
@given(frac=st.floats(min_value=0.0005, max_value=0.999))
def test_a_cut_h5_says_it_is_cut_and_how_much(tmp_path_factory, frac):
    """An interrupted download of a .h5: before, "corrupt HDF5 file (Unable to synchronously open
    file (truncated file: eof = 100, sblock->base_addr = 0, stored_eof = 2453432))"."""
    d = tmp_path_factory.mktemp("cut")
    data = _keras_h5(d / "whole.h5").read_bytes()
    keep = max(96, int(len(data) * frac))  # past the superblock, which records the length
    path = d / "model.h5"
    path.write_bytes(data[:keep])
    r = cli("inspect", path)
    assert r.exit_code == 1, r.output
    assert r.output.splitlines() == [
        f"Error: {path}: the file is cut short ({keep:,} of its {len(data):,} bytes); an "
        "interrupted download or copy? copy or save the model again"
    ]


@settings(max_examples=12)
@given(cut=st.integers(min_value=8, max_value=525_000),
       command=st.sampled_from(["classify", "detect", "bench"]))  # fmt: skip
def test_a_cut_tflite_is_named_as_cut_by_the_runtime_commands(
    tiny_tflite, photo, tmp_path_factory, cut, command
):
    """Before: classify/detect/bench said "the CPU interpreter cannot load it (The model is not
    a valid Flatbuffer buffer); is it a valid TFLite model? (a compiled _edgetpu model needs an
    Edge TPU)" where inspect said what edgekit's reader sees: a truncated file."""
    path = tmp_path_factory.mktemp("cut") / "m.tflite"
    path.write_bytes(tiny_tflite.read_bytes()[:cut])
    extra = ["-n", "1"] if command == "bench" else [photo]
    r = cli(command, path, *extra, "-d", "cpu")
    if r.exit_code == 0:  # the cut took only what nothing reads (Coral's trailing metadata)
        assert cut > 500_000, r.output
        return
    assert r.exit_code == 1, r.output
    assert r.output.strip().splitlines()[-1].startswith(
        f"Error: {path}: not a TFLite model (corrupt or truncated flatbuffer"), r.output


def test_a_bundle_whose_cpu_model_is_the_compiled_one_says_so(tmp_path, photo):
    from .conftest import CORAL, make_bundle

    b = make_bundle(tmp_path / "b", tflite=CORAL / "mobilenet_v1_0.25_128_quant_edgetpu.tflite")
    r = cli("classify", b, photo, "-d", "cpu")
    assert r.exit_code == 1, r.output
    assert "compiled for the Edge TPU (edgetpu-custom-op): the CPU interpreter cannot run it" in (
        r.output.strip().splitlines()[-1]), r.output


@pytest.mark.parametrize("encoding, says, anywhere", [
    ("utf-16", "not UTF-8 text but UTF-16 (its byte-order mark says so)", "UTF-16"),
    ("utf-16-be", "not UTF-8 text but UTF-16 (its byte-order mark says so)", "UTF-16"),
    ("cp1252", None, " is 0x97)"),  # an em dash from Windows: the byte and its value
    ("latin-1", "not UTF-8 text (byte 3 is 0xe9)", " is 0xe9)"),
])  # fmt: skip
def test_a_label_or_config_file_in_another_encoding_says_which(tmp_path, photo, encoding, says,
                                                               anywhere):  # fmt: skip
    """Windows Notepad's "Unicode" is UTF-16 with a BOM: before, "not UTF-8 text (byte 0)"."""
    text = {"latin-1": "café\nthé\n", "cp1252": "tit\u2014great\nrobin\n"}.get(
        encoding, "\ufeffcat\ndog\n")
    labels_path = tmp_path / "labels.txt"
    labels_path.write_bytes(text.encode(encoding))
    config = tmp_path / "edgekit.toml"
    mark = "\u2014" if encoding == "cp1252" else "é"
    bom = "\ufeff" if encoding == "utf-16-be" else ""  # "utf-16" writes its own
    config.write_bytes(f'{bom}[model]\npath = "{labels_path}"  # {mark}\n'.encode(encoding))
    r = cli("classify", TINY, photo, "--labels", labels_path, "-d", "cpu")
    last = r.output.strip().splitlines()[-1]
    assert r.exit_code == 1 and anywhere in last, r.output
    if says is not None:
        assert last == f"Error: {labels_path}: {says}; save the label file as UTF-8"
    r = cli("serve", "--check", "--config", config)
    assert r.exit_code == 1 and anywhere in r.output.strip().splitlines()[-1], r.output
