#!/usr/bin/env python3
"""A second held-out check of the latency model: public measurements other than Coral's table 1.

``scripts/bench_latency.py`` reproduces Coral's benchmark table (12 calibration rows, 6 held
out). This script takes measured times published elsewhere (Coral's model pages and benchmark
reference files, third-party READMEs, issue threads, blogs), rebuilds each model as a Keras
equivalent with random weights (latency depends on shapes), predicts it with
``edgekit.edgetpu.latency`` for the row's link (USB 3 / USB 2 / PCIe) and host, and prints
predicted / measured per row. Nothing here is fitted: the constants stay the ones fitted on the
calibration rows (``docs/DESIGN.md``, "Latency model", says what the rows show).

    python scripts/bench_latency_external.py [--json] [--markdown] [--only MODEL ...]

Each row says how it was measured: ``runtime`` "C++" (libedgetpu's own benchmark, as Coral's
table) or "Python" (a Python loop around invoke: host overhead the model does not include), and
the host. Rows marked ``calibration_architecture`` are models whose architecture is a
calibration row (measured here on another host or link): they check the links and hosts, not
the architecture.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from edgekit.edgetpu import latency as L

HERE = Path(__file__).resolve().parent

# ---- sources ------------------------------------------------------------------------------------
CORAL_MODELS = "https://coral.ai/models/image-classification"  # "Latency" column
CORAL_ALL = "https://coral.ai/models/all"
CORAL_DETECTION = "https://coral.ai/models/object-detection"
# pycoral's inference_benchmarks.py reference files (the same figures as the older
# edgetpu/benchmarks/reference/basic_engine_reference_*.csv)
CORAL_REF = ("https://github.com/google-coral/pycoral/blob/master/benchmarks/reference/"
             "inference_reference_{}.csv")  # fmt: skip
FREEDOMTAN = "https://github.com/freedomtan/edge_tpu_python_scripts"
CM4_PCIE = "https://github.com/google-coral/edgetpu/issues/280"
PI_USB2_CPP = "https://github.com/google-coral/edgetpu/issues/151"
DEVBOARD_MINI = "https://github.com/google-coral/edgetpu/issues/593"
SOFTSERVE = "https://github.com/softserveinc-rnd/blog/tree/master/coral"
AALLAN = "https://github.com/aallan/benchmarking-ml-on-the-edge"
X2Q = "https://www.x2q.net/post/google-coral-edge-tpu-experiments-2026/"

# Models: name -> (Keras builder key, architecture is a calibration row of Coral's table 1)
MODELS = {
    "MobileNet v1 0.25 (128)": False,
    "MobileNet v1 0.5 (160)": False,
    "Inception v3 (299)": False,
    "EfficientNet-EdgeTPU-L (300)": False,
    "SSD MobileNet v2 face (320)": False,
    "SSD MobileNet v1 0.75 (300)": False,
    "MobileNet v1 (224)": True,
    "MobileNet v2 (224)": True,
    "Inception v1 (224)": True,
    "Inception v4 (299)": True,
    "EfficientNet-EdgeTPU-S (224)": True,
    "EfficientNet-EdgeTPU-M (240)": True,
    "MobileNet v1 SSD (300)": True,
    "MobileNet v2 SSD (300)": True,
}


def _r(model, ms, link, host, device, runtime, source, note="", preprocessing=False):
    return {"model": model, "measured_ms": ms, "link": link, "host": host, "device": device,
            "runtime": runtime, "source": source, "note": note,
            "preprocessing": preprocessing}  # fmt: skip


_DESK, _PI = "desktop", "pi4"  # the latency model's host CPUs (only its CPU ops use them)
_REF = ("Coral's reference file: timeit of interpreter.invoke() alone in Python, 200 runs, one "
        "random input set once")  # fmt: skip
# Every row: the model as named above, whole model with its classification / detection head,
# batch 1, int8 compiled by edgetpu_compiler (the publisher's own compiled model where named).
ROWS = [
    # Coral's model pages: the measured latency per model (desktop CPU + USB Accelerator, as
    # table 1; the stored copy of the page does not repeat the footnote)
    _r("EfficientNet-EdgeTPU-L (300)", 21.3, "usb3", _DESK, "USB Accelerator", "C++",
       CORAL_MODELS),
    _r("Inception v3 (299)", 42.8, "usb3", _DESK, "USB Accelerator", "C++", CORAL_MODELS,
       "23.9 MB compiled model"),
    _r("MobileNet v1 0.25 (128)", 0.9, "usb3", _DESK, "USB Accelerator", "C++", CORAL_ALL),
    _r("SSD MobileNet v2 face (320)", 5.2, "usb3", _DESK, "USB Accelerator", "C++",
       CORAL_DETECTION),
    _r("EfficientNet-EdgeTPU-S (224)", 5.0, "usb3", _DESK, "USB Accelerator", "C++",
       CORAL_MODELS),
    _r("EfficientNet-EdgeTPU-M (240)", 7.3, "usb3", _DESK, "USB Accelerator", "C++",
       CORAL_MODELS),
    _r("Inception v4 (299)", 84.7, "usb3", _DESK, "USB Accelerator", "C++", CORAL_ALL),
    _r("MobileNet v2 SSD (300)", 7.3, "usb3", _DESK, "USB Accelerator", "C++", CORAL_DETECTION,
       "TF1 model; table 1 says 7.2"),
    # Coral's benchmark reference files (pycoral benchmarks/inference_benchmarks.py): the same
    # six compiled models, invoke() timed in Python on four platforms; x86_64 is a Xeon
    # E5-1650 v3 + USB 3.0, rp3b+ a Raspberry Pi 3 B+ on USB 2.0, aarch64 the Dev Board (the
    # script's docstring); rp4b a Raspberry Pi 4 (its USB 3 port assumed: not stated)
    *[_r(m, ms, link, host, dev, "Python", CORAL_REF.format(plat), _REF)
      for plat, link, host, dev, times in (
          ("x86_64", "usb3", _DESK, "USB Accelerator, Xeon E5-1650 v3 desktop",
           (3.06, 84.25, 10.02, 5.36, 2.17, 2.29)),
          ("rp4b", "usb3", _PI, "USB Accelerator, Raspberry Pi 4 (USB 3)",
           (6.21, 141.20, 15.09, 9.31, 4.20, 4.55)),
          ("rp3b+", "usb2", _PI, "USB Accelerator, Raspberry Pi 3 B+ (USB 2 only)",
           (18.94, 1054.94, 57.68, 38.75, 9.0, 10.61)),
          ("aarch64", "pci", _PI, "Dev Board (Edge TPU on PCIe, i.MX 8M)",
           (4.0, 100.33, 14.83, 7.78, 2.22, 2.56)))
      for m, ms in zip(("Inception v1 (224)", "Inception v4 (299)", "MobileNet v1 SSD (300)",
                        "SSD MobileNet v2 face (320)", "MobileNet v1 (224)",
                        "MobileNet v2 (224)"), times)],
    # freedomtan: Coral's compiled models, iMac 2015 / MacBook Pro 2018 on USB 3, Dev Board;
    # Python label_image loop and the Edge TPU C++ API
    *[_r(m, ms, link, host, dev, rt, FREEDOMTAN)
      for dev, link, host, rt, times in (
          ("USB Accelerator, iMac 2015", "usb3", _DESK, "Python", (2.91, 3.01, 3.74, 84.93)),
          ("USB Accelerator, MacBook Pro 2018", "usb3", _DESK, "Python",
           (3.10, 3.20, 4.10, 92.32)),
          ("Dev Board", "pci", _PI, "Python", (2.51, 2.69, 4.23, 101.87)),
          ("Dev Board", "pci", _PI, "C++", (2.24, 2.45, 3.77, 101.63)),
          ("USB Accelerator, MacBook Pro 2018", "usb3", _DESK, "C++",
           (2.73, 2.89, 3.52, 84.92)))
      for m, ms in zip(("MobileNet v1 (224)", "MobileNet v2 (224)", "Inception v1 (224)",
                        "Inception v4 (299)"), times)],
    # libcoral's models_benchmark (C++) on a Raspberry Pi CM4 with an M.2 / PCIe Coral
    *[_r(m, ms, "pci", _PI, "PCIe Coral on a Raspberry Pi CM4", "C++", CM4_PCIE)
      for m, ms in (("MobileNet v1 (224)", 2.474), ("MobileNet v1 0.25 (128)", 0.993),
                    ("MobileNet v1 0.5 (160)", 1.335))],
    _r("MobileNet v1 (224)", 9.5, "usb2", _PI, "USB Accelerator on USB 2.0, armv7l board",
       "C++", PI_USB2_CPP, "tflite_runtime C++; Coral: '~9 ms on a Pi 3' in the thread"),
    # Dev Board Mini: its Edge TPU sits on USB 2.0 (Coral in issue 497); MT8167S host (4x A35)
    *[_r(m, ms, "usb2", _PI, "Dev Board Mini (Edge TPU on USB 2.0, MT8167S)", "Python",
         DEVBOARD_MINI, "pycoral inference_benchmarks.py")
      for m, ms in (("Inception v1 (224)", 34.71), ("Inception v4 (299)", 1403.41),
                    ("MobileNet v1 (224)", 18.13))],
    # SoftServe: Raspberry Pi 3 B+ (USB 2) and Dev Board, Python, mean per image (1 ms steps)
    *[_r(m, ms, link, _PI, dev, "Python", SOFTSERVE, "mean image processing time, 1 ms steps")
      for dev, link, times in (
          ("Dev Board", "pci", (4, 52, 102, 1, 3, 3)),
          ("USB Accelerator, Raspberry Pi 3 B+ (USB 2 only)", "usb2", (21, 590, 1184, 4, 10, 12)))
      for m, ms in zip(("Inception v1 (224)", "Inception v3 (299)", "Inception v4 (299)",
                        "MobileNet v1 0.25 (128)", "MobileNet v1 (224)", "MobileNet v2 (224)"),
                       times)],
    # Alasdair Allan: SSD detectors (COCO, 300x300), Python edgetpu DetectionEngine including
    # the host's image resize; USB 3 on a Raspberry Pi 4
    *[_r(m, ms, link, _PI, dev, "Python", AALLAN, "detect_with_image: host resize included",
         preprocessing=True)
      for dev, link, times in (
          ("Dev Board", "pci", (20.9, 15.7)),
          ("USB Accelerator on USB 2, Raspberry Pi", "usb2", (58.1, 49.3)),
          ("USB Accelerator, Raspberry Pi 4 (USB 3)", "usb3", (18.2, 14.9)))
      for m, ms in zip(("MobileNet v2 SSD (300)", "SSD MobileNet v1 0.75 (300)"), times)],
    # x2q.net: i9-13900K, USB 3, pycoral 2.0 in a Docker container, perf_counter around invoke
    *[_r(m, ms, "usb3", _DESK, "USB Accelerator, i9-13900K", "Python", X2Q)
      for m, ms in (("MobileNet v1 (224)", 3.9), ("EfficientNet-EdgeTPU-L (300)", 31),
                    ("MobileNet v2 SSD (300)", 12))],
]  # fmt: skip


# ---- models -------------------------------------------------------------------------------------


def _bench():
    sys.path.insert(0, str(HERE))
    import bench_latency

    return bench_latency


def builders() -> dict:
    """name -> callable building the Keras equivalent (random weights), for the models that are
    not rows of bench_latency.py (those are built there, with their CPU tails and Coral's own
    compiled twins when ../shared has them)."""
    sys.path.insert(0, str(HERE))
    import latency_models as M

    def apps(name, size, **kw):
        import keras

        return getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3), **kw)

    return {
        "MobileNet v1 0.25 (128)": lambda: apps("MobileNet", 128, alpha=0.25),
        "MobileNet v1 0.5 (160)": lambda: apps("MobileNet", 160, alpha=0.5),
        "Inception v3 (299)": lambda: apps("InceptionV3", 299),
        "EfficientNet-EdgeTPU-L (300)": lambda: M.efficientnet_edgetpu(300, 1.4, width=1.2),
        # TF OD facessd_mobilenet_v2_quantized_320x320_open_image_v4: one class + background
        "SSD MobileNet v2 face (320)": lambda: M.ssd_mobilenet(2, 320, classes=2),
        "SSD MobileNet v1 0.75 (300)": lambda: M.ssd_mobilenet(1, 300, alpha=0.75),
    }


def works(names=None) -> dict[str, L.Work]:
    """name -> Work of each model in ``names`` (default: every model the rows use)."""
    names = set(names or {r["model"] for r in ROWS})
    bench = _bench()
    out = bench.works(names & set(bench.PUBLISHED))
    own = builders()
    if names - set(out) - set(own):
        raise KeyError(f"no builder for {sorted(names - set(out) - set(own))}")
    from edgekit.host.keras_stats import inspect_keras
    from edgekit.host.tfenv import load_tensorflow

    load_tensorflow()
    import keras

    for name in sorted(names & set(own)):
        keras.backend.clear_session()
        stats = inspect_keras(own[name]())
        w = L.work_from_keras_layers(stats["layers"], stats["input_shapes"],
                                     stats["output_shapes"])  # fmt: skip
        out[name] = bench.tails("SSD" if "SSD" in name else name, w)
    return out


# ---- table --------------------------------------------------------------------------------------


def table(ws: dict[str, L.Work], rows=None) -> list[dict]:
    out = []
    for r in rows or ROWS:
        if r["model"] not in ws:
            continue
        pred = L.latency(ws[r["model"]], r["host"])
        ms = pred["latency_ms"][r["link"]]
        out.append({**r, "calibration_architecture": MODELS[r["model"]],
                    "built_from": ws[r["model"]].source, "predicted_ms": ms,
                    "ratio": round(ms / r["measured_ms"], 2),
                    "parts_ms": pred["parts_ms"][r["link"]],
                    "streamed_mib": round(pred["streamed_bytes"] / 2**20, 1)})  # fmt: skip
    return out


def _factor(x: float) -> float:
    return max(x, 1 / x)


HELD_OUT_GROUP = "held-out architectures, desktop + USB 3, C++"


def group(r: dict) -> str:
    """The summary group of a table row: by link and host class (the calibration's desktop
    + USB 3 vs a Raspberry Pi-class host), rows timed with the host's pre-processing apart."""
    if r["preprocessing"]:
        return "timed with host pre-processing (not comparable)"
    if r["link"] == "usb3" and r["host"] == "desktop":
        if not r["calibration_architecture"] and r["runtime"] == "C++":
            return HELD_OUT_GROUP
        return "desktop + USB 3"
    if r["link"] == "usb3":
        return "Raspberry Pi 4 + USB 3"
    return {"pci": "PCIe (Dev Board, Pi CM4)", "usb2": "USB 2 (Pi 3 B+, Dev Board Mini, armv7)"}[
        r["link"]
    ]


