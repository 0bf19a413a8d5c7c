#!/usr/bin/env bash
# Idempotent setup of the test toolchain on Debian 12 (root, python3 = Python 3.11).
#  1. apt packages the lab/demo/bench need (installed only if missing)
#  2. .venv created with python3 (only if missing)
#  3. pip install -r requirements-test.txt (only if the file changed since the last install)
#  4. one venv per extra ansible-core of the version matrix, .cache/venvs/ansible-<X.Y> from
#     requirements-ansible-<X.Y>.txt with the Python its "# python:" line names (rebuilt only when
#     that file, requirements-matrix.txt or the interpreter changed). BATON_ANSIBLE_MATRIX=0 skips it.
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

# --- ansible-core version matrix ----------------------------------------------
# A venv is reused as long as its stamp (hash of its requirements + the interpreter) matches.
find_python() {  # python3.12 -> a path that runs it: PATH first, then any pyenv-installed 3.12.x
    local name="$1" candidate
    if "$name" --version >/dev/null 2>&1; then
        command -v "$name"; return 0
    fi
    for candidate in "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/"${name#python}"*/bin/"$name"; do
        if [[ -x "$candidate" ]] && "$candidate" --version >/dev/null 2>&1; then
            echo "$candidate"; return 0
        fi
    done
    return 1
}
if [[ "${BATON_ANSIBLE_MATRIX:-1}" != 0 ]]; then
    shopt -s nullglob
    for reqs in requirements-ansible-*.txt; do
        minor="${reqs#requirements-ansible-}"; minor="${minor%.txt}"
        venv=".cache/venvs/ansible-$minor"
        python="$(find_python "$(sed -n 's/^# python: *//p' "$reqs" | head -1)")" || {
            echo "bootstrap: $reqs needs $(sed -n 's/^# python: *//p' "$reqs"), not found on PATH nor under pyenv" \
                "(install it, e.g. \`pyenv install 3.12\`, or set BATON_ANSIBLE_MATRIX=0 to skip the matrix)" >&2
            exit 1
        }
        want="$(cat "$reqs" requirements-matrix.txt | sha256sum | cut -d' ' -f1) $("$python" --version 2>&1)"
        if [[ "$want" == "$(cat "$venv/.requirements.sha256" 2>/dev/null || true)" ]]; then
            log "ansible-core $minor venv unchanged ($venv)"
            continue
        fi
        log "building ansible-core $minor venv ($venv, $("$python" --version 2>&1))"
        rm -rf "$venv"
        "$python" -m venv "$venv"
        "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$reqs"
        printf '%s\n' "$want" >"$venv/.requirements.sha256"
        log "ok: $("$venv/bin/ansible" --version | sed -n 1p)"
    done
fi
