"""Examples at the end of each command's ``--help``: what a user types first, with the files they
have (a Teachable Machine export, Coral's models, a camera). tests/core/test_help_examples.py
parses every line against its command, so an example never names an option that is gone."""

from __future__ import annotations

import click

EXAMPLES: dict[str, tuple[str, ...]] = {
    "convert": (
        "edgekit convert keras_model.h5 --calib photos/ --labels labels.txt -o bundle/",
        "edgekit convert model.h5 --calib photos/ --min-agreement 0.95 -o bundle/ --json",
        "edgekit convert detector.h5 --calib dataset/ --classify species/ -o feeder/",
    ),
    "compile": (
        "edgekit compile detector.tflite classifier.tflite -o compiled/",
        "edgekit compile feeder/ --force --json",
    ),
    "classify": (
        "edgekit classify bundle/ photo.jpg",
        "edgekit classify mobilenet_v2_1.0_224_quant_edgetpu.tflite cat.jpg "
        "--labels imagenet_labels.txt -k 3 --json",
    ),
    "detect": (
        "edgekit detect bundle/ photo.jpg --annotate out/",
        "edgekit detect yolov8n_full_integer_quant_edgetpu.tflite street.jpg -t 0.4 --json",
        "edgekit detect detector.tflite feeder.jpg --classify inat_bird_quant_edgetpu.tflite "
        "--classify-labels inat_bird_labels.txt --crop-labels bird",
    ),
    "bench": (
        "edgekit bench bundle/ --device usb",
        "edgekit bench model.tflite --device cpu --runs 200 --json",
        "edgekit bench detector.tflite --image street.jpg --classify classifier.tflite",
    ),
    "doctor": ("edgekit doctor", "edgekit doctor --model bundle/ --json"),
    "stack": ("edgekit stack", "edgekit stack --os bookworm --arch arm64 --python 3.11"),
    "serve": (
        "edgekit serve --model bundle/ --source /dev/video0 --http 0.0.0.0:8080",
        "edgekit serve --config /etc/edgekit/edgekit.toml --check",
        "edgekit serve --model detector/ --classify species/ --source feeder.mp4 "
        "--max-frames 100",
    ),
    "inspect": (
        "edgekit inspect keras_model.h5",
        "edgekit inspect model.tflite --compiled model_edgetpu.tflite",
        "edgekit inspect detector.tflite --with classifier.tflite --json",
    ),
    "zoo": (
        "edgekit zoo list",
        "edgekit zoo build mobilenet_v1 --alpha 0.5 --input-size 160 --classes 10 -o mnv1.h5",
    ),
    "zoo build": (
        "edgekit zoo build mobilenet_v1 --classes 5 --budget-ms 2 -o fast.h5",
        "edgekit zoo build yolov3_tiny --input-size 416 --classes 3 -o y3.h5",
    ),
    "train": ("edgekit train photos/ --model mobilenet_v1 --alpha 0.25 --epochs 30 -o model.h5",),
    "keygen": ("edgekit keygen fleet.key",),
    "sign": ("edgekit sign bundle/ --key fleet.key",),
    "verify": ("edgekit verify bundle/ --public-key fleet.key.pub",),
    "rollout": (
        "edgekit rollout bundle/ --broker mqtt.local:1883 --topic edgekit/fleet --canary 1 "
        "--wait 60",
    ),
}


def with_examples(name: str, command: click.Command) -> click.Command:
    """``command`` with its examples as the help's epilog (kept when it has one already)."""
    if isinstance(command, click.Group):  # zoo: its subcommands have their own
        for sub_name, sub in command.commands.items():
            with_examples(f"{name} {sub_name}", sub)
    lines = EXAMPLES.get(name)
    if lines and not command.epilog:
        # \b: click keeps the block's line breaks instead of rewrapping it into one paragraph
        command.epilog = "\b\nExamples:\n" + "\n".join(f"  {x}" for x in lines)
    return command
