"""``edgekit inspect MODEL``: layers or ops, tensors, parameters, MACs and Edge TPU mapping."""

from __future__ import annotations

import click

from edgekit.cli.common import echo_json


@click.command("inspect")
@click.argument("model", type=click.Path(path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--tensors", is_flag=True,
              help="List every tensor (TFLite models and bundles; a Keras model's layer table "
              "has each layer's output shape).")  # fmt: skip
@click.option(
    "--compiled",
    type=click.Path(path_type=str),
    help="The model's *_edgetpu.tflite: show what the compiler did beside the prediction.",
)
@click.option(
    "--log",
    type=click.Path(path_type=str),
    help="The compiler's .log (or stdout saved with -s): compare its operator table.",
)
@click.option(
    "--custom-objects",
    type=click.Path(dir_okay=False, path_type=str),
    help="A .py file defining a Keras model's custom layers.",
)
@click.option(
    "--with",
    "partners",
    multiple=True,
    type=click.Path(path_type=str),
    help="Another model for the same Edge TPU (repeatable): do they fit on-chip together, "
    "and which one streams if not.",
)
def inspect(
    model: str,
    as_json: bool,
    tensors: bool,
    compiled: str | None,
    log: str | None,
    custom_objects: str | None,
    partners: tuple[str, ...],
):
    """Show what MODEL holds and what will run on the Edge TPU.

    MODEL is a bundle from `edgekit convert` (its compiled model if any, else the int8 one), a
    .tflite (int8, or compiled *_edgetpu.tflite), a Keras .h5/.keras file or a SavedModel
    directory. For a .tflite: ops by type, tensor dtypes and quantization, size,
    parameters, multiply-adds and the Edge TPU mapping (predicted per op with the reason, or,
    for a compiled model, what the compiler put in the Edge TPU custom op). For Keras: per-layer
    output shape, parameters and multiply-adds.

    With --compiled and/or --log (MODEL the compiler's int8 input): what edgetpu_compiler
    actually did beside the prediction, op by op, disagreements marked with !!.

    With --with B (int8 or compiled models, bundles): whether MODEL and B, co-compiled in this
    order, fit in the Edge TPU's on-chip cache together, without running the compiler.
    """
    if partners and (tensors or compiled or log):
        given = [n for n, v in (("--tensors", tensors), ("--compiled", compiled), ("--log", log))
                 if v]  # fmt: skip
        raise click.UsageError(f"{' and '.join(given)} describe{'s' if len(given) == 1 else ''} "
                               "one model, --with how several share the Edge TPU: run inspect "
                               "once without --with for it")  # fmt: skip
    if tensors and not (compiled or log):
        from edgekit.inspect_model import model_format

        if model_format(model) == "keras":
            raise click.UsageError(
                f"--tensors lists the tensors of a .tflite; {model} is a Keras model (its layer "
                "table, shown without --tensors, has every layer's output shape): drop "
                "--tensors, or inspect the bundle `edgekit convert` makes of it"
            )
    if custom_objects:
        from edgekit.errors import EdgekitError
        from edgekit.inspect_model import model_format

        try:
            kind = model_format(model)
        except EdgekitError:
            kind = None  # missing or unreadable: inspect_model says it in its own words
        if kind not in (None, "keras") or partners:
            raise click.UsageError(
                "--custom-objects defines a Keras model's own layers; "
                + ("--with takes .tflite models and bundles" if partners else
                   f"{model} is no Keras model")
                + ": drop --custom-objects"
            )  # fmt: skip
    if partners:
        from edgekit.edgetpu.cocompile import format_together, together
        from edgekit.errors import EdgekitError
        from edgekit.inspect_model import model_format

        for p in (model, *partners):
            try:
                kind = model_format(p)
            except EdgekitError:
                continue  # missing, a plain directory...: together() says it in its own words
            if kind == "keras":  # read_model said "not a TFLite model" of it
                raise EdgekitError(
                    f"{p} is a Keras model; --with predicts from int8 or compiled models",
                    f"convert it first (edgekit convert {p} --calib IMAGES/ -o BUNDLE/) and "
                    "pass the bundle",
                )
        r = together([model, *partners])
        echo_json(r) if as_json else click.echo(format_together(r))
        return
    from edgekit.inspect_model import format_report, inspect_model

    report = inspect_model(model, compiled=compiled, log=log, custom_objects=custom_objects)
    if as_json:
        echo_json(report)
    else:
        click.echo(format_report(report, tensors=tensors))
