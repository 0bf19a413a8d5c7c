# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json

import pytest

from ansible_collections.baton.deploy.plugins.module_utils.app_claims import conflicts, make_claim, read_claims

SHOP = make_claim('shop', 'nginx', 80, ['Shop.example', 'www.shop.example'], [9102, 9101])


def blog(**changes):
    claim = make_claim('blog', 'nginx', 80, ['blog.example'], [9201, 9202])
    claim.update(changes)
    return claim


def test_make_claim_normalises_names_and_ports():
    assert SHOP == {'app': 'shop', 'proxy': 'nginx', 'proxy_port': 80,
                    'names': ['shop.example', 'www.shop.example'], 'slot_ports': [9101, 9102]}


def test_apps_with_their_own_names_and_ports_share_a_host():
    assert conflicts(SHOP, {'blog': blog()}) == []


def test_own_previous_claim_is_no_conflict():
    assert conflicts(SHOP, {'shop': make_claim('shop', 'caddy', 81, ['x.example'], [1, 2])}) == []


@pytest.mark.parametrize('other, message', [
    (blog(names=['blog.example', 'www.shop.example']), 'blog already serves www.shop.example on port 80'),
    (blog(slot_ports=[9101, 9202]), 'blog already uses port(s) 9101'),
    (blog(proxy_port=9102, names=['x.example']), 'blog already uses port(s) 9102'),
    (blog(slot_ports=[80, 9202]), 'blog runs a slot on the proxy port 80'),
    (blog(proxy='caddy'), 'blog runs behind caddy on this host, and a host runs one proxy: setting up nginx would stop it'),
])
def test_each_conflict_is_named(other, message):
    assert conflicts(SHOP, {'blog': other}) == [message]


def test_one_catch_all_per_proxy_port():
    catch_all = make_claim('shop', 'nginx', 80, ['_'], [9101, 9102])
    assert conflicts(catch_all, {'blog': blog(names=['_'])}) == [
        'blog already serves the catch-all site (_) on port 80']
    assert conflicts(catch_all, {'blog': blog(names=['_'], proxy_port=8080)}) == []


def test_same_name_on_another_proxy_port_is_allowed():
    assert conflicts(SHOP, {'blog': blog(names=['shop.example'], proxy_port=8080)}) == []


def test_read_claims(tmp_path):
    (tmp_path / 'blog').mkdir()
    (tmp_path / 'blog' / 'claims.json').write_text(json.dumps(blog()))
    (tmp_path / 'old').mkdir()  # an app set up before claims existed
    (tmp_path / 'bad').mkdir()
    (tmp_path / 'bad' / 'claims.json').write_text('{not json')
    claims, unreadable = read_claims(str(tmp_path))
    assert claims == {'blog': blog()}
    assert len(unreadable) == 1 and unreadable[0].startswith(str(tmp_path / 'bad' / 'claims.json'))


def test_read_claims_without_base_dir(tmp_path):
    assert read_claims(str(tmp_path / 'missing')) == ({}, [])


def test_an_app_without_a_proxy_shares_a_host_with_any_proxy():
    api = make_claim('api', 'none', 8080, [], [9301, 9302])
    assert conflicts(api, {'shop': SHOP}) == [] and conflicts(SHOP, {'api': api}) == []
    assert conflicts(api, {'blog': blog(proxy='caddy')}) == []


def test_the_port_of_an_app_without_a_proxy_is_its_alone():
    api = make_claim('api', 'none', 8080, [], [9301, 9302])
    assert conflicts(api, {'blog': blog(proxy_port=8080)}) == ['blog already listens on port 8080']
    other = make_claim('jobs', 'none', 8080, [], [9401, 9402])
    assert conflicts(other, {'api': api}) == ['api already listens on port 8080']
    assert conflicts(make_claim('jobs', 'none', 8080, [], [9401, 9302]), {'api': api}) == [
        'api already listens on port 8080', 'api already uses port(s) 9302']
