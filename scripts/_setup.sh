# shellcheck shell=bash
# Sourced by scripts/demo.sh and scripts/test.sh: creates .venv with Python 3.9+ and installs
# edgekit with the given extras. Usage: setup_venv "host,device"
setup_venv() {
  local extras="$1"
  local py="${PYTHON:-python3}"
  if [ ! -x .venv/bin/python ]; then
    if ! "$py" -c 'import ensurepip, venv' 2>/dev/null; then
      apt_install python3-venv
    fi
    "$py" -m venv .venv
  fi
  echo "setting up .venv with edgekit[${extras}] (pip; full log: .venv/pip.log)"
  : >.venv/pip.log
  if ! { .venv/bin/python -m pip install --upgrade pip 2>&1 | pip_progress &&
    .venv/bin/python -m pip install -e ".[${extras}]" 2>&1 | pip_progress; }; then
    tail -n 30 .venv/pip.log >&2
    echo "error: pip install failed (full log: .venv/pip.log)" >&2
    return 1
  fi
}

# pip_progress: logs pip's output to .venv/pip.log and shows only what is being installed
# ("  Collecting tensorflow-cpu", "  installed: ..."), so a long install is never silent.
pip_progress() {
  tee -a .venv/pip.log | sed -un \
    -e 's/^Collecting \([^ ;]*\).*/  collecting \1/p' \
    -e 's/^Installing collected packages: /  installing: /p' \
    -e 's/^Successfully installed /  installed: /p'
}

# script_help: print the comment block at the top of the calling script (its --help).
script_help() {
  awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$1"
}

# apt_install PKG...: installs Debian packages when running as root (or with sudo).
apt_install() {
  [ "$#" -gt 0 ] || return 0
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then sudo="sudo"; else
      echo "error: need root to apt-get install $*; install them and re-run" >&2
      return 1
    fi
  fi
  echo "installing Debian packages: $* (apt-get; this can take a minute)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  echo "  installed: $*"
}
