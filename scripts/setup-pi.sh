#!/usr/bin/env bash
# Prepare a Raspberry Pi (Raspberry Pi OS Bullseye, Bookworm or Trixie) for edgekit with exactly
# the libedgetpu + TFLite interpreter pair `edgekit stack` names for it (both built from the same
# TensorFlow version: Google's own libedgetpu 16.0 segfaults in current interpreters):
#   * libedgetpu (feranick's rebuild as a .deb, or Coral's apt repository on Bullseye), replacing
#     any other libedgetpu it finds, its udev rule and the plugdev group,
#   * a venv (default /opt/edgekit/venv) with the pinned interpreter and edgekit, on the system
#     Python or, where the system Python has no matching interpreter (Trixie's 3.13), on a
#     CPython 3.11 installed by a pinned uv,
#   * picamera2 from apt (Pi cameras), then `edgekit doctor`.
# Downloads are checked against the sha256 pinned in edgekit/edgetpu/stack.py where one is published,
# else recorded in /var/lib/edgekit/checksums and checked on every later run. Re-running is safe:
# what is already installed and right is left alone.
#
#   sudo scripts/setup-pi.sh [--max] [--experimental] [--venv DIR] [--source PATH_OR_PIP_SPEC]
#                            [--offline DIR] [--dry-run] [--os NAME --arch ARCH --python X.Y]
#
#   --max           libedgetpu1-max (full clock, runs hot; its EULA question is answered yes)
#   --experimental  the experimental pair where `edgekit stack` offers one
#   --offline DIR   install from files copied into DIR: the .deb and wheel assets named by
#                   `edgekit stack`, a pip wheelhouse for edgekit's dependencies and, for the uv
#                   route, uv's wheel and CPython archive (no network used)
#   --dry-run       print the plan (every command) and change nothing; no root needed
#   --os/--arch/--python  plan for another machine (with --dry-run)
#
# Camera notes (Bookworm): Pi camera modules work through libcamera only: use
# source = "picamera2" in the config; check with `rpicam-hello --list-cameras`. USB webcams are
# /dev/videoN for OpenCV. Plug the Coral into a USB 3 (blue) port.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
flavour=std
experimental=""
venv=/opt/edgekit/venv
source_spec="$repo"
offline=""
dry_run=0
os_name=""
arch=""
python_version=""
cache=/var/cache/edgekit
state=/var/lib/edgekit

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; }
need_value() { [[ $# -ge 2 && -n "$2" ]] || { echo "error: $1 needs a value" >&2; exit 2; }; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --max) flavour=max; shift ;;
        --experimental) experimental="--experimental"; shift ;;
        --venv) need_value "$@"; venv="$2"; shift 2 ;;
        --source) need_value "$@"; source_spec="$2"; shift 2 ;;
        --offline) need_value "$@"; offline="$2"; shift 2 ;;
        --dry-run) dry_run=1; shift ;;
        --os) need_value "$@"; os_name="$2"; shift 2 ;;
        --arch) need_value "$@"; arch="$2"; shift 2 ;;
        --python) need_value "$@"; python_version="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "error: unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [[ -n "$offline" && ! -d "$offline" ]]; then
    echo "error: --offline $offline: not a directory" >&2
    exit 2
fi
if [[ $dry_run -eq 0 && $EUID -ne 0 ]]; then
    echo "error: run as root: sudo $0 (or --dry-run to see the plan)" >&2
    exit 1
fi

# -- this machine (or the one named) and its stack -------------------------------------------
if [[ -z "$os_name" ]]; then
    os_name="$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-unknown}")" || os_name=unknown
fi
[[ -n "$arch" ]] || arch="$(dpkg --print-architecture 2>/dev/null || uname -m)"
[[ -n "$python_version" ]] || python_version="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
stack_args=(--os "$os_name" --arch "$arch" --python "$python_version")
[[ $flavour == max ]] && stack_args+=(--max)
[[ -n "$experimental" ]] && stack_args+=("$experimental")
# edgekit.edgetpu.stack needs only the standard library: it runs before anything is installed.
if ! plan="$(PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" python3 -m edgekit.edgetpu.stack "${stack_args[@]}")"; then
    exit 2
