"""`edgekit bench --plot` into a place that cannot exist fails before the run, in one line."""

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
    assert r.stderr.splitlines() == [f"{want} (choose another output path)"]
    assert r.stdout == ""  # failed before measuring anything
