"""The text ``edgekit convert`` prints after writing a bundle (without ``--json``): the files,
input, range decision, calibration, verification (classifier or detector), latency, the
compiler's report or the mapping prediction, and a cascade's co-compiled classifier."""

from __future__ import annotations

import click


def summary(result) -> None:
    """The summary lines of a :class:`~edgekit.host.convert.ConvertResult`, echoed."""
    m = result.manifest
    files = [
        f for f in (m.models.get("cpu"), m.models.get("edgetpu"), m.models.get("edgetpu_log")) if f
    ]
    files += (["labels.txt"] if m.labels else []) + ["edgekit.json"]
    if m.cascade:
        files.append(f"{m.cascade['classifier']}/")
    click.echo(
        f"Wrote {result.out_dir}/ ({', '.join(files)}) in {result.timings_s.get('total', 0):.1f} s"
    )
    i = m.input
    click.echo(
        f"  input   {i.dtype} {list(i.shape)} scale {i.scale:.6g} zero_point {i.zero_point}"
        f" ({i.color}, range {i.range[0]:g}..{i.range[1]:g}, {i.resize})"
    )
    c = m.calibration
    _range_summary(result.input_range, m)
    if c.get("synthetic"):
        click.echo(f"  calib   {c['used']} synthetic images")
    else:
        extra = f", {c['unreadable']} unreadable skipped" if c.get("unreadable") else ""
        click.echo(f"  calib   {c['used']} images from {c['folder']}{extra}")
    v = m.verification
    if v.get("task") == "detect":
        _detect_summary(v)
    elif v.get("agreement") is None:
        click.echo("  verify  skipped (no held-out images)")
    else:
        acc = ""
        if "accuracy_float" in v:
            acc = f"; accuracy float {v['accuracy_float']:.1%}, int8 {v['accuracy_int8']:.1%}"
        click.echo(
            f"  verify  top-1 agreement {v['agreement']:.1%} on {v['images']} held-out images, "
            f"score error mean {v['mean_abs_error']:.4f} max {v['max_abs_error']:.4f}{acc}"
        )
    comp = m.compile or {}
    report = comp.get("report")
    if comp.get("latency"):
        from edgekit.edgetpu.latency import format_latency

        click.echo(f"  latency {format_latency(comp['latency'])}")
    if report:
        click.echo(
            f"  edgetpu {report['ops_tpu']}/{report['ops_total']} ops on the Edge TPU, "
            f"{report['subgraphs']} subgraph(s), on-chip {_mib(report['on_chip_bytes'])}, "
            f"off-chip {_mib(report['off_chip_bytes'])} (compiler {report['version']})"
        )
        if comp.get("comparison"):
            from edgekit.edgetpu.compare import format_comparison

            for line in format_comparison(comp["comparison"]):
                click.echo(f"          {line}" if line else "")
    elif comp.get("prediction"):
        p = comp["prediction"]
        tpu, cpu = p.get("tpu_ops"), p.get("cpu_ops")
        click.echo(
            f"  edgetpu not compiled; predicted: {tpu} ops on the Edge TPU, {cpu} on the CPU"
        )
        for op in p.get("ops", []):
            if not op.get("on_tpu"):
                click.echo(f"          CPU: #{op.get('index')} {op.get('op')}: {op.get('reason')}")
                break
        for s in p.get("suggestions", [])[:3]:
            click.echo(f"          fix (+{s['ops_gained']} ops on the Edge TPU): {s['fix']}")
        mem = p.get("memory") or {}
        if mem.get("streams"):
            click.echo(
                f"          warning: parameters {_mib(mem['parameters_bytes'])} exceed the "
                f"on-chip cache ({_mib(mem['on_chip_capacity_bytes'])}); the rest streams"
            )
        elif mem.get("may_stream"):
            click.echo(
                f"          note: parameters {_mib(mem['parameters_bytes'])} nearly fill the "
                "on-chip cache; part may stream"
            )
    if result.cascade:
        _cascade_summary(result.cascade, m)


