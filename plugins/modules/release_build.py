#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_build
short_description: Stage, build and put in place a release directory of an app
version_added: 0.1.0
description:
  - Builds C(<root>/releases/<release>) in two module runs around the source fetch (C(ansible.builtin.unarchive)
    or C(ansible.builtin.git) into RV(staging)), as the C(baton.deploy.release) role does. With O(src), the
    source tarball from the controller is uploaded and unpacked by the O(state=staged) run itself.
  - O(state=staged) looks for a complete build (its C(.baton-release) marker). When there is one, RV(built) is
    true and there is nothing to do. Otherwise it starts from an empty staging directory
    C(<root>/releases/.<release>.building) owned by the app user (only removed with O(create=false), for a git
    checkout that creates its own directory). A release directory without the marker is refused.
  - With O(src) (or O(archive)) and O(state=staged), the tarball is unpacked into the new staging directory in
    the same run, every file and directory owned by the app user with C(u=rwX,g=rX,o=rX). Only regular files and
    directories inside the release are accepted (no links, devices, absolute paths or C(..)); anything else fails
    the build and removes the staging directory. When the release is already built, the tarball is left unused.
  - O(state=built) does both in one run, for a source that comes as a tarball (O(src) or O(archive)). It looks for
    a complete build as O(state=staged) does (RV(built) is then true and nothing else is done), stages and unpacks the
    tarball, and finishes the build as O(state=finished) does.
  - O(state=finished) links the shared paths (C(<root>/shared/<path>)) into the staging directory, runs
    O(build_command) there as the app user (C(runuser), with the user's C(HOME) and a minimal environment),
    gives the tree to root with the app's group (C(chown -R -h root:<user>)), makes it read-only to the app
    (C(u+rwX,g+rX,g-w,o-w,ug-s)), writes the marker and moves the directory into place in one rename.
  - When a step fails, the staging directory is removed and the module fails naming the step; the live slot and
    the proxy are never touched. O(state=abandoned) removes the staging directory (a fetch that failed).
author:
  - Baton maintainers (@baton-deploy)
extends_documentation_fragment:
  - baton.deploy.attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode the module says whether the release would be built (C(changed)) and changes nothing.
  diff_mode:
    support: none
options:
  root:
    description: The app's directory (C(baton_root)); releases live in its C(releases/) directory.
    type: path
    required: true
  release:
    description: The release id, the name of its directory.
    type: str
    required: true
  user:
    description: The app user, who owns the staging directory and runs the build command.
    type: str
    required: true
  state:
    description:
      - V(staged) prepares the build, V(finished) completes it after the source was fetched into RV(staging),
        V(abandoned) removes the staging directory.
      - V(built) stages, unpacks O(src) (or O(archive)) and finishes, in one run.
    type: str
    choices: [staged, built, finished, abandoned]
    default: staged
  create:
    description:
      - With O(state=staged), create the empty staging directory (V(false) only removes it).
      - V(false) does not go with O(src), O(archive) or O(state=built).
    type: bool
    default: true
  build_command:
    description: Shell command run in the staging directory as O(user) with O(state=finished) or O(state=built); empty for none.
    type: str
    default: ''
  shared_paths:
    description: Paths in the release that are links to C(<root>/shared/<path>), kept across releases.
    type: list
    elements: str
    default: []
  src:
    description:
      - With O(state=staged) or O(state=built), a tarball on the controller (any compression Python's C(tarfile)
        reads), uploaded by the module's action plugin and unpacked into RV(staging). The C(baton.deploy.source_tarball) lookup makes one
        from a directory.
    type: path
  archive:
    description:
      - With O(state=staged) or O(state=built), a tarball already on the host, unpacked into RV(staging) as O(src)
        is. Mutually exclusive with O(src).
    type: path
notes:
  - The build command's output is returned (RV(stdout), RV(stderr)) and its last 2000 characters are in the
    failure message.
seealso:
  - module: baton.deploy.prune_releases
"""

EXAMPLES = r"""
- name: Build release v42 from a directory on the controller and put it in place, in one run
  baton.deploy.release_build:
    root: /srv/shop
    release: v42
    user: shop
    state: built
    src: "{{ lookup('baton.deploy.source_tarball', 'build/shop') }}"
    build_command: make assets
    shared_paths: [storage]

- name: Stage release v42 from a directory on the controller, in one run
  baton.deploy.release_build:
    root: /srv/shop
    release: v42
    user: shop
    src: "{{ lookup('baton.deploy.source_tarball', 'build/shop') }}"

- name: Stage the build of release v42
  baton.deploy.release_build:
    root: /srv/shop
    release: v42
    user: shop
  register: staged

- name: Fetch the source
  ansible.builtin.unarchive:
    src: shop-v42.tar.gz
    dest: "{{ staged.staging }}/"
    owner: shop
    group: shop
  when: not staged.built

- name: Build it and put it in place
  baton.deploy.release_build:
    root: /srv/shop
    release: v42
    user: shop
    state: finished
    build_command: make assets
    shared_paths: [storage]
  when: not staged.built
"""

RETURN = r"""
built:
  description: With O(state=staged), whether the release was already completely built (nothing to do).
  returned: always
  type: bool
  sample: false
release_dir:
  description: The release directory.
  returned: always
  type: str
  sample: /srv/shop/releases/v42
staging:
  description: The staging directory the source goes into.
  returned: always
  type: str
  sample: /srv/shop/releases/.v42.building
files:
  description: With O(state=finished) or O(state=built), how many files and directories were handed to root; with
    O(state=staged) and a tarball, how many were unpacked.
  returned: always
  type: int
  sample: 214
stdout:
  description: The build command's standard output.
  returned: always
  type: str
  sample: ''
stderr:
  description: The build command's standard error.
  returned: always
  type: str
  sample: ''
step:
  description: On failure, the step that failed.
  returned: failure
  type: str
  sample: Run the build command
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.baton.deploy.plugins.module_utils.release_build import (
    Account,
    BuildError,
    abandon,
    finish,
    paths,
    stage,
    unpack,
)

NOTHING_LIVE = ('Nothing live was touched (the running slot and the proxy are unchanged) and the partial build '
                'was removed. Fix the source or build command and deploy again.')


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type='path', required=True),
            release=dict(type='str', required=True),
            user=dict(type='str', required=True),
            state=dict(type='str', choices=['staged', 'built', 'finished', 'abandoned'], default='staged'),
            create=dict(type='bool', default=True),
            build_command=dict(type='str', default=''),
            shared_paths=dict(type='list', elements='str', default=[]),
            src=dict(type='path'),
            archive=dict(type='path'),
        ),
        mutually_exclusive=[('src', 'archive')],
        supports_check_mode=True,
    )
    p = module.params
    if p['src']:
        module.fail_json(msg='src is uploaded by the action plugin baton.deploy.release_build: call the module by its '
                             'full name, or give a tarball that is on the host as archive')
    if p['archive'] and (p['state'] not in ('staged', 'built') or not p['create']):
        module.fail_json(msg='archive (or src) goes with state=staged or built, and create=true, which make the '
                             'staging directory it is unpacked into')
    # In check mode the action plugin uploads nothing: there is no archive to name then.
    if p['state'] == 'built' and not p['archive'] and not module.check_mode:
        module.fail_json(msg='state=built needs the source as a tarball: src (on the controller) or archive (on the '
                             'host). Nothing was changed.')
    release = p['release']
    if not release or '/' in release or release in ('.', '..') or release.startswith('.'):
        module.fail_json(msg='release must be a plain directory name, got %r' % (release,))
    release_dir, staging = paths(p['root'], release)
    result = dict(changed=False, built=False, release_dir=release_dir, staging=staging, files=0, stdout='',
                  stderr='')

    def runner(argv, cwd):
        return module.run_command(argv, cwd=cwd)

    try:
        if p['state'] == 'abandoned':
            result['changed'] = False if module.check_mode else abandon(p['root'], release)
        else:
            account = Account.lookup(p['user'])
            if p['state'] in ('staged', 'built'):
                result.update(stage(p['root'], release, account, create=p['create'], check_mode=module.check_mode))
                if p['archive'] and not result['built'] and not module.check_mode:
                    try:
                        result['files'] = unpack(staging, p['archive'], account)
                    except BuildError:
                        abandon(p['root'], release)
                        raise
            if p['state'] in ('built', 'finished') and not result['built']:
                result.update(finish(p['root'], release, account, shared_paths=p['shared_paths'],
                                     build_command=p['build_command'], runner=runner, check_mode=module.check_mode))
    except BuildError as exc:
        after = NOTHING_LIVE if p['state'] in ('finished', 'built') else 'Nothing was changed on the host.'
        module.fail_json(msg="Building release %s failed at '%s': %s. %s" % (release, exc.step, exc.detail, after),
                         step=exc.step, **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
