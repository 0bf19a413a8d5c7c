#!/usr/bin/env bash
# Run `ansible-test sanity` and `ansible-test units` on a copy of the collection.
#
# ansible-test must run from .../ansible_collections/<namespace>/<name>/ (symlinks are resolved),
# so the work tree is copied to $TMPDIR/baton-ansible-test/ansible_collections/baton/deploy/.
# ansible-test also downloads a get-pip bootstrap script from a host we cannot reach; we provide an
# offline stand-in that installs pip from a wheel fetched from PyPI (see setup_offline_get_pip).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
export PATH="$REPO/.venv/bin:$PATH"

PYVER="${ANSIBLE_TEST_PYTHON:-3.11}"
# A directory of its own per run, so that two runs (two checkouts, two people) never share a copy.
WORK="$(mktemp -d "${TMPDIR:-/tmp}/baton-ansible-test.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
DEST="$WORK/ansible_collections/baton/deploy"

log() { printf '[sanity] %s\n' "$*"; }

command -v ansible-test >/dev/null || { echo "ansible-test not found: run scripts/bootstrap.sh first" >&2; exit 1; }

setup_offline_get_pip() {
    # The pip version ansible-test bootstraps into its venvs (get_venv_packages() default).
    local reqs_py pip_version cache wheel_dir script
    reqs_py="$(python3 -c 'import ansible_test, os; print(os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py"))')"
    pip_version="$(sed -n "s/^ *pip='\([0-9.]*\)',\$/\1/p" "$reqs_py" | head -1)"
    [[ -n "$pip_version" ]] || { echo "cannot find the pip version ansible-test wants in $reqs_py" >&2; exit 1; }
    cache="$HOME/.ansible/test/cache"
    wheel_dir="$cache/offline-pip-$pip_version"
    script="$cache/get_pip_${pip_version//./_}.py"
    mkdir -p "$wheel_dir"
    if ! compgen -G "$wheel_dir/pip-$pip_version-*.whl" >/dev/null; then
        log "downloading pip==$pip_version wheel for ansible-test's offline bootstrap"
        python3 -m pip download --disable-pip-version-check -q --no-deps --only-binary=:all: \
            -d "$wheel_dir" "pip==$pip_version"
    fi
    local wheel
    wheel="$(compgen -G "$wheel_dir/pip-$pip_version-*.whl" | head -1)"
    if [[ ! -f "$script" ]] || ! grep -qF "$wheel" "$script"; then
        log "writing $script"
        rm -f "$script.download"
        cat >"$script" <<PY
# Offline stand-in for get-pip-$pip_version.py, written by baton.deploy scripts/sanity.sh.
# ansible-test runs it (via quiet_pip.py) as: get_pip.py [pip options] pip==$pip_version --no-setuptools --no-wheel
import os
import runpy
import sys

WHEEL = '$wheel'
sys.path.insert(0, WHEEL)  # pip runs straight from its wheel, like the real get-pip.py
args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
sys.argv = ['pip', 'install', '--no-index', '--find-links', os.path.dirname(WHEEL)] + args
runpy.run_module('pip', run_name='__main__', alter_sys=True)
PY
    fi
}

copy_tree() {
    log "copying collection to $DEST"
    mkdir -p "$DEST"
    tar -C "$REPO" -cf - \
        --exclude=./.git --exclude=./.venv --exclude=./.cache --exclude=./tests/output \
        --exclude=./.pytest_cache --exclude=__pycache__ --exclude='*.pyc' \
        --exclude=./dist --exclude='./*.tar.gz' --exclude=./bench-results \
        . | tar -C "$DEST" -xf -
}

setup_offline_get_pip
copy_tree
cd "$DEST"

rc=0
log "ansible-test sanity --local --python $PYVER"
start=$SECONDS
ansible-test sanity --local --python "$PYVER" --color no || rc=$?
log "sanity rc=$rc ($((SECONDS - start)) s)"
if ((rc == 0)); then
    # The module and module_utils tests, in the collection's installed layout. The playbook-level
    # tests under tests/unit (input validation, docs, demo app) run in `make units`.
    log "ansible-test units --local --python $PYVER --requirements tests/unit/plugins/"
    start=$SECONDS
    ansible-test units --local --python "$PYVER" --requirements --color no tests/unit/plugins/ || rc=$?
    log "units rc=$rc ($((SECONDS - start)) s)"
fi
# keep the reports where a person (or CI) can find them
if [[ -d "$DEST/tests/output" ]]; then
    mkdir -p "$REPO/tests/output"
    cp -a "$DEST/tests/output/." "$REPO/tests/output/" 2>/dev/null || true
fi
exit "$rc"
