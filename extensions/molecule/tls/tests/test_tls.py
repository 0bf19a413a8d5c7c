# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTPS on both proxies with certificates from the lab's ACME server (pebble): the served chain
verifies against pebble's root for every name, HTTP/2, TLS 1.2+, IPv4 and IPv6, HTTP redirects
to HTTPS except the ACME challenge path, and deploys and certificate renewals under HTTPS load
(GET + never-retried POST streams on both sites) lose nothing; Caddy's flips never re-issue."""
from __future__ import annotations

import http.client
import json
import os
import re
import socket
import ssl
import sys
import time
from pathlib import Path

import pytest
import testinfra

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "tests" / "integration"))
from load import Load  # noqa: E402
from long_clients import LongClient  # noqa: E402
from molecule_helpers import address, run_playbook  # noqa: E402
from zero_drop import ConstantLoad  # noqa: E402

VARS = Path(__file__).resolve().parents[1] / "vars"
SITES = {"shop": ["shop", "www.shop"], "blog": ["blog"]}
OUT = Path(__file__).resolve().parents[4] / "tests" / "output" / "zero-drop"


@pytest.fixture()
def proxy_host(host):
    if host.backend.get_hostname() == "tls-acme":
        pytest.skip("the ACME server's host")
    return host


def acme():
    return testinfra.get_host("ansible://tls-acme", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])


def names(host, app: str) -> list[str]:
    domain = host.ansible.get_variables()["lab_domain"]
    return [f"{label}.{domain}" for label in SITES[app]]


@pytest.fixture(scope="module")
def pebble_root(tmp_path_factory):
    """PEM of the root pebble signs certificates with (management API /roots/0), fetched on tls-acme."""
    pem = acme().check_output("curl -sS --cacert /etc/pebble/ca.pem https://acme:15000/roots/0 "
                              "--resolve acme:15000:127.0.0.1")
    assert pem.startswith("-----BEGIN CERTIFICATE-----")
    path = tmp_path_factory.mktemp("pebble") / "root.pem"
    path.write_text(pem + "\n")
    return str(path)


def tls_context(root: str, alpn: list[str] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=root)
    if alpn:
        context.set_alpn_protocols(alpn)
    return context


def handshake(addr: str, name: str, root: str, port: int = 443) -> tuple[dict, str, str]:
    """(peer certificate, ALPN protocol, TLS version) of a verified handshake for ``name``."""
    with socket.create_connection((addr, port), timeout=5) as sock:
        with tls_context(root, ["h2", "http/1.1"]).wrap_socket(sock, server_hostname=name) as tls:
            return tls.getpeercert(), tls.selected_alpn_protocol(), tls.version()


def serial(addr: str, name: str, root: str) -> str:
    return handshake(addr, name, root)[0]["serialNumber"]


def https_get(addr: str, name: str, root: str, path: str = "/") -> tuple[int, dict, str]:
    """GET https://name/path connecting to addr (SNI and Host = name), verified against root."""
    conn = http.client.HTTPConnection(name, 443, timeout=5)
    conn.sock = tls_context(root).wrap_socket(socket.create_connection((addr, 443), timeout=5),
                                              server_hostname=name)
    conn.request("GET", path, headers={"Host": name})
    resp = conn.getresponse()
    body = resp.read().decode()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body


def http_get(addr: str, name: str, path: str = "/") -> tuple[int, dict]:
    conn = http.client.HTTPConnection(addr, 80, timeout=5)
    conn.request("GET", path, headers={"Host": name})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}


