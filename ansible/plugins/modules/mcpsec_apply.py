#!/usr/bin/python
# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: mcpsec_apply
short_description: Apply an mcpsec site (IPsec policies and manual SAs) to a Linux host
description:
  - Runs C(mcpsec apply --json) on the managed host and reports exactly what changed, from
    mcpsec's own machine-readable result (policies and SAs added, updated and removed, by name).
  - With C(content), applies that text and then makes it the site file (see C(content)). The key
    file the site names must already be on the host (see M(mcpsec.ipsec.mcpsec_key)); key bytes are never passed or
    printed.
  - Check mode runs C(mcpsec apply --dry-run); the kernel and the committed configuration are
    left as they are. Diff mode shows the operations by policy name.
  - With C(state=confirmed) or C(state=rolled_back), ends a change that was applied with
    C(confirm) (C(mcpsec confirm) or C(mcpsec rollback)) instead of applying.
version_added: "1.0.0"
author: mcpsec developers
options:
  site:
    description:
      - Path of the site file on the managed host. Relative key file paths in it are read
        beside it.
      - Required with C(state=present).
    type: path
  content:
    description:
      - The site file's text. When it differs from C(site), it is applied from a temporary file
        beside C(site) (mode 0600), which replaces C(site) once mcpsec has applied it (a failed
        apply leaves the old file, which the host still enforces). In check mode it is only
        dry-run from there.
    type: str
  state:
    description:
      - C(present) applies the site.
      - C(confirmed) keeps a change applied with C(confirm) (run from a new task, this shows
        the controller still reaches the host).
      - C(rolled_back) undoes such a change now.
    type: str
    choices: [present, confirmed, rolled_back]
    default: present
  confirm:
    description:
      - Apply on trial for this many seconds (C(mcpsec apply --confirm)); the previous
        configuration comes back unless a later task confirms. Needs a committed
        configuration to go back to.
    type: int
  force:
    description:
      - Apply even when mcpsec's lockout guard says the change would cut connections that are
        open now. Leave it off; use C(confirm) instead.
    type: bool
    default: false
extends_documentation_fragment:
  - mcpsec.ipsec.mcpsec
  - mcpsec.ipsec.mcpsec.namespace
notes:
  - Supports check mode and diff mode.
  - mcpsec's exit status is returned as C(exit_status); any status but 0 fails the task, with
    mcpsec's own error lines in the message.
seealso:
  - module: mcpsec.ipsec.mcpsec_key
  - module: mcpsec.ipsec.mcpsec_facts
'''

EXAMPLES = r'''
- name: Apply the site pushed with it
  mcpsec.ipsec.mcpsec_apply:
    site: /etc/mcpsec/site.yaml
    content: "{{ lookup('ansible.builtin.template', 'site.yaml.j2') }}"

- name: Apply on trial for two minutes
  mcpsec.ipsec.mcpsec_apply:
    site: /etc/mcpsec/site.yaml
    confirm: 120

- name: Keep it (a new task, so the controller still reaches the host)
  mcpsec.ipsec.mcpsec_apply:
    state: confirmed
'''

RETURN = r'''
exit_status:
  description: mcpsec's exit status (0 ok, 1 configuration, 2 kernel refused, 3 local, 4 partial).
  returned: always
  type: int
policies:
  description: Kernel policies added, updated, removed and unchanged.
  returned: when mcpsec compared the site with the kernel
  type: dict
  sample: {added: 2, updated: 0, removed: 0, unchanged: 18}
sas:
  description: SAs added, replaced, removed, unchanged, and lifetimes updated in place.
  returned: when mcpsec compared the site with the kernel
  type: dict
changes:
  description: Every operation, by policy name (no key bytes).
  returned: when mcpsec compared the site with the kernel
  type: list
  elements: dict
  sample: [{op: add, object: policy, name: PGOUT, dir: out, action: protect, priority: 1000000,
            selector: "tcp 10.0.0.1 port any -> 10.0.0.2 port 5432"}]
committed:
  description: A new generation of the configuration was committed (would be, in check mode).
  returned: when state is present
  type: bool
file_changed:
  description: C(content) differed from the file at C(site) (and replaced it, unless in check mode or failed).
  returned: when content is given
  type: bool
trial:
  description: The trial started with C(confirm) (generation, seconds, deadline).
  returned: when confirm is given and the change was applied
  type: dict
stderr_lines:
  description: mcpsec's warnings and messages.
  returned: always
  type: list
  elements: str
