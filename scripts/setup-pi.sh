#!/usr/bin/env bash
# Prepare a Raspberry Pi (Raspberry Pi OS Bookworm or Bullseye, 64-bit) for edgekit:
#   * Coral's apt repository, libedgetpu1-std (or -max with --max: faster, runs hot) and its
#     udev rule (the USB Accelerator appears as 1a6e:089a, then re-enumerates as 18d1:9302
#     once libedgetpu loads its firmware: both IDs need the plugdev rule),
#   * a Python venv in /opt/edgekit/venv with edgekit[device] (ai-edge-litert, OpenCV headless,
#     paho-mqtt), created with --system-site-packages so the apt-installed picamera2 imports.
#
#   sudo scripts/setup-pi.sh [--max] [--venv DIR] [--source PATH_OR_PIP_SPEC]
#
# Camera notes (Bookworm): Pi camera modules work through libcamera only (the legacy
# /dev/video0 V4L2 camera stack is gone): use source = "picamera2" in the config; check the
# camera with `rpicam-hello --list-cameras` (libcamera-hello on Bullseye). USB webcams are
# /dev/videoN for OpenCV. Plug the Coral into a USB 3 (blue) port; with libedgetpu1-max use a
# good power supply and cooling.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
variant=std
venv=/opt/edgekit/venv
source_spec="$repo"

while [[ $# -gt 0 ]]; do
    case "$1" in
        --max) variant=max; shift ;;
        --venv) venv="$2"; shift 2 ;;
        --source) source_spec="$2"; shift 2 ;;
        -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done
if [[ $EUID -ne 0 ]]; then
    echo "run as root: sudo $0" >&2
    exit 1
fi

arch="$(dpkg --print-architecture)"
if [[ "$arch" != arm64 && "$arch" != armhf ]]; then
    echo "warning: this is $arch, not a Raspberry Pi; continuing anyway" >&2
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y curl gnupg ca-certificates python3-venv python3-pip

# Coral's repository (signed with Google's package key, kept in its own keyring).
keyring=/usr/share/keyrings/coral-edgetpu-archive-keyring.gpg
curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | gpg --dearmor --yes -o "$keyring"
echo "deb [signed-by=$keyring] https://packages.cloud.google.com/apt coral-edgetpu-stable main" \
    >/etc/apt/sources.list.d/coral-edgetpu.list
apt-get update
# The two variants conflict; installing one removes the other.
apt-get install -y "libedgetpu1-$variant"

# libedgetpu's package ships the udev rule; write it if missing (older packages, manual installs).
rule=/etc/udev/rules.d/99-edgetpu-accelerator.rules
if ! ls /lib/udev/rules.d/*edgetpu* >/dev/null 2>&1 && [[ ! -e "$rule" ]]; then
    cat >"$rule" <<'RULES'
SUBSYSTEM=="usb",ATTRS{idVendor}=="1a6e",GROUP="plugdev"
SUBSYSTEM=="usb",ATTRS{idVendor}=="18d1",GROUP="plugdev"
RULES
fi
udevadm control --reload-rules
udevadm trigger --subsystem-match=usb

# Camera stack: picamera2 comes from apt (it needs the matching libcamera build).
if apt-cache show python3-picamera2 >/dev/null 2>&1; then
    apt-get install -y --no-install-recommends python3-picamera2
fi

python3 -m venv --system-site-packages "$venv"
"$venv/bin/pip" install --upgrade pip
"$venv/bin/pip" install "${source_spec}[device]"
"$venv/bin/edgekit" doctor || true
echo "done. Replug the Coral once so the udev rule applies, then: sudo $here/install-service.sh"
