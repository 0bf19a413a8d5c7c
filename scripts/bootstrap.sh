#!/usr/bin/env bash
# Idempotent setup of the test toolchain on Debian 12 (root, python3 = Python 3.11).
#  1. apt packages the lab/demo/bench need (installed only if missing)
#  2. .venv created with python3 (only if missing)
#  3. pip install -r requirements-test.txt (only if the file changed since the last install)
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(debootstrap systemd-container nftables zstd openssh-client)
VENV=.venv
REQS=requirements-test.txt
STAMP="$VENV/.requirements-test.sha256"
PYTHON="${PYTHON:-python3}"

log() { printf '[bootstrap] %s\n' "$*"; }

# --- apt -------------------------------------------------------------------
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    if ! dpkg -s "$pkg" >/dev/null 2>&1; then
        missing+=("$pkg")
    fi
done
if ((${#missing[@]})); then
    SUDO=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
        SUDO=(sudo)
    fi
    log "installing apt packages: ${missing[*]}"
    "${SUDO[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    log "apt packages present"
fi

# --- venv ------------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv "$VENV"
fi

# --- python requirements -----------------------------------------------------
want="$(sha256sum "$REQS" | cut -d' ' -f1) $("$VENV/bin/python" --version 2>&1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [[ "$want" != "$have" ]]; then
    log "installing $REQS"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQS"
    printf '%s\n' "$want" >"$STAMP"
else
    log "$REQS unchanged since last install"
fi
log "ok: $("$VENV/bin/ansible" --version | sed -n 1p)"