class TlsLoad(ConstantLoad):
    """ConstantLoad over HTTPS: connects to the host's address, SNI and Host = the site's name."""

    def __init__(self, addr: str, vhost: str, root: str, rate: int = 60) -> None:
        self.load = Load(addr, 443, [], rate=rate, workers=max(1, rate // 10), slow_workers=1, slow_ms=1000,
                         vhost=vhost, post_workers=2, post_rate=10.0, tls=ssl.create_default_context(cafile=root))


def proxy_mark(host) -> str:
    """Where the proxy's error log is now: the host's epoch seconds (Caddy's journal), or the line
    count of nginx's error.log."""
    if host.ansible.get_variables()["baton_proxy"] == "caddy":
        return host.check_output("date +%s")
    return host.check_output("wc -l < /var/log/nginx/error.log")


def proxy_errors(host, mark: str) -> list[str]:
    """The proxy's last error lines after ``mark`` (proxy_mark): which upstream failed, and how."""
    if host.ansible.get_variables()["baton_proxy"] == "caddy":
        command = (f"journalctl -u caddy --since @{mark} --no-pager -o cat | grep -v -e 'stapling OCSP' -e 'Alt-Svc' "
                   "| grep -E '\"level\":\"error\"|upstream'")
    else:
        command = f"tail -n +{int(mark) + 1} /var/log/nginx/error.log"
    return host.run(f"{command} | tail -n 6").stdout.splitlines()


def loaded(host, root: str, step):
    """Run step() under HTTPS load on both TLS sites of the host; return the load results."""
    loads = {app: TlsLoad(address(host), names(host, app)[0], root) for app in SITES}
    mark = proxy_mark(host)
    for load in loads.values():
        load.__enter__()
    time.sleep(0.5)
    try:
        step()
        time.sleep(0.5)
    finally:
        for load in loads.values():
            load.__exit__(None, None, None)
    results = {app: load.result() for app, load in loads.items()}
    if any(result["non_2xx"] for result in results.values()):
        # Who answered what: the proxy's own error lines of the load's window go with the results.
        proxy_log = proxy_errors(host, mark)
        for result in results.values():
            result["proxy_log"] = proxy_log
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "tls-loads.jsonl", "a") as handle:
        handle.write(json.dumps({"host": host.backend.get_hostname(), "step": step.__name__,
                                 "results": results}) + "\n")
    print(json.dumps(results))
    return results


def assert_nothing_lost(results: dict, posts_safe: bool = True) -> None:
    """0 non-2xx GETs; 0 lost POSTs unless the step reloads the proxy (posts_safe=False), whose
    closing of idle keep-alive connections can race a POST (docs/faults.md): then they are reported."""
    for app, result in results.items():
        assert result["requests"] > 100 and result["posts"] > 10, (app, result)
        assert result["non_2xx"] - result["posts_lost"] == 0, \
            f"{app}: {result['failures']} {result.get('proxy_log')} {result}"
        if posts_safe:
            assert result["posts_lost"] == 0, (app, result)
        else:
            print(f"{app}: {result['posts_lost']} of {result['posts']} POSTs lost at the reload")


def issued() -> int:
    """Certificates pebble has issued so far (its log)."""
    return int(acme().check_output("journalctl -u pebble --no-pager -o cat | grep -c 'Issued certificate' || true"))


# --- Certificates ---------------------------------------------------------------------------


def test_every_name_serves_a_certificate_from_pebble(proxy_host, pebble_root):
    for app in SITES:
        for name in names(proxy_host, app):
            cert, alpn, version = handshake(address(proxy_host), name, pebble_root)
            sans = [value for kind, value in cert["subjectAltName"] if kind == "DNS"]
            assert name in sans, (name, sans)
            assert alpn == "h2", name
            assert version in ("TLSv1.2", "TLSv1.3"), name
            status, headers, body = https_get(address(proxy_host), name, pebble_root)
            assert status == 200, (name, status, body)
            assert headers.get("x-release", "").startswith(app + "-"), (name, headers)
            # The slot ports are for the host itself only.
            assert "x-baton-upstream" not in headers


def test_ipv6_on_the_host(proxy_host, pebble_root):
    """HTTPS with HTTP/2 on [::1] with SNI, verified against pebble's root (curl on the host)."""
    name = names(proxy_host, "blog")[0]
    proxy_host.run_expect([0], "printf '%s' '" + Path(pebble_root).read_text() + "' > /tmp/pebble-root.pem")
    out = proxy_host.check_output(f"curl -sS -6 --http2 -o /dev/null -w '%{{http_code}} %{{http_version}}' "
                                  f"--cacert /tmp/pebble-root.pem --resolve {name}:443:[::1] https://{name}/")
    assert out == "200 2"


def test_http_redirects_to_https(proxy_host):
    for app in SITES:
        for name in names(proxy_host, app):
            status, headers = http_get(address(proxy_host), name, "/path?q=1")
            assert status in (301, 308), (name, status)
            assert headers["location"] == f"https://{name}/path?q=1"
    # The catch-all app stays on plain HTTP.
    status, headers = http_get(address(proxy_host), "other.example")
    assert status == 200 and headers["x-release"].startswith("demo-")


def test_acme_challenge_path_is_not_redirected_on_nginx(proxy_host):
    if proxy_host.ansible.get_variables()["baton_proxy"] != "nginx":
        pytest.skip("Caddy answers its own challenges (proved by the issuance)")
    token = "baton-test-token"
    proxy_host.run_expect([0], "mkdir -p /var/lib/baton/acme-challenge/.well-known/acme-challenge && "
                               f"echo proof > /var/lib/baton/acme-challenge/.well-known/acme-challenge/{token}")
    for app in SITES:
        status, _headers = http_get(address(proxy_host), names(proxy_host, app)[0],
                                    f"/.well-known/acme-challenge/{token}")
        assert status == 200


