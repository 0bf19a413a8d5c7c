#!/usr/bin/env bash
# Run every molecule scenario under extensions/molecule/ (`molecule test -s <name>`), one after the
# other, stopping at the first failure. Having no scenario at all is a failure too.
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

for config in "${configs[@]}"; do
    scenario="$(basename "$(dirname "$config")")"
    echo "=== molecule test -s $scenario"
    start=$SECONDS
    molecule test -s "$scenario"
    echo "=== molecule scenario $scenario passed ($((SECONDS - start)) s)"
done
echo "molecule: ${#configs[@]} scenario(s) passed"
