#!/usr/bin/env bash
# Install edgekit as a systemd service on a Raspberry Pi (run after scripts/setup-pi.sh).
#
#   sudo scripts/install-service.sh [--model PATH] [--venv /opt/edgekit/venv] [--no-start]
#
# Creates the system user `edgekit` (groups video, plugdev), copies the example config to
# /etc/edgekit/edgekit.toml (kept if it exists), the model to /etc/edgekit/model and installs
# systemd/edgekit.service. Then it runs `edgekit serve --check` on the config as the service
# user, and enables and starts the service only if that passes. The example config is never
# started: edit it ([model] path, [source] uri) and run this script again.
# Idempotent: safe to run again after an upgrade or an edit.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
venv=/opt/edgekit/venv
model=""
start=1
# Everything is written under $root (empty: the real /). Tests set EDGEKIT_INSTALL_ROOT.
root="${EDGEKIT_INSTALL_ROOT:-}"
etc="$root/etc/edgekit"

# The comment block at the top of this file, without its '# ' prefixes.
usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --model) model="${2:?--model needs a path}"; shift 2 ;;
        --venv) venv="${2:?--venv needs a directory}"; shift 2 ;;
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
if [[ -n "$model" && ! -e "$model" ]]; then
    echo "--model $model: no such file or directory" >&2
    exit 1
fi

# Groups: video owns /dev/video* and the Pi camera nodes, plugdev the Coral USB Accelerator
# (Coral's udev rule), apex the PCIe/M.2 Coral (/dev/apex_0).
echo "service user: edgekit (groups video, plugdev)"
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

install -d -m 0755 "$etc"
if [[ ! -e "$etc/edgekit.toml" ]]; then
    install -m 0644 "$repo/systemd/edgekit.toml" "$etc/edgekit.toml"
    echo "wrote $etc/edgekit.toml (the example)"
else
    echo "kept existing $etc/edgekit.toml"
fi
if [[ -n "$model" ]]; then
    echo "model: $model -> $etc/model"
    rm -rf "$etc/model.new"
    if [[ -d "$model" ]]; then
        cp -r "$model" "$etc/model.new"
    else
        install -d "$etc/model.new"
        cp "$model" "$etc/model.new/"
    fi
    # Swap atomically so a running service never sees half a model.
    rm -rf "$etc/model.old"
    if [[ -e "$etc/model" ]]; then mv "$etc/model" "$etc/model.old"; fi
    mv "$etc/model.new" "$etc/model"
    rm -rf "$etc/model.old"
    chmod -R a+rX "$etc/model"
fi

install -d -m 0755 "$root/etc/systemd/system"
unit="$root/etc/systemd/system/edgekit.service"
sed "s#/opt/edgekit/venv/bin/edgekit#$venv/bin/edgekit#" "$repo/systemd/edgekit.service" >"$unit"
chmod 0644 "$unit"
echo "unit: $unit"
# verify exits 0 even on warnings: show whatever it says.
if ! verify_out="$(systemd-analyze verify "$unit" 2>&1)" || [[ -n "$verify_out" ]]; then
    echo "warning: systemd-analyze verify $unit:" >&2
    printf '%s\n' "$verify_out" >&2
fi
systemctl daemon-reload

if cmp -s "$etc/edgekit.toml" "$repo/systemd/edgekit.toml"; then
    echo "not enabled: $etc/edgekit.toml is still the example."
    echo "edit [model] path and [source] uri for this Pi, then run this script again"
    echo "(or check it yourself: sudo -u edgekit $venv/bin/edgekit serve --check --config $etc/edgekit.toml)"
    exit 0
fi
echo "checking $etc/edgekit.toml as user edgekit (edgekit serve --check)"
if ! runuser -u edgekit -- "$venv/bin/edgekit" serve --check --config "$etc/edgekit.toml"; then
    echo "not enabled: the check above failed; fix $etc/edgekit.toml (or the model/camera) and" \
        "run this script again" >&2
    exit 1
fi
systemctl enable edgekit.service
if [[ $start -eq 1 ]]; then
    systemctl restart edgekit.service
    echo "started: journalctl -u edgekit -f   status: systemctl status edgekit"
else
    echo "enabled (starts at boot; now: sudo systemctl start edgekit)"
fi
