#!/usr/bin/env bash
# Install the Edge TPU compiler on an x86-64 Debian/Ubuntu host (the compiler exists only for
# x86-64 Linux), from Coral's apt repository, then check it runs.
#
#   sudo scripts/setup-host.sh
#
# Afterwards `edgekit convert model.h5` compiles for the Edge TPU; without the compiler it
# stops after the int8 model and says so.
set -euo pipefail

case "${1:-}" in
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    "") ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
esac
if [[ $EUID -ne 0 ]]; then
    echo "run as root: sudo $0" >&2
    exit 1
fi
if [[ "$(uname -m)" != x86_64 ]]; then
    echo "edgetpu_compiler is only published for x86-64 Linux (this is $(uname -m))" >&2
    echo "convert on an x86-64 machine and copy the bundle to the Pi" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null; then
    echo "this script needs apt (Debian/Ubuntu); see https://coral.ai/docs/edgetpu/compiler/" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y curl gnupg ca-certificates
keyring=/usr/share/keyrings/coral-edgetpu-archive-keyring.gpg
curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | gpg --dearmor --yes -o "$keyring"
echo "deb [signed-by=$keyring] https://packages.cloud.google.com/apt coral-edgetpu-stable main" \
    >/etc/apt/sources.list.d/coral-edgetpu.list
apt-get update
apt-get install -y edgetpu-compiler

edgetpu_compiler --version
echo "edgetpu_compiler installed: edgekit convert will now compile for the Edge TPU"
