# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What each app on a host claims, so that several apps can share the host and its proxy.

Each app records its claim in ``/var/lib/baton/<app>/claims.json`` when its host is set up::

    {"app": "shop", "proxy": "nginx", "proxy_port": 80,
     "names": ["shop.example", "www.shop.example"], "slot_ports": [9101, 9102]}

Before an app is set up, its claim is compared with every other app's: a name (``_`` being the
catch-all site) is served by one app per proxy port, a slot port belongs to one app and is no
app's proxy port, and a host runs one proxy (setting up the other would stop it). An app without a
proxy (``baton_proxy: none``) claims its shared socket's port as ``proxy_port``, for itself alone, and
does not care which proxy the other apps run. Everything here
but :func:`read_claims` is pure.
"""

from __future__ import annotations

import json
import os

from ansible_collections.baton.deploy.plugins.module_utils.deploy_state import DEFAULT_BASE_DIR

CLAIMS_FILE_NAME = 'claims.json'
CATCH_ALL = '_'
NO_PROXY = 'none'  # baton_proxy none: the app's slots share a socket on its own port (``proxy_port``)


def make_claim(app, proxy, proxy_port, names, slot_ports):
    """The claim as it is written to disk: names lowercased, sorted and unique; ports as ints."""
    return {
        'app': app,
        'proxy': proxy,
        'proxy_port': int(proxy_port),
        'names': sorted({name.lower() for name in names}),
        'slot_ports': sorted(int(port) for port in slot_ports),
    }


def _names(names):
    return ', '.join('the catch-all site (_)' if name == CATCH_ALL else name for name in names)


def _ports(ports):
    return ', '.join(str(port) for port in sorted(ports))


def conflicts(claim, others):
    """Messages, one per conflict between ``claim`` and the claims of the other apps (``{app: claim}``)."""
    found = []
    for other_app in sorted(others):
        other = others[other_app]
        if other_app == claim['app']:
            continue
        without_proxy = NO_PROXY in (other.get('proxy'), claim['proxy'])
        if other.get('proxy') != claim['proxy'] and not without_proxy:
            found.append('%s runs behind %s on this host, and a host runs one proxy: setting up %s would stop it'
                         % (other_app, other.get('proxy'), claim['proxy']))
        if other.get('proxy_port') == claim['proxy_port'] and without_proxy:
            found.append('%s already listens on port %d' % (other_app, claim['proxy_port']))
        elif other.get('proxy_port') == claim['proxy_port']:
            shared = sorted(set(claim['names']) & set(other.get('names', [])))
            if shared:
                found.append('%s already serves %s on port %d' % (other_app, _names(shared), claim['proxy_port']))
        taken = set(claim['slot_ports']) & (set(other.get('slot_ports', [])) | {other.get('proxy_port')})
        if taken:
            found.append('%s already uses port(s) %s' % (other_app, _ports(taken)))
        if claim['proxy_port'] in other.get('slot_ports', []):
            found.append('%s runs a slot on the proxy port %d' % (other_app, claim['proxy_port']))
    return found


def read_claims(base_dir=DEFAULT_BASE_DIR):
    """``({app: claim}, [unreadable files])`` of every app recorded under ``base_dir``."""
    claims, unreadable = {}, []
    try:
        apps = sorted(os.listdir(base_dir))
    except FileNotFoundError:
        return claims, unreadable
    for app in apps:
        path = os.path.join(base_dir, app, CLAIMS_FILE_NAME)
        try:
            with open(path, 'rb') as handle:
                claim = json.loads(handle.read().decode('utf-8'))
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            unreadable.append('%s (%s)' % (path, exc))
            continue
        if isinstance(claim, dict):
            claims[app] = claim
        else:
            unreadable.append('%s (not a JSON object)' % path)
    return claims, unreadable


def dump_claim(claim):
    return json.dumps(claim, indent=2, sort_keys=True) + '\n'
