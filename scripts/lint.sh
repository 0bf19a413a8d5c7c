#!/usr/bin/env bash
# Lint roles, playbooks and molecule scenarios with ansible-lint (config: .ansible-lint).
# Exits non-zero on any violation.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
export PATH="$REPO/.venv/bin:$PATH"
command -v ansible-lint >/dev/null || { echo "ansible-lint not found: run scripts/bootstrap.sh first" >&2; exit 1; }

# With `offline: true` ansible-lint does not install this collection, so baton.deploy.* modules and
# roles would not resolve. Expose the work tree as ansible_collections/baton/deploy instead.
COLLECTIONS="$REPO/.cache/lint-collections"
mkdir -p "$COLLECTIONS/ansible_collections/baton"
ln -sfn "$REPO" "$COLLECTIONS/ansible_collections/baton/deploy"
export ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS${ANSIBLE_COLLECTIONS_PATH:+:$ANSIBLE_COLLECTIONS_PATH}"
# ansible-lint puts the user's collections (~/.ansible/collections) before that path, and
# scripts/molecule.sh installs a copy of the collection there: a copy from another checkout or an
# earlier run would be linted against instead of this tree. An Ansible home of its own avoids it.
export ANSIBLE_HOME="$REPO/.cache/lint-ansible-home"

exec ansible-lint "$@"
