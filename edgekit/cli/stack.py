"""`edgekit stack`: which libedgetpu + interpreter pair to install (edgekit.edgetpu.stack)."""

from __future__ import annotations

import click

from edgekit.cli.common import echo_json


@click.command()
@click.option(
    "--os",
    "os_name",
    metavar="NAME",
    help="OS release: bullseye, bookworm or trixie [default: this machine's].",
)
@click.option(
    "--arch",
    metavar="ARCH",
    help="Debian architecture: arm64, armhf or amd64 [default: this machine's].",
)
@click.option(
    "--python",
    "python",
    metavar="X.Y",
    help="The system Python version [default: the one running edgekit].",
)
@click.option(
    "--max",
    "max_clock",
    is_flag=True,
    help="libedgetpu1-max (full clock, runs hot) instead of -std.",
)
@click.option(
    "--experimental",
    is_flag=True,
    help="Where the trustworthy route is not the only one, show the experimental one.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option(
    "--shell",
    "as_shell",
    is_flag=True,
    hidden=True,
    help="KEY=VALUE lines for scripts/setup-pi.sh.",
)
def stack(os_name, arch, python, max_clock, experimental, as_json, as_shell):
    """Name the libedgetpu and TFLite interpreter to install together on a Raspberry Pi (or this
    machine): both built from the same TensorFlow version, marked proven, documented or
    experimental. scripts/setup-pi.sh installs exactly this.

    Exits with status 1 when no pair is known to work there (the reason says what to do).
    """
    from edgekit.edgetpu import stack as lib

    here = lib.this_machine()
    s = lib.choose(
        os_name or here[0],
        arch or here[1],
        python or here[2],
        flavour="max" if max_clock else "std",
        experimental=experimental,
    )
    if as_shell:
        click.echo("\n".join(lib.shell_lines(s)))
    elif as_json:
        echo_json(s.to_dict())
    else:
        click.echo(f"{s.os} {s.arch}, Python {s.python}: {s.status}")
        if s.libedgetpu:
            d = s.libedgetpu
            click.echo(f"libedgetpu   {d['package']} {d['version']} (TF {d['tf']})  {d['url']}")
        if s.interpreter:
            d = s.interpreter
            click.echo(f"interpreter  {d['package']} {d['version']} (TF {d['tf']})  {d['source']}")
        if s.via == "uv":
            click.echo(f"python       CPython {s.venv_python} managed by uv {lib.UV_VERSION}")
        click.echo(f"why          {s.why}")
    if s.status == "unsupported":
        raise click.exceptions.Exit(1)
