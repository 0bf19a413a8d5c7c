#!/usr/bin/env bash
# Run `ansible-test sanity` and `ansible-test units` on a copy of the collection, on every
# ansible-core of the version matrix (meta/runtime.yml requires_ansible):
#   - CI's toolchain (.venv, requirements-test.txt): every sanity test, then units;
#   - each requirements-ansible-<X.Y>.txt venv (.cache/venvs/ansible-<X.Y>, built by
#     scripts/bootstrap.sh): units, and the sanity tests whose verdict depends on the ansible-core
#     version (MATRIX_SANITY_TESTS below; pylint on plugins/ on the newest); the others run once.
# BATON_ANSIBLE_VERSIONS="2.19 2.21" restricts the run to those minors (make sanity-ci, sanity-matrix).
#
# ansible-test must run from .../ansible_collections/<namespace>/<name>/ (symlinks are resolved),
# so the work tree is copied to $TMPDIR/baton-ansible-test/ansible_collections/baton/deploy/.
# ansible-test also downloads a get-pip bootstrap script from a host we cannot reach; we provide an
# offline stand-in that installs pip from a wheel fetched from PyPI (see setup_offline_get_pip).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
BASE_PATH="$PATH"

# Sanity tests run on the extra ansible-core versions (each run costs CI time: measured on a 2-core
# machine, these six take ~17 s per version, pylint ~27 s on plugins/ and ~70 s on the whole tree):
# those that load the modules or their docs with that ansible-core (ansible-doc, import,
# validate-modules), check metadata against its schema (runtime-metadata) or its ignore file
# (ignores), or compile under its Python (compile). On the newest version also pylint with
# ansible-core's own checkers (deprecated and removed APIs), on plugins/ only: the code that runs
# inside ansible-core. The rest (pep8, yamllint, changelog, shebang, no-*, ...) check style with the
# same verdict on every version: once, on CI's toolchain.
MATRIX_SANITY_TESTS=(ansible-doc compile ignores import runtime-metadata validate-modules)
# A directory of its own per run, so that two runs (two checkouts, two people) never share a copy.
WORK="$(mktemp -d "${TMPDIR:-/tmp}/baton-ansible-test.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
DEST="$WORK/ansible_collections/baton/deploy"

log() { printf '[sanity] %s\n' "$*"; }

setup_offline_get_pip() {  # $1: the python of the venv that runs ansible-test
    # The pip version ansible-test bootstraps into its venvs (get_venv_packages() default).
    local python="$1" reqs_py pip_version cache wheel_dir script
    reqs_py="$("$python" -c 'import ansible_test, os; print(os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py"))')"
    pip_version="$(sed -n "s/^ *pip='\([0-9.]*\)',\$/\1/p" "$reqs_py" | head -1)"
    [[ -n "$pip_version" ]] || { echo "cannot find the pip version ansible-test wants in $reqs_py" >&2; exit 1; }
    cache="$HOME/.ansible/test/cache"
    wheel_dir="$cache/offline-pip-$pip_version"
    script="$cache/get_pip_${pip_version//./_}.py"
    mkdir -p "$wheel_dir"
    if ! compgen -G "$wheel_dir/pip-$pip_version-*.whl" >/dev/null; then
        log "downloading pip==$pip_version wheel for ansible-test's offline bootstrap"
        "$python" -m pip download --disable-pip-version-check -q --no-deps --only-binary=:all: \
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

# --- the version matrix: "<minor> <venv>", CI's toolchain first ------------------------------
minor_of() { "$1/bin/python" -c 'from ansible.release import __version__ as v; print(".".join(v.split(".")[:2]))'; }
[[ -x .venv/bin/ansible-test ]] || { echo "ansible-test not found in .venv: run scripts/bootstrap.sh first" >&2; exit 1; }
legs=("$(minor_of .venv) .venv")
shopt -s nullglob
for reqs in requirements-ansible-*.txt; do
    minor="${reqs#requirements-ansible-}"; minor="${minor%.txt}"
    legs+=("$minor .cache/venvs/ansible-$minor")
done
wanted="${BATON_ANSIBLE_VERSIONS:-}"

copy_tree
summary=()
rc=0
for i in "${!legs[@]}"; do
    read -r minor venv <<<"${legs[$i]}"
    if [[ -n "$wanted" && " $wanted " != *" $minor "* ]]; then
        continue
    fi
    if [[ ! -x "$REPO/$venv/bin/ansible-test" ]]; then
        echo "ansible-core $minor: no venv at $venv: run scripts/bootstrap.sh first" >&2
        rc=1; summary+=("ansible-core $minor: no venv"); continue
    fi
    export PATH="$REPO/$venv/bin:$BASE_PATH"
    pyver="$("$REPO/$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    [[ $i -eq 0 && -n "${ANSIBLE_TEST_PYTHON:-}" ]] && pyver="$ANSIBLE_TEST_PYTHON"
    tests=()
    scope="every sanity test"
    if ((i > 0)); then
        for t in "${MATRIX_SANITY_TESTS[@]}"; do tests+=(--test "$t"); done
        scope="sanity tests ${MATRIX_SANITY_TESTS[*]}"
        ((i < ${#legs[@]} - 1)) || scope="$scope, pylint on plugins/"
    fi
    setup_offline_get_pip "$REPO/$venv/bin/python"
    (
        cd "$DEST"
        rm -rf tests/output
        leg_rc=0
        log "ansible-core $minor ($("$REPO/$venv/bin/ansible" --version | sed -n 's/.*core \([0-9.]*\).*/\1/p'), Python $pyver): $scope"
        start=$SECONDS
        ansible-test sanity --local --python "$pyver" --color no "${tests[@]}" || leg_rc=$?
        if ((i > 0 && i == ${#legs[@]} - 1 && leg_rc == 0)); then
            ansible-test sanity --local --python "$pyver" --color no --test pylint plugins/ || leg_rc=$?
        fi
        sanity_s=$((SECONDS - start))
        log "ansible-core $minor: sanity rc=$leg_rc ($sanity_s s)"
        units_s=-
        if ((leg_rc == 0)); then
            # The module and module_utils tests, in the collection's installed layout. The
            # playbook-level tests under tests/unit (input validation, docs, demo app) run in `make units`.
            start=$SECONDS
            ansible-test units --local --python "$pyver" --requirements --color no tests/unit/plugins/ || leg_rc=$?
            units_s=$((SECONDS - start))
            log "ansible-core $minor: units rc=$leg_rc ($units_s s)"
        fi
        # keep the reports where a person (or CI) can find them: CI's toolchain in tests/output,
        # the other versions in tests/output/ansible-<X.Y>
        out="$REPO/tests/output"
        ((i == 0)) || out="$out/ansible-$minor"
        if [[ -d tests/output ]]; then
            mkdir -p "$out"
            cp -a tests/output/. "$out/" 2>/dev/null || true
        fi
        echo "ansible-core $minor: sanity ${sanity_s} s, units ${units_s} s, rc=$leg_rc" >"$WORK/leg-$minor"
        exit "$leg_rc"
    ) || rc=1
    summary+=("$(cat "$WORK/leg-$minor" 2>/dev/null || echo "ansible-core $minor: failed before its tests ran")")
done
if ((${#summary[@]} == 0)); then
    echo "sanity: no ansible-core version matches BATON_ANSIBLE_VERSIONS=$wanted: failing" >&2
    exit 1
fi
for line in "${summary[@]}"; do log "$line"; done
exit "$rc"
