"""Where the binaries of a stack come from: feranick's libedgetpu releases, Google's apt and
Python repositories, the tflite_runtime wheel builds, PyPI; their asset names and the sha256
sums someone published. Standard library only (setup-pi.sh runs :mod:`~.stack` before edgekit's
dependencies are installed).
"""

from __future__ import annotations

from typing import Any

FERANICK = "https://github.com/feranick/libedgetpu/releases/download"
TFLITE_BUILDS = "https://github.com/feranick/TFlite-builds/releases/download"
FRIGATE_TFLITE = "https://github.com/frigate-nvr/TFlite-builds/releases/download"  # x86-64 cp311
CORAL_APT = "https://packages.cloud.google.com/apt coral-edgetpu-stable main"
CORAL_PY_REPO = "https://google-coral.github.io/py-repo/"
WHEEL_ARCH = {"arm64": "aarch64", "armhf": "armv7l", "amd64": "x86_64"}

# sha256 of release assets where someone published one (see DESIGN.md for where).
CHECKSUMS = {
    "libedgetpu1-max_16.0tf2.17.1-1.bookworm_arm64.deb":
        "eab8aa4576b4dbf738135d8094f32270b24117f77147d25cbe0f49d0144d85f2",
    "libedgetpu1-max_16.0tf2.17.1-1.bookworm_amd64.deb":
        "63fd00989d29160fa9894e115156a9abe456e88751fc9be89d26e4696200441b",
    "tflite_runtime-2.17.1-cp312-cp312-linux_aarch64.whl":
        "8e544b9001d713dec0c220626ded61e25d7e60b8485e3c78c9a2ff652dbfbd00",
}  # fmt: skip


# Release tags that carry a "v" (public download URLs: v16.0TF2.15.1-1; 16.0TF2.16.1-1,
# 16.0TF2.17.1-1 and 16.0TF2.19.1-1 do not).
V_TAGS = ("2.15.1",)


def feranick_deb(tf: str, distro: str, arch: str, flavour: str = "std") -> dict[str, Any]:
    """libedgetpu1-<flavour> from feranick's release ``[v]16.0TF<tf>-1`` (asset names:
    lower-case ``tf``, ``.<distro>_<arch>.deb``)."""
    version = f"16.0tf{tf}-1"
    tag = ("v" if tf in V_TAGS else "") + f"16.0TF{tf}-1"
    asset = f"libedgetpu1-{flavour}_{version}.{distro}_{arch}.deb"
    return {
        "package": f"libedgetpu1-{flavour}",
        "version": version,
        "tf": tf,
        "url": f"{FERANICK}/{tag}/{asset}",
    }


def google_deb(flavour: str = "std") -> dict[str, Any]:
    return {"package": f"libedgetpu1-{flavour}", "version": "16.0", "tf": "2.5.0", "url": CORAL_APT}


def tflite_wheel(version: str, python: str, arch: str, base: str = TFLITE_BUILDS) -> dict:
    tag = "cp" + python.replace(".", "")
    name = f"tflite_runtime-{version}-{tag}-{tag}-linux_{WHEEL_ARCH[arch]}.whl"
    return {
        "package": "tflite-runtime",
        "version": version,
        "tf": version,
        "source": f"{base}/v{version}/{name}",
    }


def pypi_wheel(package: str, version: str, tf: str) -> dict[str, Any]:
    """An interpreter installed from PyPI by name and version (``tf``: the TF it was built from)."""
    return {"package": package, "version": version, "tf": tf, "source": "pypi"}


def asset_name(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def sha256_for(url: str) -> str | None:
    return CHECKSUMS.get(asset_name(url))
