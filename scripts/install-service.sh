#!/usr/bin/env bash
# Install edgekit as a systemd service on a Raspberry Pi (run after scripts/setup-pi.sh).
#
#   sudo scripts/install-service.sh [--model PATH] [--venv /opt/edgekit/venv] [--no-start]
#
# Creates the system user `edgekit` (groups video, plugdev), copies the example config to
# /etc/edgekit/edgekit.toml (kept if it exists), the model to /etc/edgekit/model, installs
# systemd/edgekit.service and enables it. Idempotent: safe to run again after an upgrade.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
venv=/opt/edgekit/venv
model=""
start=1

# The comment block at the top of this file, without its '# ' prefixes.
usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --model) model="$2"; shift 2 ;;
        --venv) venv="$2"; shift 2 ;;
        --no-start) start=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done

if [[ $EUID -ne 0 ]]; then
    echo "run as root: sudo $0 $*" >&2
    exit 1
fi
if [[ ! -x "$venv/bin/edgekit" ]]; then
    echo "$venv/bin/edgekit not found: run scripts/setup-pi.sh first (or pass --venv)" >&2
    exit 1
fi

# Groups: video owns /dev/video* and the Pi camera nodes, plugdev the Coral USB Accelerator
# (Coral's udev rule), apex the PCIe/M.2 Coral (/dev/apex_0).
for group in video plugdev; do
    getent group "$group" >/dev/null || groupadd --system "$group"
done
if ! id -u edgekit >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/edgekit --no-create-home \
        --shell /usr/sbin/nologin --user-group edgekit
fi
extra_groups=video,plugdev
getent group apex >/dev/null && extra_groups="$extra_groups,apex"
usermod -a -G "$extra_groups" edgekit

install -d -m 0755 /etc/edgekit
if [[ ! -e /etc/edgekit/edgekit.toml ]]; then
    install -m 0644 "$repo/systemd/edgekit.toml" /etc/edgekit/edgekit.toml
    echo "wrote /etc/edgekit/edgekit.toml: edit [source] and [model] for this Pi"
else
    echo "kept existing /etc/edgekit/edgekit.toml"
fi
if [[ -n "$model" ]]; then
    rm -rf /etc/edgekit/model.new
    if [[ -d "$model" ]]; then
        cp -r "$model" /etc/edgekit/model.new
    else
        install -d /etc/edgekit/model.new
        cp "$model" /etc/edgekit/model.new/
    fi
    # Swap atomically so a running service never sees half a model.
    rm -rf /etc/edgekit/model.old
    [[ -e /etc/edgekit/model ]] && mv /etc/edgekit/model /etc/edgekit/model.old
    mv /etc/edgekit/model.new /etc/edgekit/model
    rm -rf /etc/edgekit/model.old
    chmod -R a+rX /etc/edgekit/model
fi

unit=/etc/systemd/system/edgekit.service
sed "s#/opt/edgekit/venv/bin/edgekit#$venv/bin/edgekit#" "$repo/systemd/edgekit.service" >"$unit"
chmod 0644 "$unit"
systemd-analyze verify "$unit" || true
systemctl daemon-reload
systemctl enable edgekit.service
if [[ $start -eq 1 ]]; then
    systemctl restart edgekit.service
    echo "started: journalctl -u edgekit -f   status: systemctl status edgekit"
fi