def test_hsts_is_opt_in(proxy_host, pebble_root):
    _status, headers, _body = https_get(address(proxy_host), names(proxy_host, "shop")[0], pebble_root)
    assert "strict-transport-security" not in headers


# --- Under load ------------------------------------------------------------------------------


def run_baton(host, playbook: str, app: str, *extra: str) -> str:
    """Run one of the collection's playbooks for ``app`` (vars/<app>.yml) on this host; its output."""
    r = run_playbook(host, playbook, "-e", f"@{VARS / (app + '.yml')}", *extra)
    assert r.returncode == 0, r.stdout[-3000:]
    return r.stdout


def test_deploy_under_https_load(proxy_host, pebble_root):
    before = issued()

    def deploy_shop():
        out = run_baton(proxy_host, "deploy.yml", "shop", "-e", "baton_release=shop-2")
        assert "served through the proxy" in out, out[-2000:]

    # Both sites loaded over HTTPS while shop deploys: shop's flips, and blog next to them.
    results = loaded(proxy_host, pebble_root, deploy_shop)
    assert_nothing_lost(results)
    _status, headers, _body = https_get(address(proxy_host), names(proxy_host, "shop")[0], pebble_root)
    assert headers["x-release"] == "shop-2"
    # The deploy flipped the gate (no configuration load): no new certificate was obtained.
    assert issued() == before


def test_each_app_deploys_and_rolls_back_while_the_other_is_loaded(proxy_host, pebble_root):
    """Over HTTPS, with a WebSocket (wss) and an SSE client open on both sites: blog deploys,
    shop rolls back, blog rolls back, under GET and POST load on both. Long connections end only
    at their app's own drain bound, and reconnect at once to the new release."""
    context = tls_context(pebble_root)
    clients = {app: [LongClient(address(proxy_host), names(proxy_host, app)[0], kind, port=443, tls=context)
                     for kind in ("ws", "sse")] for app in SITES}
    for client in [c for group in clients.values() for c in group]:
        client.start()
    time.sleep(1.5)
    before = {app: https_get(address(proxy_host), names(proxy_host, app)[0], pebble_root)[1]["x-release"]
              for app in SITES}
    summaries = []

    def deploy_and_roll_back():
        for playbook, app, extra in [("deploy.yml", "blog", ["-e", "baton_release=blog-2"]),
                                     ("rollback.yml", "shop", []), ("rollback.yml", "blog", [])]:
            out = run_baton(proxy_host, playbook, app, "-e", "baton_drain_timeout=4", *extra)
            summaries.append([ln for ln in out.splitlines() if "active on slot" in ln][-1])

    results = loaded(proxy_host, pebble_root, deploy_and_roll_back)
    for client in [c for group in clients.values() for c in group]:
        client.stop()
    print(json.dumps(summaries), json.dumps({app: [c.sessions for c in group] for app, group in clients.items()}))
    assert_nothing_lost(results)
    after = {app: https_get(address(proxy_host), names(proxy_host, app)[0], pebble_root)[1]["x-release"]
             for app in SITES}
    assert before == {"shop": "shop-2", "blog": "blog-1"} and after == {"shop": "shop-1", "blog": "blog-1"}
    for app, group in clients.items():
        rotations = 1 if app == "shop" else 2  # shop rolls back once; blog deploys, then rolls back
        for client in group:
            # Each rotation of the app ends its connection as the old slot stops (another app's
            # rotation never does), and the client reconnects at once to the release now live: its
            # next session opens within 1 s, at its first attempt (a failed attempt was the test
            # client's own TLS threading, fixed in long_clients.py: docs/sites.md, "Long connections").
            opened = client.opened()
            assert len(opened) == rotations + 1, (app, client)
            *ended, last = opened
            assert all(s[3] in ("closed 1001", "end of stream") for s in ended), (app, client)
            assert last[0] == after[app] and last[3] == "stopped by the test", (app, client)
            assert all(b[1] - a[2] < 1.0 for a, b in zip(opened, opened[1:])), client
            assert not client.failed_attempts(), client


def test_maintenance_over_https_of_one_app_leaves_the_other(proxy_host, pebble_root):
    shop, blog = names(proxy_host, "shop")[0], names(proxy_host, "blog")[0]
    try:
        run_baton(proxy_host, "maintenance.yml", "shop", "-e", "baton_maintenance=true")
        status, headers, _body = https_get(address(proxy_host), shop, pebble_root)
        assert status == 503 and "retry-after" in headers, (status, headers)
        assert https_get(address(proxy_host), blog, pebble_root)[0] == 200
        # The host itself still reaches shop (an operator's check), over HTTPS with SNI.
        assert proxy_host.check_output(f"curl -sk -o /dev/null -w '%{{http_code}}' --resolve {shop}:443:127.0.0.1 "
                                       f"https://{shop}/") == "200"
    finally:
        run_baton(proxy_host, "maintenance.yml", "shop", "-e", "baton_maintenance=false")
    assert https_get(address(proxy_host), shop, pebble_root)[0] == 200


