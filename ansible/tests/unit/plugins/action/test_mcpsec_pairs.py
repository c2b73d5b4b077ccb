# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT
"""mcpsec_pairs, the controller's side: each step of run() without namespaces or hosts, mcpsec
mocked where a step runs it (the bats suite 330-ansible runs it all for real)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil

import pytest
import yaml

from unittest.mock import MagicMock

from ansible.errors import AnsibleActionFail
from ansible_collections.mcpsec.ipsec.plugins.action.mcpsec_pairs import ActionModule, plain

POLICIES = [
    {'name': 'TOB', 'direction': 'out', 'action': 'protect', 'spi': 4097,
     'esp': {'integrity': 'hmac-sha256-128', 'integrity-key': 'K1'}},
    {'name': 'FROMB', 'direction': 'in', 'action': 'protect', 'spi': 4098,
     'esp': {'integrity': 'hmac-sha256-128', 'integrity-key': 'K1'}},
]


BYPASS = [{'name': 'WEB', 'direction': 'in', 'protocol': 'tcp', 'local-ports': 443, 'action': 'bypass'}]


def pair(name='ab', a='a', b='b', **kw):
    p = {'name': name, 'a': a, 'b': b, 'a_addr': 'fec0::1', 'b_addr': 'fec0::2', 'policies': POLICIES,
         'keys': {'K1': 'sha256'}}
    p.update(kw)
    return p


def action(args=None, check_mode=False):
    task = MagicMock()
    task.args = args or {}
    play_context = MagicMock()
    play_context.check_mode = check_mode
    return ActionModule(task, MagicMock(), play_context, MagicMock(), MagicMock(), MagicMock())


# ---- validate ----

VALIDATE = [
    ('one good pair', [pair()], ['a', 'b'], []),
    ('a host in two pairs', [pair(), pair('ac', 'a', 'c')], ['a', 'b', 'c'], ['host a is already in pair ab']),
    ('a and b the same', [pair(b='a')], ['a'], ['a and b are the same host']),
    ('a host outside the play', [pair(b='z')], ['a', 'b'], ['host z is not in this play']),
    ('missing fields', [{'name': 'x'}], None, ['a is required', 'b_addr is required', 'policies: a list']),
    ('a bad name', [pair(name='no spaces')], ['a', 'b'], ['name: letters, digits']),
    ('a key not in the pair', [pair(keys={})], ['a', 'b'], ['key K1 is not in the pair']),
    ('two pairs of one name', [pair(), pair(a='c', b='d')], ['a', 'b', 'c', 'd'], ['two pairs have the same name']),
    ('not a mapping', ['pair'], None, ['not a mapping']),
]


@pytest.mark.parametrize('name,pairs,hosts,errors', VALIDATE, ids=[v[0] for v in VALIDATE])
def test_validate(name, pairs, hosts, errors):
    got = action()._validate(pairs, hosts)
    if not errors:
        assert got == []
    for e in errors:
        assert any(e in g for g in got), (e, got)


def test_settings_refuse_a_short_passphrase_and_an_unknown_step():
    with pytest.raises(AnsibleActionFail, match='passphrase'):
        action({'passphrase': 'short'})._settings({})
    with pytest.raises(AnsibleActionFail, match='rekey: one of accept, switch, retire'):
        action({'passphrase': 'long enough', 'rekey': 'jump'})._settings({})


def test_stepping_needs_both_hosts_in_the_play():
    a = action({'passphrase': 'long enough', 'rekey': 'accept'})
    a._settings({})
    errors = []
    stepping = a._stepping([pair(), pair('cd', 'c', 'd')], {'a', 'b', 'c'}, errors)
    assert stepping == {'ab'}
    assert errors and 'pair cd: a rollover step needs both its hosts in the play (d is not)' in errors[0]


# ---- the pure steps: overlay, state, rendering, batches ----

def test_state_and_overlay_round_trip():
    done = {'policies': [dict(POLICIES[0], spi=5001, esp=dict(POLICIES[0]['esp'], **{'integrity-key': 'K2'}),
                              next={'phase': 'accept', 'spi': 5002}), {'name': 'PASS', 'action': 'bypass'}]}
    state = ActionModule._state_of(done)
    assert list(state) == ['TOB'], 'only PROTECT policies have a rollover state'
    assert state['TOB'] == {'spi': 5001, 'esp': {'integrity-key': 'K2'}, 'next': {'phase': 'accept', 'spi': 5002}}
    over = ActionModule._overlay(POLICIES, state)
    assert over[0]['spi'] == 5001 and over[0]['esp']['integrity-key'] == 'K2' and over[0]['next']['spi'] == 5002
    assert over[0]['esp']['integrity'] == 'hmac-sha256-128', 'the inventory\'s algorithm stays'
    assert over[1] == POLICIES[1], 'a policy without state is as written'
    assert POLICIES[0]['spi'] == 4097, 'the inventory is not changed'


def test_render_a_fills_the_addresses_and_the_key_file():
    a = action()
    a._keys_name = 'keys.yaml'
    site = a._render_a(pair(default='bypass'), POLICIES)
    assert site['ipsec'] == {'enabled': True, 'default': 'bypass', 'keys': 'keys.yaml'}
    assert all(p['local'] == 'fec0::1' and p['remote'] == 'fec0::2' for p in site['policies'])


def test_host_text_puts_the_host_policies_first():
    a = action()
    a._host_policies = {'a': [{'name': 'SSH', 'direction': 'in', 'action': 'bypass'}]}
    text = a._host_text(pair(), 'a', 'a', {'ipsec': {}, 'policies': POLICIES})
    assert text.startswith('# Written by mcpsec.ipsec.mcpsec_pairs for host a, side a of pair ab (peer b).')
    assert [p['name'] for p in yaml.safe_load(text)['policies']] == ['SSH', 'TOB', 'FROMB']


def test_batches_warning_names_a_split_pair():
    warnings = action()._batches_warning([pair(), pair('cd', 'c', 'd')], ['a', 'c', 'b', 'd'], 2)
    assert len(warnings) == 2 and 'pair ab: hosts a and b are in different batches of 2' in warnings[0]
    assert action()._batches_warning([pair()], ['a', 'b'], 2) == []


def test_plain_gives_plain_types():
    class Text(str):
        pass
    got = plain({Text('k'): [Text('v'), 1, True, None, 1.5]})
    assert got == {'k': ['v', 1, True, None, 1.5]} and type(list(got)[0]) is str and type(got['k'][0]) is str


# ---- one pair with mcpsec mocked: what runs, in what order, and what fails the run ----

class FakeMcpsec(object):
    """mcpsec on the controller: mirror writes b's site, check and check-peer answer as told."""

    def __init__(self, check_rc=0, peer_rc=0):
        self.calls, self.check_rc, self.peer_rc = [], check_rc, peer_rc

    def __call__(self, *args, **kw):
        self.calls.append(args[0])
        if args[0] == 'mirror':
            shutil.copy(args[1], args[args.index('--out') + 1])
        if args[0] == 'check':
            return self.check_rc, '', 'site.yaml:2:3: error: bad\n' if self.check_rc else ''
        if args[0] == 'check-peer':
            return self.peer_rc, '', 'ab/a/site.yaml: WEB: differs\n' if self.peer_rc else ''
        return 0, '', ''


