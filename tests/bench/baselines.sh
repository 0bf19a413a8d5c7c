# shellcheck shell=bash
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The two deploys Baton is compared against, written the way people write them without it.
# Plain shell on a lab host as root, no Baton role involved; tests/bench/bench.py runs it as
#   ssh HOST bash -s -- ACTION ARGS < tests/bench/baselines.sh
# with the demo app already copied to $DIR/demo_app.py.
#
#   setup naive|classic|reuseport WARMUP
#                                units (and the nginx site) for one baseline, release r0 running
#                                and ready
#   naive RELEASE                one instance behind nginx: systemctl restart
#   classic RELEASE              nginx upstream lists both ports (nginx defaults); restart the
#                                other instance, poll until it answers anything, stop the old
#                                one at once (no readiness gate, no drain)
#   reuseport RELEASE            no proxy: each instance also listens on port 8080 itself with
#                                SO_REUSEPORT once ready (REUSEPORT_PORT: two sockets, two accept
#                                queues); start the other instance, poll until its own port answers
#                                /readyz, then stop the old one (SIGTERM: it closes its socket,
#                                drains its connections and exits)
#
# After a deploy both scripts wait until the app is ready again. That routes nothing: it only
# makes each deploy start from a healthy app, as Baton's do.
set -euo pipefail

DIR=/opt/bench-baseline

write_env() { # slot release
    printf 'PORT=800%s\nBATON_SLOT=%s\nBATON_RELEASE=%s\n' "$1" "$1" "$2" >"$DIR/$1.env"
}

wait_ready() { # slot
    until curl -fsS -o /dev/null "http://127.0.0.1:800$1/readyz" 2>/dev/null; do sleep 0.1; done
}

setup() { # mode warmup
    local mode=$1 servers
    systemctl stop 'bench-app@*' nginx 2>/dev/null || true
    printf 'WARMUP_SECONDS=%s\nBIND=0.0.0.0\n' "$2" >"$DIR/common.env"
    cat >/etc/systemd/system/bench-app@.service <<EOF
[Unit]
Description=Benchmark baseline instance %i

[Service]
DynamicUser=yes
EnvironmentFile=$DIR/common.env
EnvironmentFile=$DIR/%i.env
ExecStart=/usr/bin/python3 $DIR/demo_app.py
EOF
    systemctl daemon-reload
    write_env 1 r0
    echo 1 >"$DIR/active"
    if [[ $mode == reuseport ]]; then
        echo REUSEPORT_PORT=8080 >>"$DIR/common.env"
        systemctl start bench-app@1
        wait_ready 1
        return
    fi
    servers='server 127.0.0.1:8001;'
    [[ $mode == classic ]] && servers+=' server 127.0.0.1:8002;'
    rm -f /etc/nginx/sites-enabled/*
    cat >/etc/nginx/sites-enabled/bench-baseline.conf <<EOF
upstream bench_baseline { $servers }
server {
    listen 80 default_server;
    location / { proxy_pass http://bench_baseline; }
}
EOF
    systemctl start bench-app@1 nginx
    wait_ready 1
}

naive() { # release
    write_env 1 "$1"
    systemctl restart bench-app@1
    wait_ready 1
}

classic() { # release
    local old new
    old=$(cat "$DIR/active")
    new=$((3 - old))
    write_env "$new" "$1"
    systemctl restart "bench-app@$new"
    # "Is it up?": any HTTP answer will do (curl without -f succeeds on a 503 too).
    until curl -sS -o /dev/null "http://127.0.0.1:800$new/" 2>/dev/null; do sleep 0.1; done
    systemctl stop "bench-app@$old"
    echo "$new" >"$DIR/active"
    wait_ready "$new"
}

reuseport() { # release
    local old new
    old=$(cat "$DIR/active")
    new=$((3 - old))
    write_env "$new" "$1"
    systemctl start "bench-app@$new"
    wait_ready "$new"
    systemctl stop "bench-app@$old"
    echo "$new" >"$DIR/active"
}

"$@"
