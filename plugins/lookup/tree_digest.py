# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
name: tree_digest
short_description: Fingerprint of files and directories on the controller
version_added: 0.4.0
description:
  - Returns the SHA-1 (hex) of the names and contents of every regular file under the given paths on the
    controller, in sorted order (C(.pyc) files left out). It changes when a file is added, removed, renamed or
    edited, and only then.
  - Computed in Python, without a shell pipeline. C(playbooks/deploy.yml) uses it for the setup fingerprint of
    a host (the collection's roles and modules).
author:
  - Baton maintainers (@baton-deploy)
options:
  _terms:
    description: Files or directories, relative to O(root).
    type: list
    elements: str
    required: true
  root:
    description: Directory the paths are relative to (they must stay inside it).
    type: path
    required: true
"""

EXAMPLES = r"""
- name: Fingerprint of two roles and the plugins of a collection
  ansible.builtin.debug:
    msg: "{{ lookup('baton.deploy.tree_digest', 'roles/instances', 'roles/proxy', 'plugins', root=playbook_dir ~ '/..') }}"
"""

RETURN = r"""
_raw:
  description: One SHA-1 in hex, for all the paths together.
  type: list
  elements: str
"""

import os

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.baton.deploy.plugins.plugin_utils.source_tree import tree_digest


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        root = os.path.realpath(self.get_option('root'))
        paths = [str(term) for term in terms]
        for path in paths:
            if os.path.isabs(path) or not os.path.realpath(os.path.join(root, path)).startswith(root + os.sep):
                raise AnsibleLookupError('tree_digest: %s is not a path inside %s' % (path, root))
        try:
            return [tree_digest(root, paths)]
        except OSError as exc:
            raise AnsibleLookupError('tree_digest: %s' % exc) from exc
