"""`edgekit doctor`: check this machine's Edge TPU setup."""

from __future__ import annotations

import click

from edgekit.cli.common import echo_json, libedgetpu_option

_MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


@click.command()
@click.option(
    "--model",
    type=click.Path(),
    metavar="BUNDLE",
    help="Also check that libedgetpu's runtime version is one this bundle needs.",
)
@click.option(
    "--device",
    "-d",
    metavar="DEVICE",
    help="Edge TPU to probe: usb, usb:N, pci, pci:N, :N [default: the first free one].",
)
@click.option(
    "--timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(1, 600),
    help="Seconds the probe may take before it counts as hung.",
)
@click.option(
    "--no-probe", is_flag=True, help="Skip loading libedgetpu and running a model on the Edge TPU."
)
@libedgetpu_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("--root", default="/", show_default=True, hidden=True,
              help="Read sysfs, /dev and /etc below this directory (for testing).")  # fmt: skip
def doctor(model, device, timeout, no_probe, as_json, root):
    """Check Python, the interpreter, libedgetpu and whether the two are a known pair, attached
    Edge TPUs (USB speed, device permission, which processes hold them), the plugdev group, the
    udev rule, cameras and (on x86-64) the Edge TPU compiler; then prove the stack: a child
    process loads libedgetpu, builds an interpreter on a tiny compiled model, allocates and
    invokes it (a crash, abort or hang there is diagnosed, never suffered).

    Exits with status 1 if any check fails.
    """
    from edgekit.backends.devices import parse_device
    from edgekit.doctor import report, run_checks

    if device:
        parse_device(device)
    if timeout != timeout:  # FloatRange lets NaN through
        raise click.BadParameter("nan is not a number of seconds", param_hint="--timeout")
    if model is not None:
        from pathlib import Path

        from edgekit.errors import EdgekitError

        if not Path(model).exists():
            raise EdgekitError(f"--model {model}: no such bundle or model", "check the path", 2)
        _model_or_refuse(Path(model))
    result = report(run_checks(root, probe=not no_probe, device=device, model=model,
                               timeout=timeout))  # fmt: skip
    if as_json:
        echo_json(result)
    else:
        for c in result["checks"]:
            line = f"[{_MARK[c['status']]}] {c['name']}: {c['detail']}"
            if c["fix"] and c["status"] != "ok":
                line += f"\n        fix: {c['fix']}"
            click.echo(line)
        bad = sum(c["status"] == "fail" for c in result["checks"])
        warned = sum(c["status"] == "warn" for c in result["checks"])
        if result["ok"]:
            click.echo("all checks passed" + (f" ({warned} warning(s) above)" if warned else ""))
        else:
            click.echo(
                f"{bad} check(s) failed: follow each 'fix:' line above, then run edgekit doctor "
                "again (until then classify, bench and serve run on the CPU)"
            )
    if not result["ok"]:
        raise click.exceptions.Exit(1)


def _model_or_refuse(model) -> None:
    """A photo, a damaged .tflite or a folder that is no bundle: a usage error (exit 2, as a
    missing one), not a WARN that "no runtime requirement is recorded" in it."""
    from edgekit.errors import EdgekitError
    from edgekit.manifest import is_bundle
    from edgekit.tflite import read_model

    hint = "pass the bundle `edgekit convert` or `edgekit compile` wrote, or a .tflite"
    if model.is_dir():
        if not is_bundle(model):
            raise EdgekitError(f"--model {model}: a folder but not a bundle (no edgekit.json)",
                               hint, 2)  # fmt: skip
        return
    try:
        read_model(model)
    except EdgekitError as e:
        raise EdgekitError(f"--model {e.message}", hint, 2) from None