'''

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mcpsec.ipsec.plugins.module_utils.mcpsec import (
    COMMON_ARGS, failure_msg, mcpsec_argv, run_json, stderr_lines)

VERBS = {'add': '+', 'delete': '-', 'update': '~'}


def diff_text(changes):
    """One line per operation, named by policy: what diff mode shows."""
    lines = []
    for c in changes:
        if c['object'] == 'policy':
            prio = c['priority']
            if 'old_priority' in c and c['old_priority'] != prio:
                prio = '%s -> %s' % (c['old_priority'], prio)
            lines.append('%s %s policy %s (%s %s %s, priority %s)' % (
                VERBS.get(c['op'], '?'), c['op'], c['name'], c['dir'], c['action'], c['selector'], prio))
        else:
            lines.append('%s %s SA of %s (spi %s, %s, %s -> %s)' % (
                VERBS.get(c['op'], '?'), c['op'], c['name'], c['spi'], c['algorithms'], c['src'], c['dst']))
    return '\n'.join(lines) + ('\n' if lines else '')


def read_text(path):
    try:
        with open(path, 'r') as f:
            return f.read()
    except (IOError, OSError):
        return None


def write_beside(path, content):
    """A new file in path's directory holding content (mode 0600); returns its name."""
    fd, tmp = tempfile.mkstemp(prefix='.mcpsec-site.', dir=os.path.dirname(os.path.abspath(path)))
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())
    return tmp


def end_trial(module, state):
    verb = 'confirm' if state == 'confirmed' else 'rollback'
    if module.check_mode:
        module.exit_json(changed=False, exit_status=0, stderr_lines=[],
                         msg='check mode: %s not run' % verb)
    rc, out, err = module.run_command(mcpsec_argv(module, verb))
    if rc == 1 and 'no change is waiting' in err:
        module.exit_json(changed=False, exit_status=0, stderr_lines=stderr_lines(err), msg=err.strip())
    if rc:
        module.fail_json(msg=failure_msg('mcpsec ' + verb, rc, err), exit_status=rc, stderr_lines=stderr_lines(err))
    module.exit_json(changed=True, exit_status=0, msg=out.strip(), stderr_lines=stderr_lines(err))


def main():
    spec = dict(
        site=dict(type='path'),
        content=dict(type='str'),
        state=dict(type='str', default='present', choices=['present', 'confirmed', 'rolled_back']),
        confirm=dict(type='int'),
        force=dict(type='bool', default=False),
    )
    spec.update(COMMON_ARGS)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           required_if=[('state', 'present', ['site'])])
    p = module.params
    if p['state'] != 'present':
        end_trial(module, p['state'])
    if p['confirm'] is not None and not 1 <= p['confirm'] <= 86400:
        module.fail_json(msg='confirm: a number of seconds from 1 to 86400')

    site, tmp, file_changed = p['site'], None, None
    result = dict(changed=False)
    if p['content'] is not None:
        file_changed = read_text(site) != p['content']
        result['file_changed'] = file_changed
        if file_changed and not os.path.isdir(os.path.dirname(os.path.abspath(site))):
            if module.check_mode:
                module.exit_json(changed=True, file_changed=True, exit_status=0, stderr_lines=[],
                                 msg='the directory of %s does not exist yet' % site)
            module.fail_json(msg='the directory of %s does not exist' % site)
        if file_changed:
            # Written beside the site, so that its relative key file path means the same, and
            # applied from there: it replaces the site file only once mcpsec has applied it (a
            # failed apply leaves the old file, which is what the host still enforces).
            tmp = write_beside(site, p['content'])
    try:
        args = ['apply', '--json']
        if module.check_mode:
            args.append('--dry-run')
        elif p['confirm']:
            args += ['--confirm', str(p['confirm'])]
        if p['force'] and not module.check_mode:
            args.append('--force')
        rc, answer, err = run_json(module, mcpsec_argv(module, *(args + [tmp or site])))
        if tmp:
            err = err.replace(tmp, site)
            if rc == 0 and not module.check_mode:
                module.atomic_move(tmp, site)
                os.chmod(site, 0o600)  # atomic_move gives a new file the umask's mode
                tmp = None
    finally:
        if tmp:
            os.unlink(tmp)

    answer = answer or {}
    for k in ('policies', 'sas', 'changes', 'committed', 'trial', 'enabled'):
        if k in answer:
            result[k] = answer[k]
    result['exit_status'] = rc
    result['stderr_lines'] = stderr_lines(err)
    result['changed'] = bool(answer.get('changed')) or (bool(file_changed) and rc == 0 and not module.check_mode)
    if module._diff and 'changes' in answer:
        result['diff'] = dict(prepared=diff_text(answer['changes']))
    if rc:
        result['msg'] = failure_msg('mcpsec apply', rc, err)
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
