"""CLI mistakes of `classify` and `bench` (options, output paths, devices): one clear line."""

from __future__ import annotations

from click.testing import CliRunner

from edgekit.cli import main


def test_bench_plot_under_a_file_is_one_line_before_running(coral_dir, tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    model = coral_dir / "mobilenet_v1_0.25_128_quant.tflite"
    r = CliRunner().invoke(
        main, ["bench", str(model), "--device", "cpu", "-n", "1", "--plot", str(blocker / "p.png")]
    )
    assert r.exit_code == 1
    want = f"Error: {blocker / 'p.png'}: {blocker} is a file, not a folder"
    assert r.stderr.splitlines() == [f"{want}; choose another output path"]
    assert r.stdout == ""  # failed before measuring anything


def test_classify_threshold_outside_0_1_is_refused(coral_dir):
    model = coral_dir / "mobilenet_v1_0.25_128_quant.tflite"
    image = coral_dir / "cat.bmp"
    for bad in ("2", "-0.5"):
        r = CliRunner().invoke(main, ["classify", str(model), str(image), "-t", bad])
        assert r.exit_code == 2 and "--threshold" in r.stderr and r.stdout == ""


def test_missing_pci_edge_tpu_hint_is_about_pcie_not_usb():
    from edgekit.backends.edgetpu import no_device_error

    pci = str(no_device_error("pci:3", [], "libedgetpu.so.1 not found"))
    assert "/dev/apex_0" in pci and "gasket-dkms" in pci and "USB" not in pci
    usb = str(no_device_error("usb", [], None))
    assert "USB 3" in usb and "lsusb" in usb


def test_label_file_of_another_model_is_warned_about(coral_dir, tmp_path):
    model, image = coral_dir / "mobilenet_v1_0.25_128_quant.tflite", coral_dir / "cat.bmp"
    wrong = tmp_path / "labels.txt"
    wrong.write_text("apple\nbanana\n")
    r = CliRunner().invoke(main, ["classify", str(model), str(image), "-d", "cpu", "--labels",
                                  str(wrong)])  # fmt: skip
    assert r.exit_code == 0
    assert r.stderr.splitlines() == [
        "Warning: 2 labels for 1001 model outputs: is it the label file of this model?"
    ]
    right = coral_dir / "imagenet_labels.txt"
    r = CliRunner().invoke(main, ["classify", str(model), str(image), "-d", "cpu", "--labels",
                                  str(right)])  # fmt: skip
    assert r.exit_code == 0 and r.stderr == ""


def test_bench_plot_named_as_text_is_refused_before_running(coral_dir, tmp_path):
    model = coral_dir / "mobilenet_v1_0.25_128_quant.tflite"
    r = CliRunner().invoke(
        main, ["bench", str(model), "--device", "cpu", "-n", "1", "--plot", str(tmp_path / "x.txt")]
    )
    assert r.exit_code == 2, r.output
    assert r.stderr.splitlines() == [
        f"Error: --plot {tmp_path / 'x.txt'}: a plot is an image, not .txt; "
        "name it .png, .svg or .pdf"
    ]
    assert r.stdout == "" and list(tmp_path.iterdir()) == []  # refused before measuring


def test_bench_plot_format_follows_the_suffix(coral_dir, tmp_path):
    model = coral_dir / "mobilenet_v1_0.25_128_quant.tflite"
    for name, magic in (("lat.svg", b"<?xml"), ("lat.PDF", b"%PDF"), ("lat", b"\x89PNG")):
        out = tmp_path / name
        r = CliRunner().invoke(
            main, ["bench", str(model), "--device", "cpu", "-n", "3", "--plot", str(out)]
        )
        assert r.exit_code == 0, r.output
        assert out.read_bytes()[: len(magic)] == magic, name


def test_bench_anchors_for_a_classifier_is_refused_not_ignored(coral_dir, tmp_path):
    anchors = tmp_path / "anchors.txt"
    anchors.write_text("10,14, 23,27, 37,58, 81,82, 135,169, 344,319\n")
    model = coral_dir / "mobilenet_v1_0.25_128_quant.tflite"
    r = CliRunner().invoke(main, ["bench", str(model), "--device", "cpu", "-n", "1",
                                  "--anchors", str(anchors)])  # fmt: skip
    assert r.exit_code == 1, r.output
    (line,) = r.stderr.splitlines()
    assert line.startswith("Error: --anchors") and "classify model, not a detector" in line
    assert "drop it" in line and r.stdout == ""
