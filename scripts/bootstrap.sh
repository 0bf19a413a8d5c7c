#!/usr/bin/env bash
# Idempotent setup of the test toolchain on Debian 12 (root, python3 = Python 3.11).
#  1. apt packages the lab/demo/bench need (installed only if missing)
#  2. .venv created with python3 (only if missing)
#  3. pip install -r requirements-test.txt (only if the file changed since the last install)
#  4. one venv per extra ansible-core of the version matrix, from requirements-ansible-<X.Y>.txt with
#     the Python its "# python:" line names. They live outside the checkout,
#     ~/.cache/baton-deploy/venvs/ansible-<X.Y>-<hash of requirements + interpreter> (a clean clone,
#     as in CI, reuses them instead of paying ~45 s), and .cache/venvs/ansible-<X.Y> links to the
#     current one (builds for older requirements stay until ~/.cache/baton-deploy/venvs is removed).
#     BATON_ANSIBLE_MATRIX=0 skips the matrix.
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
build_venv() {  # build_venv REQS PYTHON DIR: a venv with REQS installed, marked complete at the end
    local reqs="$1" python="$2" dir="$3"
    rm -rf "$dir"
    "$python" -m venv "$dir"
    "$dir/bin/python" -m pip install --disable-pip-version-check -q -r "$reqs"
    touch "$dir/.complete"
}
if [[ "${BATON_ANSIBLE_MATRIX:-1}" != 0 ]]; then
    VENV_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/baton-deploy/venvs"
    mkdir -p "$VENV_CACHE" .cache/venvs
    shopt -s nullglob
    for reqs in requirements-ansible-*.txt; do
        minor="${reqs#requirements-ansible-}"; minor="${minor%.txt}"
        python="$(find_python "$(sed -n 's/^# python: *//p' "$reqs" | head -1)")" || {
            echo "bootstrap: $reqs needs $(sed -n 's/^# python: *//p' "$reqs"), not found on PATH nor under pyenv" \
                "(install it, e.g. \`pyenv install 3.12\`, or set BATON_ANSIBLE_MATRIX=0 to skip the matrix)" >&2
            exit 1
        }
        key="$(cat "$reqs" requirements-matrix.txt <("$python" --version 2>&1) | sha256sum | cut -c1-12)"
        dir="$VENV_CACHE/ansible-$minor-$key"
        link=".cache/venvs/ansible-$minor"
        [[ -L $link || ! -e $link ]] || rm -rf "$link"  # a venv built in place by an older bootstrap
        ln -sfn "$dir" "$link"
        if [[ -f "$dir/.complete" ]]; then
            log "ansible-core $minor venv unchanged ($dir)"
            continue
        fi
        log "building ansible-core $minor venv ($dir, $("$python" --version 2>&1))"
        # flock: another checkout bootstrapping at the same time waits for this build, then reuses it
        flock "$dir.lock" bash -c "set -euo pipefail; [[ -f '$dir/.complete' ]] || { $(declare -f build_venv); build_venv '$reqs' '$python' '$dir'; }"
        log "ok: $("$link/bin/ansible" --version | sed -n 1p)"
    done
fi
