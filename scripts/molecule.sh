#!/usr/bin/env bash
# Run every molecule scenario under extensions/molecule/ (`molecule test -s <name>`), at most
# BATON_MOLECULE_JOBS (default 2) at a time: each scenario boots its own lab hosts on a bridge of
# its own, and most of a scenario's time is spent waiting (warm-ups, drains, SSH round trips).
# Each scenario's output goes to tests/output/molecule/<name>.log and is printed when it ends.
# Having no scenario at all is a failure; so is any failed scenario (all are run to the end).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
command -v molecule >/dev/null || { echo "molecule not found: run scripts/bootstrap.sh first" >&2; exit 1; }

# Roles and modules are used straight from this tree (molecule's own copy could be stale).
mkdir -p .cache/collections/ansible_collections/baton
ln -sfn "$PWD" .cache/collections/ansible_collections/baton/deploy
export ANSIBLE_COLLECTIONS_PATH="$PWD/.cache/collections"

shopt -s nullglob
configs=(extensions/molecule/*/molecule.yml)
if ((${#configs[@]} == 0)); then
    echo "molecule: no scenarios found (extensions/molecule/*/molecule.yml): failing" >&2
    exit 1
fi
# Once, before scenarios run side by side: the lab's rootfs, and the copy of the collection that
# molecule puts first on the collections path (the scenarios set prerun: false, so that they do
# not reinstall it over each other).
python3 tests/lab/baton_lab.py build >/dev/null
ansible-galaxy collection install --force -p "$HOME/.ansible/collections" . >/dev/null

jobs_max="${BATON_MOLECULE_JOBS:-2}"
logs=tests/output/molecule
mkdir -p "$logs"
declare -A pids=() started=()
failed=()

wait_one() {  # wait for the next scenario to end, print its log and result
    local done_pid="" rc=0 name
    wait -n -p done_pid "${pids[@]}" || rc=$?
    for name in "${!pids[@]}"; do
        [[ ${pids[$name]} == "$done_pid" ]] && break
    done
    echo "=== molecule test -s $name: log"
    cat "$logs/$name.log"
    if ((rc == 0)); then
        echo "=== molecule scenario $name passed ($((SECONDS - started[$name])) s)"
    else
        echo "=== molecule scenario $name FAILED (rc=$rc, $((SECONDS - started[$name])) s)"
        failed+=("$name")
    fi
    unset "pids[$name]"
}

for config in "${configs[@]}"; do
    name="$(basename "$(dirname "$config")")"
    while ((${#pids[@]} >= jobs_max)); do
        wait_one
    done
    echo "=== molecule test -s $name (started)"
    started[$name]=$SECONDS
    molecule test -s "$name" >"$logs/$name.log" 2>&1 &
    pids[$name]=$!
done
while ((${#pids[@]})); do
    wait_one
done

if ((${#failed[@]})); then
    echo "molecule: ${#failed[@]} of ${#configs[@]} scenario(s) failed: ${failed[*]}" >&2
    exit 1
fi
echo "molecule: ${#configs[@]} scenario(s) passed"