def caddy_api(host, method: str, path: str, body: str | None = None) -> str:
    """One request to Caddy's admin API, on its unix socket (only root and caddy reach it)."""
    data = f" -H 'Content-Type: application/json' -d '{body}'" if body is not None else ""
    return host.check_output(f"curl -sS --fail-with-body --unix-socket /run/caddy-admin/admin.sock "
                             f"-H 'Host: ' -X {method}{data} http://localhost{path}")


def test_renewal_under_https_load(proxy_host, pebble_root):
    """A forced renewal of shop's certificate under HTTPS load: GETs 0 non-2xx, the new
    certificate served at once, nothing else issued. nginx: `certbot renew --force-renewal`, whose
    deploy hook validates and reloads nginx. Caddy renews in its own process (pebble's certificates
    last 5 years): the test makes shop's names due by setting their policy's renewal window to the
    whole lifetime through the admin API, and takes it back once the new certificates are served.
    Caddy merges sites with the same ACME settings into one policy, so blog's name renews with them."""
    proxy = proxy_host.ansible.get_variables()["baton_proxy"]
    renewed = names(proxy_host, "shop")
    if proxy == "caddy":
        policies = json.loads(caddy_api(proxy_host, "GET", "/config/apps/tls/automation/policies"))
        index = next(i for i, policy in enumerate(policies) if renewed[0] in policy.get("subjects", []))
        assert set(renewed) <= set(policies[index]["subjects"]), policies[index]
        renewed = policies[index]["subjects"]
    old = {name: serial(address(proxy_host), name, pebble_root) for name in renewed}
    before = issued()
    timings = {}

    def force_renewal():
        start = time.monotonic()
        if proxy == "nginx":
            proxy_host.run_expect([0], "REQUESTS_CA_BUNDLE=/etc/baton-lab/acme-ca.pem certbot renew "
                                       "--force-renewal --cert-name baton-shop --no-random-sleep-on-renew")
        else:
            ratio = f"/config/apps/tls/automation/policies/{index}/renewal_window_ratio"
            caddy_api(proxy_host, "POST", ratio, "1")
            try:
                deadline = time.monotonic() + 120
                while any(serial(address(proxy_host), name, pebble_root) == old[name] for name in renewed):
                    assert time.monotonic() < deadline, "Caddy did not renew within 120 s"
                    time.sleep(0.5)
            finally:
                caddy_api(proxy_host, "DELETE", ratio)
        timings["renewal_s"] = round(time.monotonic() - start, 2)

    results = loaded(proxy_host, pebble_root, force_renewal)
    print("renewal", proxy, timings)
    # certbot's deploy hook reloads nginx; Caddy's two configuration changes (the window, and back)
    # are loads: GETs 0 non-2xx, POSTs reported (a load closes idle keep-alive connections).
    assert_nothing_lost(results, posts_safe=False)
    # One certificate per renewal: certbot's covers both names, Caddy has one per name.
    assert issued() == before + (1 if proxy == "nginx" else len(renewed))
    # The new certificates are served (nginx: reloaded by the hook; Caddy: swapped in memory).
    assert all(serial(address(proxy_host), name, pebble_root) != old[name] for name in renewed)
    if proxy == "nginx":
        journal = proxy_host.check_output("journalctl -u nginx --no-pager -o cat")
        assert "Reloaded" in journal or "Reloading" in journal
    else:
        # The window is back to Caddy's default: nothing else is due.
        policy = json.loads(caddy_api(proxy_host, "GET", f"/config/apps/tls/automation/policies/{index}"))
        assert "renewal_window_ratio" not in policy, policy


def test_certbot_timer_and_hook(proxy_host):
    if proxy_host.ansible.get_variables()["baton_proxy"] != "nginx":
        pytest.skip("nginx only")
    assert proxy_host.service("certbot.timer").is_enabled
    hook = proxy_host.file("/etc/letsencrypt/renewal-hooks/deploy/baton-nginx-reload")
    assert hook.mode == 0o755 and re.search(r"nginx -t -q\nsystemctl reload nginx", hook.content_string)
    assert "REQUESTS_CA_BUNDLE=/etc/baton-lab/acme-ca.pem" in proxy_host.file(
        "/etc/systemd/system/certbot.service.d/baton-acme-ca.conf").content_string