def summary(rows: list[dict]) -> dict:
    """Per group (:func:`group`): rows, median predicted/measured ratio, median and worst
    factor."""
    groups: dict[str, list[float]] = {}
    for r in rows:
        groups.setdefault(group(r), []).append(r["ratio"])
    return {k: {"rows": len(v), "median_ratio": round(statistics.median(v), 2),
                "median_factor": round(statistics.median(map(_factor, v)), 2),
                "worst_factor": round(max(map(_factor, v)), 2)}
            for k, v in sorted(groups.items())}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--markdown", action="store_true", help="the DESIGN table")
    ap.add_argument("--only", nargs="+", metavar="MODEL", help="only these models")
    a = ap.parse_args()
    t0 = time.perf_counter()
    ws = works(a.only)
    rows = table(ws)
    res = {"rows": rows, "summary": summary(rows), "seconds": round(time.perf_counter() - t0, 1)}
    if a.json:
        print(json.dumps(res, indent=2))
        return 0
    if a.markdown:
        print("| model | device (link) | runtime | measured ms | predicted ms | ratio | source |")
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['model']} | {r['device']} ({r['link']}) | {r['runtime']} | "
                  f"{r['measured_ms']:g} | {r['predicted_ms']:g} | {r['ratio']:.2f} | "
                  f"{r['source']} |")  # fmt: skip
        return 0
    print(f"{'model':30} {'link':5} {'runtime':7} {'measured':>9} {'predicted':>9} {'ratio':>6}"
          "  device; parts (ms)")  # fmt: skip
    for r in rows:
        parts = ", ".join(f"{k} {v:g}" for k, v in r["parts_ms"].items() if v)
        print(f"{r['model']:30} {r['link']:5} {r['runtime']:7} {r['measured_ms']:>9g} "
              f"{r['predicted_ms']:>9g} {r['ratio']:>6.2f}  {r['device']}; {parts}; "
              f"streamed {r['streamed_mib']} MiB")  # fmt: skip
    for k, v in res["summary"].items():
        print(f"{k}: {v['rows']} rows, median ratio {v['median_ratio']}, median factor "
              f"{v['median_factor']}, worst {v['worst_factor']}")  # fmt: skip
    print(f"({res['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
