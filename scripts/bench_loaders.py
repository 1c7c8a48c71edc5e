#!/usr/bin/env python3
"""Convert every real Keras file users bring, one table, one run: file, loader, what the file is,
converted or refused (with the one-line cause), input range chosen and why, seconds.

Default files: every model in ../shared/data/keras-wild (test data, not shipped) plus any paths
given. Each is loaded through edgekit.host.loaders (the loader and format it picks, the
preprocessing its structure implies) and then converted with ``edgekit convert --no-compile``
in this process, calibrated on --calib (default: examples/apple-banana); a refusal is the
``Error:`` line convert prints.

    .venv/bin/python scripts/bench_loaders.py [FILE_OR_DIR ...] [--calib DIR] [--json]
        [--convert-args '--input-range -1,1']
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
WILD = ROOT.parent / "shared" / "data" / "keras-wild"
MODEL_SUFFIXES = {".h5", ".hdf5", ".keras", ".model"}


def find_models(paths: list[Path]) -> list[Path]:
    """Model files and SavedModel directories under ``paths``, sorted."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir() and (p / "saved_model.pb").is_file():
            out.append(p)
        elif p.is_dir():
            out.extend(find_models(sorted(p.iterdir())))
        elif p.suffix.lower() in MODEL_SUFFIXES:
            out.append(p)
    return out


def one(model: Path, calib: Path, num_calib: int, num_verify: int, extra: list[str]) -> dict:
    from edgekit.cli import main
    from edgekit.errors import EdgekitError
    from edgekit.host import keras_io

    row: dict = {"file": str(model), "loader": "-", "format": "-", "hint": None}
    t0 = time.perf_counter()
    try:
        loaded = keras_io.load(model)
        row.update(loader=loaded.loader, format=loaded.format,
                   hint=loaded.preprocessing.to_dict() if loaded.preprocessing else None,
                   labels=loaded.labels, fixups=list(loaded.fixups))  # fmt: skip
    except EdgekitError:
        pass  # convert below says why, in its own words
    row["load_s"] = round(time.perf_counter() - t0, 2)
    with tempfile.TemporaryDirectory() as tmp:
        out, err = io.StringIO(), io.StringIO()
        args = ["convert", str(model), "-o", f"{tmp}/b", "--calib", str(calib), "--json",
                "--no-compile", "--num-calib", str(num_calib), "--num-verify", str(num_verify),
                *extra]
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(args, standalone_mode=False)
                code = 0
            except SystemExit as e:
                code = int(e.code or 0)
            except Exception as e:  # click usage errors and the like: report, go on
                code, _ = 2, err.write(f"Error: {type(e).__name__}: {e}\n")
        row["convert_s"] = round(time.perf_counter() - t0, 2)
    errors = [ln for ln in err.getvalue().splitlines() if ln.startswith("Error:")]
    if code == 0 and not errors:
        summary = json.loads(out.getvalue())
        manifest = summary.get("manifest", {})
        row["result"] = "converted"
        row["range"] = manifest.get("input", {}).get("range")
        row["agreement"] = (manifest.get("verification") or {}).get("agreement")
        row["range_why"] = (manifest.get("input", {}).get("range_reason")
                            or (summary.get("input_range") or {}).get("reason"))  # fmt: skip
    else:
        row["result"] = "refused"
        row["cause"] = errors[0][len("Error: "):] if errors else f"exit {code}"
    return row


def table(rows: list[dict]) -> str:
    lines = [f"{'file':44} {'loader':9} {'format':18} {'range':12} {'load s':>7} {'conv s':>7}  "
             "result"]  # fmt: skip
    for r in rows:
        name = "/".join(Path(r["file"]).parts[-2:])[:44]
        rng = "-" if not r.get("range") else "{:g}..{:g}".format(*r["range"])
        res = r["result"] if r["result"] == "converted" else f"refused: {r['cause']}"
        if r.get("agreement") is not None:
            res += f" (agreement {r['agreement']:.2f})"
        if r.get("hint"):
            res += f"; model says {r['hint']['input_range'][0]:g}..{r['hint']['input_range'][1]:g}"
            res += f" ({r['hint']['reason']})"
        lines.append(f"{name:44} {r['loader']:9} {r['format']:18} {rng:12} {r['load_s']:7.2f} "
                     f"{r['convert_s']:7.2f}  {res}")  # fmt: skip
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", type=Path, help="model files or folders (default: "
                    "../shared/data/keras-wild)")  # fmt: skip
    ap.add_argument("--calib", type=Path, default=ROOT / "examples" / "apple-banana")
    ap.add_argument("--num-calib", type=int, default=16)
    ap.add_argument("--num-verify", type=int, default=8)
    ap.add_argument("--convert-args", default="", help="more convert options, e.g. "
                    "'--input-range -1,1'")  # fmt: skip
    ap.add_argument("--json", action="store_true", help="one JSON list instead of the table")
    a = ap.parse_args()
    paths = a.paths or ([WILD] if WILD.is_dir() else [])
    models = find_models(paths)
    if not models:
        print("no model files found (pass paths; ../shared/data/keras-wild is absent)",
              file=sys.stderr)  # fmt: skip
        return 1
    from edgekit.host.tfenv import load_tensorflow

    load_tensorflow()
    extra = shlex.split(a.convert_args)
    rows = [one(m, a.calib, a.num_calib, a.num_verify, extra) for m in models]
    print(json.dumps(rows, indent=2) if a.json else table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
