"""``edgekit zoo``: list the model zoo and build a design into a Keras file."""

from __future__ import annotations

import math

import click

from edgekit.atomic import check_destination
from edgekit.cli.common import echo_json
from edgekit.cli.params import Finite
from edgekit.errors import EdgekitError


@click.group("zoo")
def zoo() -> None:
    """List and build Edge-TPU-friendly Keras models (edgekit.zoo)."""


@zoo.command("list", short_help="List designs: parameters, multiply-adds, predicted latency.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_models(as_json: bool) -> None:
    """Designs with parameters, multiply-adds and predicted Edge TPU latency (USB 3 Coral) at
    their default settings."""
    from edgekit import zoo as registry

    rows = [e.to_dict() for e in registry.REGISTRY.values()]
    if as_json:
        echo_json({"models": rows})
        return
    click.echo(f"{'name':<15} {'input':>5} {'classes':>7} {'params':>11} {'MACs':>13} "
               f"{'USB3 ms':>7} {'USB2 ms':>7} {'PCIe ms':>7}  description")  # fmt: skip
    for r in rows:
        classes = "-" if r["default_classes"] is None else str(r["default_classes"])
        ms = ["-" if v is None else f"{v:.1f}" for v in r["latency_ms"].values()]
        click.echo(
            f"{r['name']:<15} {r['default_input']:>5} {classes:>7} {r['params']:>11,} "
            f"{r['macs']:>13,} {ms[0]:>7} {ms[1]:>7} {ms[2]:>7}  {r['description']}"
        )
    click.echo("MACs: multiply-adds for one image (convolutions and dense layers).")
    click.echo("ms: predicted per inference on a USB 3, USB 2 and PCIe Coral from the layer "
               "shapes (--json: latency_ms, as in inspect --json; zoo build --budget-ms picks "
               "a size).")  # fmt: skip


def _parse_value(key: str, text: str, default):
    """KEY=VALUE value, parsed strictly as the type of the design's default for KEY (bool:
    true/false/yes/no/on/off/1/0; int; finite float); a string when the default is one."""
    from edgekit.limits import parse_bool

    try:
        if isinstance(default, bool):
            return parse_bool(text)
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float) or default is None:
            if default is None and text.lower() in ("none", "null"):
                return None
            v = float(text)
            if not math.isfinite(v) or abs(v) > 1e6:
                raise ValueError("not a finite number")
            if default is None and v.is_integer() and "." not in text and "e" not in text.lower():
                return int(v)
            return v
    except ValueError as e:
        kind = "true or false" if isinstance(default, bool) else type(default).__name__
        if default is None:
            kind = "a number"
        raise EdgekitError(f"--param {key}={text}: {e}", f"{key} takes {kind}") from None
    return text


@zoo.command("build", short_help="Build a design (untrained) and save it as .h5/.keras.")
@click.argument("name")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="FILE.h5")
@click.option("--input-size", type=click.IntRange(8, 16384), help="Input height = width in pixels.")
@click.option("--classes", type=click.IntRange(1, 100_000), help="Number of classes.")
@click.option("--alpha", type=Finite(0, 4, min_open=True), help="Width multiplier (mobilenet_v1).")
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Other design parameter, e.g. -p bypass=true, -p growth_rate=12 (repeatable).",
)
@click.option("--budget-ms", type=Finite(0, 1e6, min_open=True),
              help="Pick the widest --alpha / largest --input-size predicted within this many "
              "ms per inference on a USB 3 Coral (the ones given are kept).")  # fmt: skip
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable summary.")
def build(name, output, input_size, classes, alpha, params, budget_ms, force, as_json) -> None:
    """Build zoo model NAME (untrained weights) and save it to FILE.h5 or FILE.keras."""
    from pathlib import Path

    from edgekit import zoo as registry

    entry = registry.get(name)  # unknown name: one-line error before importing TensorFlow
    if Path(output).exists() and not force:
        raise EdgekitError(f"{output} already exists", "choose another output or pass --force")
    check_destination(output)  # fail before building, not after
    options: dict = {}
    accepted = entry.options()  # imports the design module (and Keras), not TensorFlow's graph
    for item in params:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise EdgekitError(f"bad --param {item!r}", "use KEY=VALUE")
        if key not in accepted:
            raise EdgekitError(
                f"zoo model {entry.name!r} has no option {key!r}",
                f"its options: {', '.join(accepted) or 'none'}",
            )
        options[key] = _parse_value(key, value.strip(), accepted[key])
    if classes is not None:
        options["classes"] = classes
    if alpha is not None:
        options["alpha"] = alpha
    from edgekit.host import memory
    from edgekit.host.tfenv import load_tensorflow

    load_tensorflow()
    budget = None
    if budget_ms is not None:
        from edgekit.host.zoo_budget import describe, pick

        budget = pick(entry, budget_ms, {k: v for k, v in options.items() if k != "alpha"},
                      options.get("alpha"), input_size)  # fmt: skip
        p = budget["picked"]
        input_size = p["input_size"]
        if p["alpha"] is not None:
            options["alpha"] = p["alpha"]
        if not as_json:
            click.echo(f"Budget {budget_ms:g} ms on a USB 3 Coral: picked {describe(p)}, "
                       f"predicted {p['usb3_ms']:g} ms (USB 2: {p['latency_ms']['usb2']:g} ms)")
            over = [r for r in budget["tried"] if r is not p]
            if over:
                click.echo("  over the budget: " + "; ".join(
                    f"{describe(r)} {r['usb3_ms']:g} ms" for r in over))  # fmt: skip
    memory.check_build(entry, input_size or entry.default_input, options)  # OOM kill otherwise
    model = registry.build(entry.name, input_size=input_size, **options)

    from edgekit.edgetpu.latency import latency_of_keras_stats
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
        # as zoo list and inspect show it, for the size and width built
        "latency_ms": latency_of_keras_stats(stats)["latency_ms"],
    }
    if budget is not None:
        summary["budget"] = budget
    if as_json:
        echo_json(summary)
    else:
        ms = summary["latency_ms"]
        click.echo(
            f"Wrote {output}: {entry.name} input {tuple(model.input_shape[1:])}, "
            f"{stats['params']:,} parameters, {stats['macs']:,} multiply-adds, predicted "
            f"{ms['usb3']:.2f} ms per inference on a USB 3 Coral (USB 2: {ms['usb2']:.2f} ms)"
        )
