"""Fixtures for the streaming tests: a real MJPG video made from Coral's photos, the real
classifier on the small MobileNet, and helpers to inject faults at the source and backend
boundaries."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

from edgekit.images import load_rgb, resize

PHOTOS = ("cat.bmp", "parrot.jpg", "bird.bmp", "grace_hopper.bmp")
FRAMES_PER_PHOTO = 10  # the video shows each photo for 10 frames, in PHOTOS order


@pytest.fixture(scope="session")
def video_avi(coral_dir, tmp_path_factory) -> Path:
    """A 40-frame 640x480 MJPG .avi (30 fps): cat, parrot, bird, grace_hopper, 10 frames each."""
    import cv2

    path = tmp_path_factory.mktemp("video") / "photos.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    assert writer.isOpened()
    for name in PHOTOS:
        bgr = cv2.cvtColor(resize(load_rgb(coral_dir / name), (480, 640)), cv2.COLOR_RGB2BGR)
        for _ in range(FRAMES_PER_PHOTO):
            writer.write(bgr)
    writer.release()
    return path


@pytest.fixture(scope="session")
def small_model(coral_dir) -> Path:
    return coral_dir / "mobilenet_v1_0.25_128_quant.tflite"


@pytest.fixture(scope="session")
def labels_path(coral_dir) -> Path:
    return coral_dir / "imagenet_labels.txt"


@pytest.fixture
def classifier(small_model, labels_path):
    from edgekit.classify import Classifier

    return Classifier(small_model, labels=labels_path, device="cpu", top_k=3, threads=1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def solid(rgb=(255, 0, 0), size=(48, 64)) -> np.ndarray:
    out = np.zeros((*size, 3), dtype=np.uint8)
    out[...] = rgb
    return out


def edgekit_cmd() -> list[str]:
    """The installed console script of this venv (what a user or systemd runs)."""
    import shutil
    import sys

    exe = Path(sys.executable).parent / "edgekit"
    return [str(exe)] if exe.exists() else [shutil.which("edgekit") or "edgekit"]
