"""`edgekit doctor`: check this machine's Edge TPU setup."""

from __future__ import annotations

import click

from edgekit.cli.common import echo_json

_MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("--root", default="/", show_default=True, hidden=True,
              help="Read sysfs, /dev and /etc below this directory (for testing).")  # fmt: skip
def doctor(as_json, root):
    """Check Python, the interpreter, libedgetpu, attached Edge TPUs and their USB speed, the
    plugdev group, the udev rule, cameras and (on x86-64) the Edge TPU compiler.

    Exits with status 1 if any check fails.
    """
    from edgekit.doctor import report, run_checks

    result = report(run_checks(root))
    if as_json:
        echo_json(result)
    else:
        for c in result["checks"]:
            line = f"[{_MARK[c['status']]}] {c['name']}: {c['detail']}"
            if c["fix"] and c["status"] != "ok":
                line += f"\n        fix: {c['fix']}"
            click.echo(line)
        bad = sum(c["status"] == "fail" for c in result["checks"])
        click.echo("all checks passed" if result["ok"] else f"{bad} check(s) failed")
    if not result["ok"]:
        raise click.exceptions.Exit(1)
