"""``edgekit zoo``: list the model zoo and build a design into a Keras file."""

from __future__ import annotations

import click

from edgekit.atomic import check_destination
from edgekit.cli.common import echo_json
from edgekit.errors import EdgekitError


@click.group("zoo")
def zoo() -> None:
    """List and build Edge-TPU-friendly Keras models (edgekit.zoo)."""


@zoo.command("list", short_help="List designs with parameters and multiply-adds.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_models(as_json: bool) -> None:
    """Designs with parameters and multiply-adds at their default settings."""
    from edgekit import zoo as registry

    rows = [e.to_dict() for e in registry.REGISTRY.values()]
    if as_json:
        echo_json({"models": rows})
        return
    click.echo(f"{'name':<15} {'input':>5} {'classes':>7} {'params':>11} {'MACs':>13}  description")
    for r in rows:
        classes = "-" if r["default_classes"] is None else str(r["default_classes"])
        click.echo(
            f"{r['name']:<15} {r['default_input']:>5} {classes:>7} {r['params']:>11,} "
            f"{r['macs']:>13,}  {r['description']}"
        )
    click.echo("MACs: multiply-adds for one image (convolutions and dense layers).")


def _parse_value(text: str):
    """KEY=VALUE value: int, float, true/false, else the string itself."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


@zoo.command("build", short_help="Build a design (untrained) and save it as .h5/.keras.")
@click.argument("name")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="FILE.h5")
@click.option("--input-size", type=int, help="Input height = width in pixels.")
@click.option("--classes", type=int, help="Number of classes.")
@click.option("--alpha", type=float, help="Width multiplier (mobilenet_v1).")
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Other design parameter, e.g. -p bypass=true, -p growth_rate=12 (repeatable).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable summary.")
def build(name, output, input_size, classes, alpha, params, force, as_json) -> None:
    """Build zoo model NAME (untrained weights) and save it to FILE.h5 or FILE.keras."""
    from pathlib import Path

    from edgekit import zoo as registry

    entry = registry.get(name)  # unknown name: one-line error before importing TensorFlow
    if Path(output).exists() and not force:
        raise EdgekitError(f"{output} already exists", "choose another output or pass --force")
    check_destination(output)  # fail before building, not after
    options: dict = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise EdgekitError(f"bad --param {item!r}", "use KEY=VALUE")
        options[key.strip().replace("-", "_")] = _parse_value(value.strip())
    if classes is not None:
        options["classes"] = classes
    if alpha is not None:
        options["alpha"] = alpha
    model = registry.build(entry.name, input_size=input_size, **options)

    from edgekit.host.keras_stats import inspect_keras

    stats = inspect_keras(model)
    registry.save_model(model, output, force=force)
    summary = {
        "model": entry.name,
        "output": str(output),
        "input_shape": list(model.input_shape[1:]),
        "options": options,
        "params": stats["params"],
        "macs": stats["macs"],
    }
    if as_json:
        echo_json(summary)
    else:
        click.echo(
            f"Wrote {output}: {entry.name} input {tuple(model.input_shape[1:])}, "
            f"{stats['params']:,} parameters, {stats['macs']:,} multiply-adds"
        )
