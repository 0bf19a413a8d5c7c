#!/bin/sh
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Boot a lab host (or use LAB_ADDR), copy the flip bench and the demo app onto it, run it there
# (arguments go to flip_bench.py), print the figures, tear the lab down.
#   tests/bench/caddy_flip/run_lab.sh --flips 60
#   LAB_ADDR=10.77.10.10 tests/bench/caddy_flip/run_lab.sh --mechanisms load,gate --flips 10
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
key=${BATON_LAB_KEY:-$HOME/.cache/baton-lab/id_ed25519}
lab=${LAB:-caddyflip-bench}
if [ -z "${LAB_ADDR:-}" ]; then
	python3 "$root/tests/lab/baton_lab.py" up "$lab" h1 >/dev/null
	trap 'python3 "$root/tests/lab/baton_lab.py" down "$lab" >/dev/null' EXIT INT TERM
	LAB_ADDR=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["hosts"]["h1"])' \
		"${BATON_LAB_STATE:-/var/tmp/baton-lab}/$lab/hosts.json")
fi
ssh_opts="-i $key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes"
# $ssh_opts splits on purpose; the command's arguments expand here, for the lab host
# shellcheck disable=SC2086,SC2029
ssh $ssh_opts "root@$LAB_ADDR" 'mkdir -p /opt/caddy_flip'
# shellcheck disable=SC2086
scp -q $ssh_opts "$here/flip_bench.py" "$here/post_app.py" "$root/tests/apps/demo/demo_app.py" "root@$LAB_ADDR:/opt/caddy_flip/"
# $ssh_opts splits on purpose; the command's arguments expand here, for the lab host
# shellcheck disable=SC2086,SC2029
ssh $ssh_opts "root@$LAB_ADDR" "caddy version && python3 /opt/caddy_flip/flip_bench.py $*"