fi
# Defaults for shellcheck; the eval below sets every one of them.
STACK_STATUS="" STACK_WHY="" LIB_PACKAGE="" LIB_VERSION="" LIB_TF="" LIB_URL="" LIB_SHA256=""
INTERP_PACKAGE="" INTERP_VERSION="" INTERP_TF="" INTERP_SOURCE="" NUMPY_CONSTRAINT="" INTERP_SHA256="" VENV_PYTHON="" PYTHON_VIA=""
UV_VERSION="" DPKG_IGNORE=""
eval "$plan"

echo "edgekit stack for $os_name $arch, Python $python_version: $STACK_STATUS"
echo "  why: $STACK_WHY"
if [[ $STACK_STATUS == unsupported ]]; then
    echo "error: no libedgetpu/interpreter pair is known to work here; nothing installed" >&2
    exit 1
fi
echo "  libedgetpu:  $LIB_PACKAGE $LIB_VERSION (TF $LIB_TF)"
echo "  interpreter: $INTERP_PACKAGE $INTERP_VERSION (TF $INTERP_TF)"
echo "  python:      $VENV_PYTHON ($PYTHON_VIA) in $venv"
[[ $dry_run -eq 1 ]] && echo "dry run: the commands below are printed, not run"

run() {
    echo "+ $*"
    [[ $dry_run -eq 1 ]] || "$@"
}
step() { echo; echo "== $*"; }
export DEBIAN_FRONTEND=noninteractive

# fetch URL: the file in $cache (or $offline), checked; prints its path.
fetch() {
    local url="$1" pinned="$2" name file
    name="${url##*/}"
    if [[ -n "$offline" ]]; then
        file="$offline/$name"
        if [[ $dry_run -eq 0 && ! -f "$file" ]]; then
            echo "error: --offline: $file is missing; copy $url there" >&2
            exit 1
        fi
    else
        file="$cache/$name"
        if [[ $dry_run -eq 1 || ! -f "$file" ]]; then
            run mkdir -p "$cache" >&2
            run curl -fL --retry 3 -o "$file.part" "$url" >&2
            run mv "$file.part" "$file" >&2
        fi
    fi
    verify "$file" "$pinned" >&2
    echo "$file"
}

# verify FILE PINNED: the pinned sha256, else the one recorded on the first install.
verify() {
    local file="$1" pinned="$2" name sum recorded
    name="${file##*/}"
    if [[ $dry_run -eq 1 ]]; then
        echo "+ sha256sum $file  # must be ${pinned:-the one recorded in $state/checksums, if any}"
        return
    fi
    sum="$(sha256sum "$file" | cut -d' ' -f1)"
    recorded="$(awk -v n="$name" '$2 == n {print $1}' "$state/checksums" 2>/dev/null | tail -n1)"
    if [[ -n "$pinned" && "$sum" != "$pinned" ]]; then
        echo "error: $name: sha256 $sum is not the published $pinned; deleted it" >&2
        rm -f "$file"
        exit 1
    fi
    if [[ -z "$pinned" && -n "$recorded" && "$sum" != "$recorded" ]]; then
        echo "error: $name: sha256 $sum differs from $recorded recorded at the first install" >&2
        exit 1
    fi
    mkdir -p "$state"
    [[ -n "$recorded" ]] || echo "$sum  $name" >>"$state/checksums"
    echo "sha256 $sum  $name (${pinned:+pinned}${pinned:-recorded})"
}

# -- 1. system packages ----------------------------------------------------------------------
step "system packages"
if [[ -z "$offline" ]]; then
    run apt-get update
    run apt-get install -y --no-install-recommends ca-certificates curl gnupg python3-venv \
        libusb-1.0-0
else
    echo "offline: using the installed ca-certificates, python3-venv and libusb-1.0-0"
fi

# -- 2. libedgetpu: exactly LIB_PACKAGE LIB_VERSION, any other one removed ---------------------
step "libedgetpu: $LIB_PACKAGE $LIB_VERSION (TF $LIB_TF)"
installed=()
for pkg in libedgetpu1-std libedgetpu1-max; do
    v="$(dpkg-query -W -f='${Status} ${Version}' "$pkg" 2>/dev/null || true)"
    if [[ "$v" == "install ok installed "* ]]; then
        installed+=("$pkg=${v##* }")
    fi
