"""``edgekit serve`` on a terminal, as a user tries it before installing the service."""

from __future__ import annotations

from tests.tty import EDGEKIT, run_in_pty


def test_serve_on_a_terminal_runs_and_exits_0(video_avi, small_model, labels_path):
    code, output = run_in_pty(
        [*EDGEKIT, "serve", "--model", small_model, "--labels", labels_path,
         "--source", video_avi, "--max-frames", 5],
        timeout=120,
    )  # fmt: skip
    assert code == 0, output
    assert "Traceback" not in output, output
    assert '"frame":5,' in output
