"""``edgekit bench`` and ``classify`` on a terminal, as a user runs them."""

from __future__ import annotations

from tests.tty import EDGEKIT, assert_bar_drawn, run_in_pty


def test_bench_on_a_terminal_draws_progress_and_exits_0(bundles):
    code, output = run_in_pty([*EDGEKIT, "bench", bundles["rgb"], "--runs", 200], timeout=120)
    assert code == 0, output
    assert "Traceback" not in output, output
    assert_bar_drawn(output, "benchmarking")
    assert "steady  200 runs" in output


def test_bench_json_on_a_terminal_draws_no_bar(bundles):
    code, output = run_in_pty([*EDGEKIT, "bench", bundles["rgb"], "--json"], timeout=120)
    assert code == 0, output
    assert "benchmarking" not in output and '"p50_ms"' in output


def test_bench_names_its_threads_in_the_device_line(bundles):
    code, output = run_in_pty([*EDGEKIT, "bench", bundles["rgb"], "--threads", 1, "-d", "cpu"])
    assert code == 0, output
    assert "(ai_edge_litert" in output and ", 1 thread)" in output, output
