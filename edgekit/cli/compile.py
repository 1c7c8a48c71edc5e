"""``edgekit compile MODEL...``: co-compile int8 models (or bundles) in one edgetpu_compiler
call (thin click layer over :func:`edgekit.host.cocompile.compile_together`)."""

from __future__ import annotations

import click

from edgekit.cli.common import compiler_options, echo_json, warn


@click.command("compile")
@click.argument("models", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    help="Folder for the compiled .tflite files [default: beside the first model]; bundles "
    "get theirs written into the bundle.",
)
@compiler_options("--timeout")
@click.option("--force", is_flag=True,
              help="Replace existing <model>_edgetpu.tflite files (never replaced without it).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def compile_(models, out_dir, compiler, timeout, min_runtime, force, as_json):
    """Compile MODELS (int8 .tflite files or bundles) together for one Edge TPU.

    Several models passed to edgetpu_compiler in one call are co-compiled: their parameters
    share the Edge TPU's on-chip cache, so running one after the other (a detector and the
    classifier of its crops) does not reload the cache over USB each time. The compiler allots
    the cache in the order given (put the model that runs most often first); what does not fit
    streams on every inference. The report gives each model's on-chip and off-chip share.
    Bundles get their compiled model written into them, and record their partners.
    """
    from edgekit.host.cocompile import compile_together
    from edgekit.host.compiler import INSTALL_HINT, find_compiler

    exe = find_compiler(compiler)
    if exe is None:
        from edgekit.errors import EdgekitError

        raise EdgekitError("edgetpu_compiler not found", INSTALL_HINT)
    if out_dir is not None:  # created when the first file is written, checked now
        from pathlib import Path

        from edgekit.atomic import check_destination

        check_destination(Path(out_dir) / f"{Path(models[0]).stem}_edgetpu.tflite")
    result = compile_together(exe, list(models), out_dir, min_runtime, timeout, force=force)
    for w in result.warnings:
        warn(w)
    if as_json:
        echo_json(result.to_dict())
        return
    n = len(result.models)
    together = "co-compiled" if n > 1 else "compiled"
    click.echo(f"{together} {n} model{'s' if n > 1 else ''} in {result.wall_s:.1f} s "
               f"(edgetpu_compiler {result.models[0].report.get('version') or '?'})")  # fmt: skip
    for m in result.models:
        r = m.report
        ops = (f"{r.get('ops_tpu')}/{r.get('ops_total')} ops on the Edge TPU"
               if r.get("ops_total") is not None else "")  # fmt: skip
        on, off = _mib(r.get("on_chip_bytes")), _mib(r.get("off_chip_bytes"))
        streams = " (streamed every inference)" if r.get("off_chip_bytes") else ""
        click.echo(f"  {m.output}: on-chip {on}, off-chip {off}{streams}, {ops}")
        if m.latency is not None:
            from edgekit.edgetpu.latency import format_latency

            click.echo(f"    latency {format_latency(m.latency)}")
        if m.bundle is not None:
            click.echo(f"    bundle {m.bundle} updated")
    streamed = [m.output.name for m in result.models if m.report.get("off_chip_bytes")]
    if n > 1:
        last = result.models[-1].report.get("on_chip_remaining_bytes")
        click.echo(f"  on-chip cache left: {_mib(last)}"
                   + (f"; streaming: {', '.join(streamed)}" if streamed else
                      "; every parameter cached on-chip"))  # fmt: skip
    if result.shared_cache is False:
        warn("the compiled models do not share one parameter-caching token: they will not "
             "share the on-chip cache")


def _mib(n) -> str:
    return "?" if n is None else f"{n / 2**20:.2f} MiB"
