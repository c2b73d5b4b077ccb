#!/usr/bin/python
# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: mcpsec_facts
short_description: What the kernel enforces, by mcpsec policy name, as facts
description:
  - Runs C(mcpsec status ipsec all --json) and returns it as the fact C(mcpsec), with the committed
    configuration (enabled, default, generation waiting for confirmation), whether it is
    enforced, every policy with its kernel policies and last use, every SA with its counters,
    the kernel's IPsec error counters, and the drop totals of the mcpsecd that watches the
    namespace (C(daemon), null when none does).
  - Never returns key bytes or key fingerprints (mcpsec's status has none).
version_added: "1.0.0"
author: mcpsec developers
extends_documentation_fragment:
  - mcpsec.ipsec.mcpsec
  - mcpsec.ipsec.mcpsec.namespace
notes:
  - Supports check mode (it changes nothing).
'''

EXAMPLES = r'''
- name: Gather mcpsec facts
  mcpsec.ipsec.mcpsec_facts:

- name: Every policy the kernel does not fully hold
  ansible.builtin.debug:
    msg: "{{ ansible_facts.mcpsec.policies | rejectattr('kernel_policies') | map(attribute='name') }}"
'''

RETURN = r'''
ansible_facts:
  description: Facts to add to ansible_facts.
  returned: always
  type: dict
  contains:
    mcpsec:
      description: C(mcpsec status ipsec all --json), as documented in mcpsec(8).
      type: dict
      sample: {committed: true, enabled: true, enforced: true, policies: [], sas: [], daemon: null}
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mcpsec.ipsec.plugins.module_utils.mcpsec import (
    COMMON_ARGS, failure_msg, mcpsec_argv, run_json, stderr_lines)


def main():
    module = AnsibleModule(argument_spec=dict(COMMON_ARGS), supports_check_mode=True)
    rc, answer, err = run_json(module, mcpsec_argv(module, 'status', 'ipsec', 'all', '--json'))
    if rc or answer is None:
        module.fail_json(msg=failure_msg('mcpsec status', rc, err), exit_status=rc, stderr_lines=stderr_lines(err))
    module.exit_json(changed=False, ansible_facts=dict(mcpsec=answer))


if __name__ == '__main__':
    main()
