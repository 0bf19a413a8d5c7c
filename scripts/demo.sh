#!/usr/bin/env bash
# The main job on the embedded default: boot a throwaway lab host, deploy the demo app twice
# (the second deploy rotates to the other slot), show what happened, tear the host down.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
lab=demo
trap 'python3 tests/lab/baton_lab.py down "$lab"' EXIT
python3 tests/lab/baton_lab.py down "$lab"   # a previous demo killed mid-run
python3 tests/lab/baton_lab.py up "$lab" demo-h1 >/dev/null
inventory=/var/tmp/baton-lab/$lab/inventory.yml
address=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["hosts"]["demo-h1"])' \
    /var/tmp/baton-lab/$lab/hosts.json)

mkdir -p .cache/collections/ansible_collections/baton
ln -sfn "$PWD" .cache/collections/ansible_collections/baton/deploy
export ANSIBLE_COLLECTIONS_PATH="$PWD/.cache/collections" ANSIBLE_PIPELINING=1 \
    ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_DISPLAY_SKIPPED_HOSTS=False
vars=(-e baton_app=demo -e "baton_source=$PWD/tests/apps/demo"
      -e '{"baton_env": {"WARMUP_SECONDS": "3", "DRAIN_SECONDS": "0.5"}}')

for release in v1 v2; do
    echo "=== deploy $release to demo-h1 ($address)"
    start=$SECONDS
    ansible-playbook -i "$inventory" playbooks/deploy.yml "${vars[@]}" -e "baton_release=$release" \
        | grep -E '"msg"|PLAY RECAP|demo-h1 +:' | sed 's/^ *//'
    echo "    playbook wall time: $((SECONDS - start)) s"
    echo "=== through the proxy: $(curl -s -D - -o /dev/null "http://$address/" \
        | grep -iE '^(HTTP|X-Release|X-Slot)' | tr -d '\r' | paste -sd' ')"
done
echo "=== status"
ansible-playbook -i "$inventory" playbooks/status.yml | sed -n '/"msg"/,/^}/p'