def one_pair(tmp_path, fake, p=None):
    a = action()
    a._work = str(tmp_path)
    a._keystore = str(tmp_path / 'store')
    a._keys_name = 'keys.yaml'
    a._rekey = None
    a._host_policies = {}
    a._mcpsec = fake
    out = dict(generated=[], rekeyed=[], changed=set(), sites={}, host_pair={}, failures=[])
    a._pair(p or pair(keys=None, policies=BYPASS), set(), out)
    return out


def test_a_pair_is_rendered_mirrored_and_checked(tmp_path):
    fake = FakeMcpsec()
    out = one_pair(tmp_path, fake)
    assert fake.calls == ['mirror', 'check', 'check', 'check-peer']
    assert out['failures'] == [] and set(out['sites']) == {'a', 'b'} and out['host_pair'] == {'a': 'ab', 'b': 'ab'}
    assert 'side a of pair ab' in out['sites']['a'] and 'side b of pair ab' in out['sites']['b']


def test_a_check_error_is_a_failure_naming_host_and_pair(tmp_path):
    out = one_pair(tmp_path, FakeMcpsec(check_rc=1))
    assert out['failures'][0] == 'pair ab, host a: site.yaml:2:3: error: bad'


def test_an_inconsistent_pair_names_both_hosts(tmp_path):
    out = one_pair(tmp_path, FakeMcpsec(peer_rc=1))
    assert out['failures'] == ['pair ab (a, b) is inconsistent: a:site.yaml: WEB: differs']


def test_run_fails_before_any_host_when_one_pair_fails(tmp_path, monkeypatch):
    a = action({'passphrase': 'long enough', 'pairs': [pair(keys=None, policies=BYPASS), pair('cd', 'c', 'd', keys=None, policies=BYPASS)],
                'keystore': str(tmp_path / 'store')})
    monkeypatch.setattr(ActionModule, '_mcpsec', lambda self, *args, **kw: FakeMcpsec(
        peer_rc=1 if 'cd/a/site.yaml' in ' '.join(args) else 0)(*args))
    monkeypatch.setattr('ansible.plugins.action.ActionBase.run', lambda self, tmp=None, task_vars=None: {})
    with pytest.raises(AnsibleActionFail, match='no host was changed: pair cd'):
        a.run(task_vars={'groups': {'all': ['a', 'b', 'c', 'd']}})
    assert not os.path.exists(a._work), 'the work directory (keys, passphrase) is removed'
