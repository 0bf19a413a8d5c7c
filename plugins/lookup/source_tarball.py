# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
name: source_tarball
short_description: A directory on the controller as one tarball, to upload in one transfer
version_added: 0.4.0
description:
  - Makes a gzip tarball of the contents of a directory on the controller and returns its path, for
    M(ansible.builtin.unarchive) to upload and unpack in one transfer and one module run (the release role's
    C(path) source), instead of a copy file by file.
  - Symbolic links are followed (as M(ansible.builtin.copy) does); owners are left out; sockets, fifos and
    devices are skipped.
  - The tarball is named after its SHA-1 and its bytes depend only on the tree, so the hosts of one deploy share
    one file. It lives in O(cache_dir); tarballs there older than a day are removed when a new one is made.
author:
  - Baton maintainers (@baton-deploy)
options:
  _terms:
    description: The directory (absolute path on the controller).
    type: list
    elements: path
    required: true
  cache_dir:
    description:
      - Directory on the controller for the tarballs, created with mode C(0700). Defaults to
        C(baton-sources-<uid>) in the controller's temporary directory.
    type: path
"""

EXAMPLES = r"""
- name: Upload a directory in one transfer
  ansible.builtin.unarchive:
    src: "{{ lookup('baton.deploy.source_tarball', '/home/me/build/shop') }}"
    dest: /srv/shop/releases/.v42.building
"""

RETURN = r"""
_raw:
  description: The path of the tarball on the controller, one per directory.
  type: list
  elements: path
"""

import os
import tempfile

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.baton.deploy.plugins.plugin_utils.source_tree import source_tarball


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        default_dir = os.path.join(tempfile.gettempdir(), 'baton-sources-%d' % os.getuid())
        cache_dir = self.get_option('cache_dir') or default_dir
        made = []
        for term in terms:
            source = str(term).rstrip('/') or '/'
            if not os.path.isabs(source):
                raise AnsibleLookupError('source_tarball: %s is not an absolute path' % term)
            try:
                made.append(source_tarball(source, cache_dir))
            except OSError as exc:
                raise AnsibleLookupError('source_tarball: %s' % exc) from exc
        return made
