# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT
"""mcpsec_apply: the command it runs and what it makes of mcpsec's answer, mcpsec mocked."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.mcpsec.ipsec.plugins.modules import mcpsec_apply
from ansible_collections.mcpsec.ipsec.tests.unit.plugins.modules.helpers import run_module

CHANGE = {'object': 'policy', 'op': 'add', 'name': 'WEBIN', 'dir': 'in', 'action': 'bypass',
          'selector': 'tcp local any port 443', 'priority': 1234}
APPLIED = {'changed': True, 'committed': True, 'enabled': True, 'policies': {'added': 1}, 'sas': {'added': 0},
           'changes': [CHANGE]}
NOTHING = {'changed': False, 'committed': False, 'enabled': True, 'policies': {'added': 0}, 'sas': {'added': 0},
           'changes': []}


def apply_of(*flags):
    """A test of argv: mcpsec apply --json, these flags, and a site."""
    return lambda argv: argv[:3] == ['/usr/sbin/mcpsec', 'apply', '--json'] and all(f in argv for f in flags)


# (name, module args, check mode, the command and its answer, expected: failed, changed, in result)
CASES = [
    ('applied', dict(site='/etc/mcpsec/site.yaml'), False,
     [(apply_of(), (0, APPLIED, ''))], False, True, {'committed': True}),
    ('already so', dict(site='/etc/mcpsec/site.yaml'), False,
     [(apply_of(), (0, NOTHING, ''))], False, False, {'committed': False}),
    ('check mode is a dry run', dict(site='/etc/mcpsec/site.yaml'), True,
     [(apply_of('--dry-run'), (0, APPLIED, ''))], False, True, {}),
    ('on trial', dict(site='/etc/mcpsec/site.yaml', confirm=60), False,
     [(apply_of('--confirm', '60'), (0, dict(APPLIED, trial={'generation': 'gen-2', 'seconds': 60}), ''))],
     False, True, {'trial': {'generation': 'gen-2', 'seconds': 60}}),
    ('forced', dict(site='/etc/mcpsec/site.yaml', force=True), False,
     [(apply_of('--force'), (0, APPLIED, ''))], False, True, {}),
    ('in a namespace', dict(site='/s.yaml', netns='lab', state_dir='/var/lib/x'), False,
     [(lambda a: a[:5] == ['/usr/sbin/mcpsec', '--netns', 'lab', '--state-dir', '/var/lib/x'],
       (0, APPLIED, ''))], False, True, {}),
    ('a config error', dict(site='/etc/mcpsec/site.yaml'), False,
     [(apply_of(), (2, dict(NOTHING, exit_status=2), '/etc/mcpsec/site.yaml:3:5: error: unknown key\n'
                    'mcpsec: /etc/mcpsec/site.yaml has errors; nothing was applied\n'))],
     True, False, {'exit_status': 2}),
    ('not JSON', dict(site='/etc/mcpsec/site.yaml'), False,
     [(apply_of(), (0, 'garbage', ''))], True, False, {}),
    ('confirmed', dict(state='confirmed'), False,
     [(lambda a: a == ['/usr/sbin/mcpsec', 'confirm'], (0, 'confirmed: gen-2', ''))], False, True, {}),
    ('nothing to confirm', dict(state='confirmed'), False,
     [(lambda a: a[-1] == 'confirm', (1, '', 'mcpsec: no change is waiting for confirmation in /var/lib/mcpsec\n'))],
     False, False, {}),
    ('rolled back', dict(state='rolled_back'), False,
     [(lambda a: a[-1] == 'rollback', (0, 'rolled back', ''))], False, True, {}),
    ('confirm out of range', dict(site='/s.yaml', confirm=0), False, [], True, False, {}),
]


@pytest.mark.parametrize('name,args,check,table,failed,changed,fields', CASES, ids=[c[0] for c in CASES])
def test_apply(monkeypatch, name, args, check, table, failed, changed, fields):
    result, did_fail, commands = run_module(monkeypatch, mcpsec_apply.main, args, table, check_mode=check)
    assert did_fail == failed, result
    assert result.get('changed', False) == changed, result
    for k, v in fields.items():
        assert result[k] == v, (k, result)
    assert not commands.table, 'commands not run: %r' % commands.table


def test_error_lines_in_the_message(monkeypatch):
    table = [(apply_of(), (2, NOTHING, 'x.yaml:3:5: error: unknown key\nnoise\n'))]
    result, failed, _ = run_module(monkeypatch, mcpsec_apply.main, dict(site='/x.yaml'), table)
    assert failed and 'x.yaml:3:5: error: unknown key' in result['msg'] and 'noise' not in result['msg']


def test_diff_mode_names_the_operations(monkeypatch):
    result, failed, _ = run_module(monkeypatch, mcpsec_apply.main, dict(site='/x.yaml'),
                                   [(apply_of(), (0, APPLIED, ''))], diff=True)
    assert not failed
    assert result['diff']['prepared'] == '+ add policy WEBIN (in bypass tcp local any port 443, priority 1234)\n'


def test_content_is_applied_from_beside_then_moved_in(monkeypatch, tmp_path):
    site = tmp_path / 'site.yaml'
    site.write_text('old\n')
    seen = {}

    def beside(argv):
        path = argv[-1]
        seen['path'] = path
        seen['text'] = open(path).read()
        return os.path.dirname(path) == str(tmp_path) and path != str(site)

    result, failed, _ = run_module(monkeypatch, mcpsec_apply.main, dict(site=str(site), content='new\n'),
                                   [(beside, (0, APPLIED, ''))])
    assert not failed and result['changed'] and result['file_changed']
    assert seen['text'] == 'new\n', 'mcpsec applied the new text'
    assert site.read_text() == 'new\n' and (site.stat().st_mode & 0o777) == 0o600
    assert not os.path.exists(seen['path']), 'the file beside is gone'


def test_content_refused_leaves_the_old_file(monkeypatch, tmp_path):
    site = tmp_path / 'site.yaml'
    site.write_text('old\n')
    seen = {}

    def beside(argv):
        seen['path'] = argv[-1]
        return True

    result, failed, _ = run_module(monkeypatch, mcpsec_apply.main, dict(site=str(site), content='bad\n'),
                                   [(beside, (2, NOTHING, seen.get('path', 'x') + ':1:1: error: bad\n'))])
    assert failed and site.read_text() == 'old\n' and not os.path.exists(seen['path'])
