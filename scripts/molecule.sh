#!/usr/bin/env bash
# Run every molecule scenario under extensions/molecule/ (`molecule test -s <name>`), at most
# BATON_MOLECULE_JOBS (default 2) at a time: each scenario boots its own lab hosts on a bridge of
# its own, and most of a scenario's time is spent waiting (warm-ups, drains, SSH round trips).
# BATON_MOLECULE_SCENARIOS (e.g. faults,default) runs only those; a name that is not a scenario fails.
# Each scenario's output goes to tests/output/molecule/<name>.log and is printed when it ends.
# Having no scenario at all is a failure; so is any failed scenario (all are run to the end).
# With BATON_STAGE_TIMES set (.ci/run sets it), each scenario appends "molecule/<name> <s> <rc>" to it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
command -v molecule >/dev/null || { echo "molecule not found: run scripts/bootstrap.sh first" >&2; exit 1; }

# Longest first, two at a time: the run lasts at least as long as its slowest scenario plus
# whatever started before it, so a long one must not start last, and the last two should end
# together. Seconds in one clean-clone `.ci/run` on the developers' 2-core machine, two at a time,
# 2026-12-01: faults 1141, combinations 995, sites 920, tls 789, default 775 (its two hosts one
# after the other; now side by side, one pytest-xdist worker per host), fleet 519. Order chosen to balance the two
# lanes: faults | combinations, then default, tls, sites, fleet as lanes free up.
# A scenario missing here starts after these (a warning says so): add it where its time puts it.
slowest_first=(faults combinations default tls sites fleet)

# Roles and modules are used straight from this tree (molecule's own copy could be stale).
mkdir -p .cache/collections/ansible_collections/baton
ln -sfn "$PWD" .cache/collections/ansible_collections/baton/deploy
export ANSIBLE_COLLECTIONS_PATH="$PWD/.cache/collections"

shopt -s nullglob
available=()
for config in extensions/molecule/*/molecule.yml; do
    available+=("$(basename "$(dirname "$config")")")
done
if ((${#available[@]} == 0)); then
    echo "molecule: no scenarios found (extensions/molecule/*/molecule.yml): failing" >&2
    exit 1
fi
wanted=("${available[@]}")
if [[ -n "${BATON_MOLECULE_SCENARIOS:-}" ]]; then
    read -r -a wanted <<<"${BATON_MOLECULE_SCENARIOS//,/ }"
    for name in "${wanted[@]}"; do
        if [[ ! -f extensions/molecule/$name/molecule.yml ]]; then
            echo "molecule: BATON_MOLECULE_SCENARIOS names '$name', which is not a scenario" \
                "(there are: ${available[*]}): failing" >&2
            exit 1
        fi
    done
fi
scenarios=()
for name in "${slowest_first[@]}"; do
    [[ " ${wanted[*]} " == *" $name "* ]] && scenarios+=("$name")
done
for name in "${wanted[@]}"; do
    if [[ " ${scenarios[*]} " != *" $name "* ]]; then
        echo "molecule: scenario $name is not in slowest_first (scripts/molecule.sh): it starts last" >&2
        scenarios+=("$name")
    fi
done
if ((${#scenarios[@]} == 0)); then
    echo "molecule: BATON_MOLECULE_SCENARIOS='${BATON_MOLECULE_SCENARIOS:-}' selects no scenario: failing" >&2
    exit 1
fi

# The version matrix: a scenario runs with CI's ansible-core (.venv, the oldest one supported)
# unless its directory has a file `ansible-core` naming another minor (e.g. 2.21); then it runs with
# that version's venv, .cache/venvs/ansible-<X.Y> (built by scripts/bootstrap.sh from
# requirements-ansible-<X.Y>.txt). The default scenario runs with the newest this way, so the
# oldest and the newest both deploy to real hosts without a scenario more.
declare -A scenario_path=()
for name in "${scenarios[@]}"; do
    scenario_path[$name]="$PATH"
    core_file="extensions/molecule/$name/ansible-core"
    [[ -f $core_file ]] || continue
    core_venv="$PWD/.cache/venvs/ansible-$(tr -d '[:space:]' <"$core_file")"
    if [[ ! -x "$core_venv/bin/molecule" ]]; then
        echo "molecule: scenario $name runs with ansible-core $(cat "$core_file") ($core_file)," \
            "but $core_venv/bin/molecule is missing: run scripts/bootstrap.sh first: failing" >&2
        exit 1
    fi
    scenario_path[$name]="$core_venv/bin:$PATH"
done

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
times=()

wait_one() {  # wait for the next scenario to end, print its log and result
    local done_pid="" rc=0 name seconds
    wait -n -p done_pid "${pids[@]}" || rc=$?
    for name in "${!pids[@]}"; do
        [[ ${pids[$name]} == "$done_pid" ]] && break
    done
    seconds=$((SECONDS - started[$name]))
    echo "=== molecule test -s $name: log"
    cat "$logs/$name.log"
    if ((rc == 0)); then
        echo "=== molecule scenario $name passed ($seconds s)"
        times+=("$name: $seconds s")
    else
        echo "=== molecule scenario $name FAILED (rc=$rc, $seconds s)"
        times+=("$name: $seconds s, FAILED (rc=$rc)")
        failed+=("$name")
    fi
    if [[ -n "${BATON_STAGE_TIMES:-}" ]]; then
        echo "molecule/$name $seconds $rc" >>"$BATON_STAGE_TIMES"
    fi
    unset "pids[$name]"
}

for name in "${scenarios[@]}"; do
    while ((${#pids[@]} >= jobs_max)); do
        wait_one
    done
    echo "=== molecule test -s $name (started, $("${scenario_path[$name]%%:*}/ansible" --version | sed -n 1p))"
    started[$name]=$SECONDS
    # The verifier's results as JUnit XML too: scripts/ci_failures.py reads why a test failed.
    rm -f "$logs/$name.junit.xml"
    PATH="${scenario_path[$name]}" PYTEST_ADDOPTS="${PYTEST_ADDOPTS:-} --junitxml=$PWD/$logs/$name.junit.xml" \
        molecule test -s "$name" >"$logs/$name.log" 2>&1 &
    pids[$name]=$!
done
while ((${#pids[@]})); do
    wait_one
done

echo "molecule: scenario times (in the order they ended, $jobs_max at a time, $SECONDS s in all):"
printf '  %s\n' "${times[@]}"
if ((${#failed[@]})); then
    echo "molecule: ${#failed[@]} of ${#scenarios[@]} scenario(s) failed: ${failed[*]}" >&2
    exit 1
fi
echo "molecule: ${#scenarios[@]} scenario(s) passed"
