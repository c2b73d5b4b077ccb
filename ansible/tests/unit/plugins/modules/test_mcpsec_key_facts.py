# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT
"""mcpsec_key and mcpsec_facts: the commands they run and their results, mcpsec mocked."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.mcpsec.ipsec.plugins.modules import mcpsec_facts, mcpsec_key
from ansible_collections.mcpsec.ipsec.tests.unit.plugins.modules.helpers import run_module

IMPORTED = {'changed': True, 'new': ['K1'], 'replaced': [], 'unchanged': [], 'keys_file': '/etc/mcpsec/keys.yaml'}
SAME = {'changed': False, 'new': [], 'replaced': [], 'unchanged': ['K1'], 'keys_file': '/etc/mcpsec/keys.yaml'}


def key_import(*flags):
    return lambda a: a[1:3] == ['key', 'import'] and '--json' in a and all(f in a for f in flags)


KEY_CASES = [
    ('imported', dict(content='EXPORT', passphrase='long enough'), False,
     [(key_import('--passphrase-file'), (0, IMPORTED, ''))], False, True),
    ('unchanged', dict(src='/tmp/e', passphrase='long enough'), False,
     [(key_import(), (0, SAME, ''))], False, False),
    ('replace', dict(src='/tmp/e', passphrase='long enough', replace=True), False,
     [(key_import('--replace'), (0, IMPORTED, ''))], False, True),
    ('check mode', dict(src='/tmp/e', passphrase='long enough'), True,
     [(key_import('--dry-run'), (0, IMPORTED, ''))], False, True),
    ('wrong passphrase', dict(src='/tmp/e', passphrase='long enough'), False,
     [(key_import(), (3, '', 'mcpsec: key import: wrong passphrase or damaged export\n'))], True, False),
]


@pytest.mark.parametrize('name,args,check,table,failed,changed', KEY_CASES, ids=[c[0] for c in KEY_CASES])
def test_key(monkeypatch, name, args, check, table, failed, changed):
    result, did_fail, commands = run_module(monkeypatch, mcpsec_key.main, args, table, check_mode=check)
    assert did_fail == failed and result.get('changed', False) == changed, result
    assert not commands.table


def test_key_passphrase_never_in_argv(monkeypatch):
    _, _, commands = run_module(monkeypatch, mcpsec_key.main, dict(content='EXPORT', passphrase='s3cret-pass'),
                                [(key_import(), (0, IMPORTED, ''))])
    assert not any('s3cret-pass' in a for a in commands.calls[0]), 'the passphrase goes in a file'


def test_facts(monkeypatch):
    status = {'namespace': None, 'enabled': True, 'policies': [{'name': 'WEBIN'}]}
    result, failed, commands = run_module(monkeypatch, mcpsec_facts.main, {}, [
        (lambda a: a[1:] == ['status', 'ipsec', 'all', '--json'], (0, status, ''))])
    assert not failed and not result['changed'] and result['ansible_facts']['mcpsec'] == status


def test_facts_failure(monkeypatch):
    result, failed, _ = run_module(monkeypatch, mcpsec_facts.main, {}, [
        (lambda a: True, (4, '', 'mcpsec: reading the kernel\'s XFRM state: Operation not permitted\n'))])
    assert failed and 'Operation not permitted' in result['msg']