done
if [[ " ${installed[*]-} " == *" $LIB_PACKAGE=$LIB_VERSION "* && ${#installed[@]} -eq 1 ]]; then
    echo "already installed: $LIB_PACKAGE $LIB_VERSION"
else
    if [[ ${#installed[@]} -gt 0 ]]; then
        echo "replacing ${installed[*]} (not the pair's $LIB_PACKAGE $LIB_VERSION)"
        run apt-get remove -y "${installed[@]%%=*}"
    fi
    if [[ $flavour == max ]]; then
        # The -max package's preinst refuses an unattended install unless this is answered.
        echo "+ debconf-set-selections <<< 'libedgetpu1-max libedgetpu/accepted-eula boolean true'"
        [[ $dry_run -eq 1 ]] || debconf-set-selections <<<'libedgetpu1-max libedgetpu/accepted-eula boolean true'
    fi
    if [[ "$LIB_URL" == *" "* ]]; then
        # Coral's apt repository (Bullseye): its key in its own keyring, no apt-key.
        keyring=/usr/share/keyrings/coral-edgetpu-archive-keyring.gpg
        if [[ -n "$offline" ]]; then
            run dpkg -i "$offline/${LIB_PACKAGE}_${LIB_VERSION}_$arch.deb"
        else
            if [[ $dry_run -eq 1 ]]; then
                echo "+ curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | gpg --dearmor --yes -o $keyring"
                echo "+ echo 'deb [signed-by=$keyring] $LIB_URL' > /etc/apt/sources.list.d/coral-edgetpu.list"
            else
                curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | gpg --dearmor --yes -o "$keyring"
                echo "deb [signed-by=$keyring] $LIB_URL" >/etc/apt/sources.list.d/coral-edgetpu.list
            fi
            run apt-get update
            run apt-get install -y "$LIB_PACKAGE=$LIB_VERSION"
        fi
    else
        deb="$(fetch "$LIB_URL" "$LIB_SHA256")"
        dpkg_args=()
        IFS=, read -r -a ignore <<<"$DPKG_IGNORE"
        for dep in "${ignore[@]}"; do
            # the .deb still declares a package this release no longer has (libgcc1 became
            # libgcc-s1); dpkg would refuse it.
            dpkg_args+=("--ignore-depends=$dep")
        done
        run dpkg -i "${dpkg_args[@]}" "$deb"
        [[ -n "$offline" ]] || run apt-get install -y --no-install-recommends libusb-1.0-0
    fi
    run ldconfig
fi

# udev rule: the package ships one; write it if missing. The USB Accelerator shows as 1a6e:089a
# until libedgetpu loads its firmware, then as 18d1:9302: both need the plugdev rule.
rule=/etc/udev/rules.d/99-edgetpu-accelerator.rules
if ! ls /lib/udev/rules.d/*edgetpu* /usr/lib/udev/rules.d/*edgetpu* >/dev/null 2>&1 && [[ ! -e "$rule" ]]; then
    echo "+ write $rule"
    if [[ $dry_run -eq 0 ]]; then
        cat >"$rule" <<'RULES'
SUBSYSTEM=="usb",ATTRS{idVendor}=="1a6e",GROUP="plugdev"
SUBSYSTEM=="usb",ATTRS{idVendor}=="18d1",GROUP="plugdev"
RULES
    fi
fi
# edgekit's own rule, always: keep the Coral out of USB autosuspend (power/control=on: a
# suspended stick answers late or drops off the bus) and let the plugdev group write its usbfs
# node (serve's self-healing resets a wedged Coral with USBDEVFS_RESET on it). Both ids:
# 1a6e:089a before libedgetpu uploads the firmware, 18d1:9302 after.
health_rule=/etc/udev/rules.d/99-edgetpu-edgekit.rules
health_rules='SUBSYSTEM=="usb", ENV{DEVTYPE}=="usb_device", ATTR{idVendor}=="1a6e", ATTR{idProduct}=="089a", GROUP="plugdev", MODE="0664", ATTR{power/control}="on"
SUBSYSTEM=="usb", ENV{DEVTYPE}=="usb_device", ATTR{idVendor}=="18d1", ATTR{idProduct}=="9302", GROUP="plugdev", MODE="0664", ATTR{power/control}="on"'
echo "+ write $health_rule:"
printf '    %s\n' "${health_rules//$'\n'/$'\n    '}"
if [[ $dry_run -eq 0 ]]; then
    printf '%s\n' "$health_rules" >"$health_rule"
fi
getent group plugdev >/dev/null || run groupadd plugdev
if [[ -n "${SUDO_USER:-}" && "$SUDO_USER" != root ]]; then
    run usermod -aG plugdev "$SUDO_USER"
fi
if command -v udevadm >/dev/null; then
    run udevadm control --reload-rules
    run udevadm trigger --subsystem-match=usb
fi

# -- 3. camera stack: picamera2 from apt (it needs the matching libcamera build) ---------------
if [[ -z "$offline" ]] && apt-cache show python3-picamera2 >/dev/null 2>&1; then
    step "camera: python3-picamera2"
    run apt-get install -y --no-install-recommends python3-picamera2
fi

# -- 4. the venv on the stack's Python -------------------------------------------------------
step "python $VENV_PYTHON ($PYTHON_VIA) venv: $venv"
pip_offline=()
[[ -z "$offline" ]] || pip_offline=(--no-index --find-links "$offline")
have="$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)"
if [[ -n "$have" && "$have" != "$VENV_PYTHON" ]]; then
    echo "replacing $venv (Python $have, the stack needs $VENV_PYTHON)"
    run rm -rf "$venv"
    have=""
fi
if [[ -z "$have" ]]; then
    if [[ $PYTHON_VIA == uv ]]; then
        uv_home=/opt/edgekit/uv
        run python3 -m venv "$uv_home"
        run "$uv_home/bin/pip" install "${pip_offline[@]}" "uv==$UV_VERSION"
        export UV_PYTHON_INSTALL_DIR=/opt/edgekit/python
        [[ -z "$offline" ]] || export UV_PYTHON_INSTALL_MIRROR="file://$offline"
        run "$uv_home/bin/uv" python install "$VENV_PYTHON"
        run "$uv_home/bin/uv" venv --seed --python "$VENV_PYTHON" "$venv"
    else
        # --system-site-packages: the apt-installed picamera2 imports in the venv.
        run "python$VENV_PYTHON" -m venv --system-site-packages "$venv"
    fi
else
    echo "already there: $venv (Python $have)"
fi

# -- 5. the interpreter, pinned, then edgekit without another interpreter ---------------------
step "interpreter: $INTERP_PACKAGE $INTERP_VERSION"
if [[ -n "$NUMPY_CONSTRAINT" ]]; then
    # tflite_runtime is built against numpy 1: keep every later install (OpenCV...) on it.
    constraints="$state/constraints.txt"
    echo "+ echo '$NUMPY_CONSTRAINT' > $constraints"
    [[ $dry_run -eq 1 ]] || { mkdir -p "$state"; echo "$NUMPY_CONSTRAINT" >"$constraints"; }
    pip_offline+=(--constraint "$constraints")
fi
case "$INTERP_SOURCE" in
    https://*.whl) spec="$(fetch "$INTERP_SOURCE" "$INTERP_SHA256")" ;;
    pypi) spec="$INTERP_PACKAGE==$INTERP_VERSION" ;;
    *) spec="$INTERP_PACKAGE==$INTERP_VERSION"; pip_offline+=(--extra-index-url "$INTERP_SOURCE") ;;
esac
run "$venv/bin/python" -m pip install "${pip_offline[@]}" "$spec"
# edgekit loads ai_edge_litert before tflite_runtime: only the stack's interpreter may be there.
for other in ai-edge-litert tflite-runtime; do
    if [[ $other != "$INTERP_PACKAGE" ]]; then
        run "$venv/bin/python" -m pip uninstall -y "$other"
    fi
done
step "edgekit: $source_spec"
run "$venv/bin/python" -m pip install "${pip_offline[@]}" "${source_spec}[pi]"
if [[ $dry_run -eq 0 ]]; then
    mkdir -p "$state"
    printf '%s\n' "$plan" >"$state/stack.env"
fi

# -- 6. prove it -----------------------------------------------------------------------------
step "edgekit doctor"
echo "(replug the Coral once if this is the first install, so the udev rule applies)"
run "$venv/bin/edgekit" doctor
echo "done. Next: sudo $here/install-service.sh"