def _cascade_summary(c: dict, m) -> None:
    """The carried classifier and, when co-compiled, each model's share of the on-chip cache."""
    crops = ", ".join(c["crop_labels"]) if c.get("crop_labels") else "every label"
    click.echo(f"  cascade {c['classifier']} ({c['classifier_name']}, "
               f"{c['classifier_labels'] or 'no'} labels) classifies the crops of {crops}"
               + (f", top {c['top_k']}" if c.get("top_k") else ""))  # fmt: skip
    if not c.get("cocompiled"):
        click.echo("          not co-compiled (no compiler run): each model alone on the Edge TPU")
        return
    click.echo("          co-compiled in one edgetpu_compiler call, detector first:")
    streamed = []
    for who, r in (("detector", c.get("detector_report")),
                   ("classifier", c.get("classifier_report"))):  # fmt: skip
        r = r or {}
        click.echo(f"          {who:<10} {r.get('output')}: on-chip {_mib(r.get('on_chip_bytes'))}"
                   f", off-chip {_mib(r.get('off_chip_bytes'))}")  # fmt: skip
        if r.get("off_chip_bytes"):
            streamed.append(who)
    left = (c.get("classifier_report") or {}).get("on_chip_remaining_bytes")
    click.echo(f"          on-chip cache left {_mib(left)}; "
               + (f"streamed every inference: {', '.join(streamed)}" if streamed
                  else "both models' parameters stay on-chip"))  # fmt: skip


def _range_summary(decision: dict, m) -> None:
    """Which input range, why, and the float accuracy measured under each candidate."""
    if not decision:
        return
    click.echo(f"  range   {decision['range'][0]:g}..{decision['range'][1]:g} "
               f"({decision['source']}: {decision['reason']})")  # fmt: skip
    hint = decision.get("hint")
    if hint:  # what the model itself says (e.g. a Teachable Machine export), in one line
        said = [f"range {hint['range'][0]:g}..{hint['range'][1]:g}"] if hint.get("range") else []
        if hint.get("resize"):
            size = hint.get("size")
            said.append(f"{hint['resize']}" + (f" to {size[0]}x{size[1]}" if size else ""))
        if m.labels and m.source.get("labels"):
            said.append(f"{len(m.labels)} labels from {m.source['labels']}")
        click.echo(f"  model   {hint['reason']}: {', '.join(said)}")
    acc = decision.get("float_accuracy")
    if acc:
        parts = ", ".join(f"{r} {a:.1%}" for r, a in acc.items())
        n = decision["measured_images"]
        click.echo(f"          float top-1 {parts} on {n} labelled images, class-balanced")


def _detect_summary(v) -> None:
    if not v.get("images"):
        click.echo("  verify  skipped (no held-out images)")
        return
    vs = v.get("map50_int8_vs_float")
    vs = "n/a (no float detections)" if vs is None else f"{vs:.3f}"
    if v.get("map50_int8") is not None:
        click.echo(
            f"  verify  mAP@0.5 float {v['map50_float']:.3f}, int8 {v['map50_int8']:.3f} on "
            f"{v['images']} held-out labelled images; int8 vs float {vs}"
        )
    else:
        click.echo(f"  verify  int8 vs float mAP@0.5 {vs} on {v['images']} held-out images")
    for h in v.get("heads") or ():  # YOLOv3 heads: what each int8 output scale does to a box
        if "xy_step_px" in h:
            click.echo(f"  head    stride {h['stride']}: output {h['output']} scale "
                       f"{h['scale']:.4g}, box centre step <= {h['xy_step_px']:.3g} px, size "
                       f"step {100 * h['wh_step']:.3g} %")  # fmt: skip


def _mib(n) -> str:
    if n is None:
        return "?"
    for unit, f in (("MiB", 1024**2), ("KiB", 1024)):
        if n >= f:
            return f"{n / f:.2f} {unit}"
    return f"{n} B"
