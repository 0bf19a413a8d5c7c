# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Several apps with domain names on one host (nginx + systemd, Caddy + supervisor): each name
reaches its app, each app has its own files, and deploying, rolling back, breaking the site of or
putting one app into maintenance never touches the others, under GET load and POST streams on
every site at once."""
from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "tests" / "integration"))
from long_clients import LongClient  # noqa: E402
from molecule_helpers import address, gate_slot, run_playbook, site_loads  # noqa: E402

VARS = Path(__file__).resolve().parents[1] / "vars"
APPS = {"shop": ["shop.example", "www.shop.example"], "blog": ["blog.example"], "demo": ["_"]}
PORTS = {"demo": (8001, 8002), "shop": (9101, 9102), "blog": (9201, 9202)}


def proxy(host) -> str:
    return host.ansible.get_variables()["baton_proxy"]


def app_vars(app: str) -> list[str]:
    return [] if app == "demo" else ["-e", f"@{VARS / (app + '.yml')}"]


def answer(host, vhost: str, path: str = "/") -> tuple[int, dict]:
    """(status, headers) of a request from outside the host, to the proxy, with this Host header."""
    req = urllib.request.Request(f"http://{address(host)}{path}", headers={"Host": vhost})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


def fetch(host, vhost: str, path: str) -> tuple[int, dict, str]:
    """(status, headers, body) of a GET from outside the host, to the proxy, with this Host header."""
    req = urllib.request.Request(f"http://{address(host)}{path}", headers={"Host": vhost})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read().decode().strip()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode().strip()


def on_host(host, vhost: str) -> str:
    """Response headers of a request made on the host itself, through the proxy."""
    return host.check_output(f"curl -s -D - -o /dev/null -H 'Host: {vhost}' http://127.0.0.1/")


def release(host, app: str) -> str:
    state = json.loads(host.file(f"/var/lib/baton/{app}/state.json").content_string)
    return state["slots"][str(state["active_slot"])]["release"]


def slot_stats(host, app: str) -> dict:
    """The demo app's own counters (/stats) on the app's live slot, asked on the host."""
    state = json.loads(host.file(f"/var/lib/baton/{app}/state.json").content_string)
    port = PORTS[app][state["active_slot"] - 1]
    return json.loads(host.check_output(f"curl -s -m 5 http://127.0.0.1:{port}/stats"))


def test_each_name_reaches_its_app(host):
    for vhost, app in [("shop.example", "shop"), ("www.shop.example", "shop"), ("blog.example", "blog"),
                       ("unknown.example", "demo"), (address(host), "demo")]:
        status, headers = answer(host, vhost)
        assert status == 200 and headers["X-Release"] == release(host, app), (vhost, headers)


def test_each_app_has_its_own_site_gate_claim_and_access_log(host):
    site, log = {
        "nginx": ("/etc/nginx/sites-enabled/baton-{}.conf", "/var/log/nginx/baton-{}.access.log"),
        "caddy": ("/etc/caddy/baton/{}.caddyfile", "/var/log/caddy/baton-{}.access.log"),
    }[proxy(host)]
    for app, names in APPS.items():
        claim = json.loads(host.file(f"/var/lib/baton/{app}/claims.json").content_string)
        assert claim == {"app": app, "proxy": proxy(host), "proxy_port": 80, "names": sorted(names),
                         "slot_ports": list(PORTS[app])}
        content = host.file(site.format(app)).content_string
        assert all(name in content for name in names if name != "_"), content
        assert f"/etc/{proxy(host)}/baton/{app}.gate" in content and all(f"127.0.0.1:{p}" in content for p in PORTS[app])
        active = json.loads(host.file(f"/var/lib/baton/{app}/state.json").content_string)["active_slot"]
        assert gate_slot(host, proxy(host), app) == active
        assert host.file(log.format(app)).size > 0, f"{app}: no access log"
    if proxy(host) == "caddy":
        # One top-level configuration carries every app's site.
        live = host.check_output("curl -s --unix-socket /run/caddy-admin/admin.sock -H 'Host: ' http://localhost/config/apps/http/servers")
        assert all(name in live for names in APPS.values() for name in names if name != "_")
    else:
        assert host.run("nginx -t").rc == 0


def test_upstream_header_is_for_the_host_itself_only(host):
    for app, names in APPS.items():
        vhost = "localhost" if names == ["_"] else names[0]
        assert "X-Baton-Upstream: 127.0.0.1:" in on_host(host, vhost), app
        assert "X-Baton-Upstream" not in answer(host, vhost)[1], app


# A flip is a gate file (baton.deploy.proxy_gate), not a configuration load or reload: no proxy
# closes a client connection at a deploy or a rollback, so a keep-alive client that never resends a
# POST loses none, on either proxy and for every app on the host. (Before the gate, Caddy's /load
# and nginx's reload each lost some: docs/faults.md, "Writes and configuration changes".)


def assert_all_served(host, results: dict) -> None:
    for label, result in results.items():
        assert result["requests"] > 100 and result["posts"] > 20, (label, result)
        gets = result["non_2xx"] - result["posts_lost"]
        assert gets == 0, f"{label}: {result['failures']} {result}"
        assert result["posts_lost"] == 0, f"{label}: {result['failures']} {result}"


def test_static_files_come_from_the_live_release(host):
    """shop's /assets are served by the proxy from the live slot's release (baton_proxy_static);
    the build wrote the release id into public/assets/release.txt."""
    status, headers, body = fetch(host, "shop.example", "/assets/release.txt")
    assert status == 200 and body == release(host, "shop"), (status, body)
    assert "X-Release" not in headers  # the proxy answered, not the app
    status, headers, _body = fetch(host, "shop.example", "/assets/missing.css")
    assert status == 404 and "X-Release" not in headers
    # Other apps have no static paths: the same URL reaches blog's app.
    assert fetch(host, "blog.example", "/assets/release.txt")[1]["X-Release"].startswith("blog-")


def test_deploys_and_rollbacks_of_one_app_leave_the_others_serving(host):
    sites = {"shop": "shop.example", "blog": "blog.example", "catch-all": address(host)}
    with site_loads(host, sites) as results:
        for app, args in [("shop", ["-e", "baton_release=shop-2"]), ("blog", ["-e", "baton_release=blog-2"]),
                          ("demo", ["-e", "baton_release=demo-2"])]:
            r = run_playbook(host, "deploy.yml", *app_vars(app), *args)
            assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
            # shop's static files switched with its flip (and stay put at the others').
            assert fetch(host, "shop.example", "/assets/release.txt")[2] == release(host, "shop")
        r = run_playbook(host, "rollback.yml", *app_vars("shop"))
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
        assert fetch(host, "shop.example", "/assets/release.txt")[2] == "shop-1"
    print(json.dumps(results, indent=1))
    assert_all_served(host, results)
    assert [release(host, app) for app in ("shop", "blog", "demo")] == ["shop-1", "blog-2", "demo-2"]
    assert answer(host, "www.shop.example")[1]["X-Release"] == "shop-1"


def test_a_rejected_site_of_one_app_leaves_every_app_serving(host):
    bad = {"nginx": "baton_nginx_location_extra=no_such_directive on;",
           "caddy": "baton_caddy_site_extra=no_such_directive"}[proxy(host)]
    site = {"nginx": "/etc/nginx/sites-enabled/baton-shop.conf", "caddy": "/etc/caddy/baton/shop.caddyfile"}[proxy(host)]
    before = host.file(site).content_string
    with site_loads(host, {"shop": "shop.example", "blog": "blog.example"}) as results:
        r = run_playbook(host, "deploy.yml", *app_vars("shop"), "-e", "baton_release=shop-3", "-e", bad,
                         "-e", "baton_setup=always")
    assert r.returncode != 0
    assert "rejected the app's site" in r.stdout + r.stderr
    assert host.file(site).content_string == before
    assert_all_served(host, results)
    assert answer(host, "blog.example")[1]["X-Release"] == "blog-2"


def test_maintenance_of_one_app_leaves_the_others(host):
    try:
        r = run_playbook(host, "maintenance.yml", *app_vars("shop"), "-e", "baton_maintenance=true")
        assert r.returncode == 0, r.stdout[-3000:]
        status, headers = answer(host, "shop.example")
        assert status == 503 and "Retry-After" in headers
        assert fetch(host, "shop.example", "/assets/release.txt")[0] == 503  # static files too
        assert answer(host, "blog.example")[0] == 200
        assert answer(host, "unknown.example")[0] == 200
        assert " 200 " in on_host(host, "shop.example").splitlines()[0]  # the host itself still reaches it
    finally:
        r = run_playbook(host, "maintenance.yml", *app_vars("shop"), "-e", "baton_maintenance=false")
    assert r.returncode == 0 and answer(host, "shop.example")[0] == 200


def test_an_app_cannot_claim_what_another_app_holds(host):
    for extra, message in [
        (["-e", "baton_server_name=blog.example", "-e", "baton_slot1_port=9301", "-e", "baton_slot2_port=9302"],
         "copycat cannot be set up on this host: blog already serves blog.example on port 80"),
        (["-e", "baton_server_name=copycat.example", "-e", "baton_slot1_port=9101", "-e", "baton_slot2_port=9302"],
         "copycat cannot be set up on this host: shop already uses port(s) 9101"),
        (["-e", "baton_server_name=_", "-e", "baton_slot1_port=9301", "-e", "baton_slot2_port=9302"],
         "demo already serves the catch-all site (_) on port 80"),
    ]:
        r = run_playbook(host, "deploy.yml", "-e", "baton_app=copycat", "-e", "baton_release=c-1", *extra)
        assert r.returncode != 0 and message in r.stdout + r.stderr, r.stdout[-3000:]
        assert not host.file("/var/lib/baton/copycat/claims.json").exists
        assert not host.file("/srv/copycat").exists
    assert answer(host, "blog.example")[0] == 200 and answer(host, "shop.example")[0] == 200


def test_long_connections_stay_until_the_drain_bound_then_reconnect_to_the_new_release(host):
    """WebSocket and SSE clients of shop, open across a deploy of shop (drain bound 4 s) and of blog."""
    # A flip is a gate file on both proxies: blog's deploy and shop's flip leave them open (a Caddy
    # /load, as before the gate, ends every proxied WebSocket and stream of every site).
    clients = [LongClient(address(host), "shop.example", kind) for kind in ("ws", "ws", "sse")]
    for client in clients:
        client.start()
    time.sleep(1.5)
    before = release(host, "shop")
    # What shop's live slot itself counts as open long connections before the deploys: the clients'.
    opened_before = slot_stats(host, "shop")
    with site_loads(host, {"shop": "shop.example", "blog": "blog.example"}) as results:
        r = run_playbook(host, "deploy.yml", *app_vars("blog"), "-e", "baton_release=blog-4")
        assert r.returncode == 0, r.stdout[-3000:]
        r = run_playbook(host, "deploy.yml", *app_vars("shop"), "-e", "baton_release=shop-4",
                         "-e", "baton_drain_timeout=4")
        assert r.returncode == 0, r.stdout[-3000:]
        time.sleep(1.5)
    for client in clients:
        client.stop()
    print(json.dumps([c.sessions for c in clients]), json.dumps(results))
    assert_all_served(host, results)
    summary = [ln for ln in r.stdout.splitlines() if "active on slot" in ln][-1]
    seen = f"shop's slot before the deploys: {opened_before}; clients: {clients}; rotation: {summary}"
    for client in clients:
        # One connection to the old release, ended by the old slot as it stopped (not by blog's
        # deploy, nor by shop's flip), then at once one to the new release, open until the end:
        # reconnected within 1 s, at the first attempt.
        assert len(client.opened()) == 2 and not client.failed_attempts(), seen
        [old, new] = client.opened()
        assert old[0] == before and old[3] in ("closed 1001", "end of stream"), seen
        assert new[0] == "shop-4" and new[3] == "stopped by the test", seen
        assert new[1] - old[2] < 1.0, seen
    # The rotation waited the drain bound for exactly these connections, then the old slot ended them.
    assert opened_before["long"] == 3, seen
    assert "3 long connection(s) still open at the drain bound (4 s) ended with the old slot" in summary, seen
