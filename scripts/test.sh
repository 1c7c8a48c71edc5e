#!/usr/bin/env bash
# Set up and run the whole test suite (this is what CI runs, through .ci/run).
# Installs what the tests use for real: a Python venv with every extra, Debian's mosquitto (MQTT
# broker), chromium (status page in a real browser), shellcheck (lint of scripts/) and systemd
# (systemd-analyze verify/security of the unit) and a C compiler (the libedgetpu stand-ins of
# tests/edgetpu_standin). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_setup.sh
. scripts/_setup.sh
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  script_help scripts/test.sh
  exit 0
fi

need=()
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v chromium >/dev/null || need+=(chromium)
command -v shellcheck >/dev/null || need+=(shellcheck)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v cc >/dev/null || need+=(build-essential)
if [ "${#need[@]}" -gt 0 ]; then
  apt_install "${need[@]}"
fi
setup_venv "dev"
.venv/bin/ruff check edgekit models tests scripts
exec .venv/bin/python -m pytest "$@"
