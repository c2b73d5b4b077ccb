#!/usr/bin/python
# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: mcpsec_key
short_description: Import mcpsec keys from an encrypted export into a host's key file
description:
  - Imports the keys of an encrypted export (written by C(mcpsec key export), scrypt and
    AES-256-GCM under a passphrase) into the host's mcpsec key file with C(mcpsec key import).
  - Idempotent. Keys already in the file with the same values are left alone (C(changed=false));
    a name that holds another value is refused unless C(replace) is set.
  - The passphrase and the export's text are never logged, and never on a command line; they
    reach mcpsec through a file only root can read, in a private directory removed afterwards.
  - Check mode runs C(mcpsec key import --dry-run).
version_added: "1.0.0"
author: mcpsec developers
options:
  src:
    description: Path of the export file on the managed host. One of C(src) and C(content).
    type: path
  content:
    description: The export's text (for example from a Vault-encrypted file on the controller).
    type: str
  passphrase:
    description: The export's passphrase (at least 8 characters). Keep it in Ansible Vault.
    type: str
    required: true
  keys:
    description: The key file to import into (created at mode 0600 if missing).
    type: path
    default: /etc/mcpsec/keys.yaml
  replace:
    description: Replace keys of the same name that hold other values.
    type: bool
    default: false
extends_documentation_fragment:
  - mcpsec.ipsec.mcpsec
notes:
  - Supports check mode. Returns key names only, never values or fingerprints.
seealso:
  - module: mcpsec.ipsec.mcpsec_apply
'''

EXAMPLES = r'''
- name: Import the pair's keys (the export is Vault-encrypted on the controller)
  mcpsec.ipsec.mcpsec_key:
    content: "{{ lookup('ansible.builtin.unvault', 'keys/web1-db1.export.vault') }}"
    passphrase: "{{ mcpsec_key_passphrase }}"
    keys: /etc/mcpsec/keys.yaml
  no_log: true
'''

RETURN = r'''
new:
  description: Names of the keys added.
  returned: success
  type: list
  elements: str
replaced:
  description: Names of the keys replaced (only with C(replace)).
  returned: success
  type: list
  elements: str
unchanged:
  description: Names of the keys already there with the same values.
  returned: success
  type: list
  elements: str
'''

import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mcpsec.ipsec.plugins.module_utils.mcpsec import (
    failure_msg, mcpsec_argv, run_json, stderr_lines)


def private_file(directory, name, text):
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(text)
    return path


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type='path'),
            content=dict(type='str', no_log=True),
            passphrase=dict(type='str', required=True, no_log=True),
            keys=dict(type='path', default='/etc/mcpsec/keys.yaml'),
            replace=dict(type='bool', default=False),
            binary=dict(type='str', default='mcpsec'),
        ),
        required_one_of=[('src', 'content')],
        mutually_exclusive=[('src', 'content')],
        supports_check_mode=True,
    )
    p = module.params
    workdir = tempfile.mkdtemp(prefix='mcpsec-key.')
    try:
        os.chmod(workdir, 0o700)
        passfile = private_file(workdir, 'passphrase', p['passphrase'] + '\n')
        export = p['src'] or private_file(workdir, 'export', p['content'])
        args = ['key', 'import', export, '--keys', p['keys'], '--passphrase-file', passfile, '--json']
        if p['replace']:
            args.append('--replace')
        if module.check_mode:
            args.append('--dry-run')
        rc, answer, err = run_json(module, mcpsec_argv(module, *args))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if rc or not answer:
        module.fail_json(msg=failure_msg('mcpsec key import', rc, err), exit_status=rc, stderr_lines=stderr_lines(err))
    module.exit_json(changed=bool(answer['changed']), new=answer['new'], replaced=answer['replaced'],
                     unchanged=answer['unchanged'], keys=answer['keys_file'], stderr_lines=stderr_lines(err))


if __name__ == '__main__':
    main()
