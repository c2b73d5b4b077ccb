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
    ('a host in two pairs', [pair(), pair('ac', 'a', 'c')], ['a', 'b', 'c'], []),
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


def test_host_text_puts_the_host_policies_first_then_pairs_by_name():
    a = action()
    a._host_policies = {'a': [{'name': 'SSH', 'direction': 'in', 'action': 'bypass'}]}
    zz = [{'name': 'ZZ', 'direction': 'out', 'action': 'bypass'}]
    text = a._host_text('a', {'default': 'deny'}, [(pair('zz'), 'a', zz), (pair(), 'a', POLICIES)])
    assert text.startswith('# Written by mcpsec.ipsec.mcpsec_pairs for host a:\n#   side a of pair ab (peer b)\n'
                           '#   side a of pair zz (peer b)\n')
    assert [p['name'] for p in yaml.safe_load(text)['policies']] == ['SSH', 'TOB', 'FROMB', 'ZZ']


CLASHES = [
    ('none', [(pair(), 'a', POLICIES), (pair('ac', 'a', 'c', keys={'K9': 'sha256'}), 'a', BYPASS)], []),
    ('a policy name in two pairs', [(pair(), 'a', POLICIES), (pair('ac', 'a', 'c', keys={}), 'a', [dict(BYPASS[0], name='tob')])],
     ['host a: policy tob is in pair ab and pair ac']),
    ('an SPI in two pairs',
     [(pair(), 'a', POLICIES),
      (pair('ac', 'a', 'c', keys={'K2': 'sha256'}), 'a', [dict(POLICIES[0], name='OTHER', esp={'integrity-key': 'K2'})])],
     ['host a: SPI 4097 is used by pair ab and pair ac']),
    ('a next SPI',
     [(pair(), 'a', POLICIES),
      (pair('ac', 'a', 'c', keys={'K2': 'sha256'}), 'a', [dict(POLICIES[0], name='OTHER', spi=7, next={'spi': 4098})])],
     ['host a: SPI 4098 is used by pair ab and pair ac']),
    ('a key name in two pairs', [(pair(), 'a', POLICIES), (pair('ac', 'a', 'c'), 'a', BYPASS)],
     ['host a: key K1 is in pair ab and pair ac']),
    ('a pair and the host\'s own policies', [(pair(), 'a', POLICIES)], ['host a: policy TOB is in its own policies and pair ab']),
]


@pytest.mark.parametrize('name,blocks,errors', CLASHES, ids=[c[0] for c in CLASHES])
def test_clashes_name_both_owners(name, blocks, errors):
    a = action()
    a._host_policies = {'a': [dict(BYPASS[0], name='TOB')]} if 'own' in name else {}
    assert a._clashes('a', blocks) == errors


def test_header_is_what_the_pairs_agree_on():
    a = action()
    a._keys_name = 'keys.yaml'
    failures = []
    header = a._header('a', [(pair(), 'a', []), (pair('ac', 'a', 'c', keys={}, enabled=False), 'a', [])], failures)
    assert header == {'enabled': False, 'default': 'deny', 'keys': 'keys.yaml'} and not failures
    a._header('a', [(pair(), 'a', []), (pair('ac', 'a', 'c', default='bypass'), 'a', [])], failures)
    assert failures and 'host a: its pairs give different defaults' in failures[0]


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
        self.calls.append(args)
        if args[0] == 'mirror':
            shutil.copy(args[1], args[args.index('--out') + 1])
        if args[0] == 'check':
            return self.check_rc, '', 'site.yaml:2:3: error: bad\n' if self.check_rc else ''
        if args[0] == 'check-peer':
            return self.peer_rc, '', 'hosts/a/site.yaml: WEB: differs\n' if self.peer_rc else ''
        return 0, '', ''


def run_pairs(tmp_path, monkeypatch, pairs, fake, host_policies=None):
    a = action({'passphrase': 'long enough', 'pairs': pairs, 'keystore': str(tmp_path / 'store')})
    monkeypatch.setattr(ActionModule, '_mcpsec', lambda self, *args, **kw: fake(*args))
    monkeypatch.setattr('ansible.plugins.action.ActionBase.run', lambda self, tmp=None, task_vars=None: {})
    hosts = sorted(set(h for p in pairs for h in (p['a'], p['b'])))
    hostvars = dict((h, {'mcpsec_host_policies': (host_policies or {}).get(h, [])}) for h in hosts)
    return a, a.run(task_vars={'groups': {'all': hosts}, 'hostvars': hostvars})


def test_a_pair_is_rendered_mirrored_and_checked(tmp_path, monkeypatch):
    fake = FakeMcpsec()
    _, result = run_pairs(tmp_path, monkeypatch, [pair(keys=None, policies=BYPASS)], fake)
    assert [c[0] for c in fake.calls] == ['mirror', 'check', 'check', 'check-peer']
    assert set(result['sites']) == {'a', 'b'} and result['host_pairs'] == {'a': ['ab'], 'b': ['ab']}
    assert 'side a of pair ab' in result['sites']['a'] and 'side b of pair ab' in result['sites']['b']


def test_a_hub_gets_one_site_with_every_pair(tmp_path, monkeypatch):
    fake = FakeMcpsec()
    spokes = [pair('hub-s%d' % i, 'hub', 's%d' % i, keys=None,
                   policies=[dict(BYPASS[0], name='WEB%d' % i)]) for i in (2, 1, 3)]
    _, result = run_pairs(tmp_path, monkeypatch, spokes, fake)
    hub = yaml.safe_load(result['sites']['hub'])
    assert [p['name'] for p in hub['policies']] == ['WEB1', 'WEB2', 'WEB3'], 'pairs in name order'
    assert result['host_pairs']['hub'] == ['hub-s1', 'hub-s2', 'hub-s3']
    peers = [c for c in fake.calls if c[0] == 'check-peer']
    assert len(peers) == 3 and all(c[1].endswith('hosts/hub/site.yaml') for c in peers), \
        'each pair checked on the hub\'s whole site'
    assert sum(1 for c in fake.calls if c[0] == 'check') == 4, 'each host\'s merged site checked once'


def test_a_check_error_is_a_failure_naming_the_host(tmp_path, monkeypatch):
    with pytest.raises(AnsibleActionFail, match='no host was changed: host a: site.yaml:2:3: error: bad'):
        run_pairs(tmp_path, monkeypatch, [pair(keys=None, policies=BYPASS)], FakeMcpsec(check_rc=1))


def test_an_inconsistent_pair_names_both_hosts(tmp_path, monkeypatch):
    with pytest.raises(AnsibleActionFail, match=r'pair ab \(a, b\) is inconsistent: a:site.yaml: WEB: differs'):
        run_pairs(tmp_path, monkeypatch, [pair(keys=None, policies=BYPASS)], FakeMcpsec(peer_rc=1))


def test_a_clash_fails_the_run_before_any_host_naming_both_pairs(tmp_path, monkeypatch):
    pairs = [pair(keys=None, policies=BYPASS), pair('ac', 'a', 'c', keys=None, policies=BYPASS)]
    fake = FakeMcpsec()
    with pytest.raises(AnsibleActionFail, match='no host was changed: host a: policy WEB is in pair ab and pair ac'):
        run_pairs(tmp_path, monkeypatch, pairs, fake)
    assert 'check-peer' not in [c[0] for c in fake.calls if c[1].endswith('hosts/a/site.yaml')]


def test_run_fails_before_any_host_when_one_pair_fails(tmp_path, monkeypatch):
    fake = FakeMcpsec(peer_rc=1)
    with pytest.raises(AnsibleActionFail, match='no host was changed: pair ab'):
        run_pairs(tmp_path, monkeypatch, [pair(keys=None, policies=BYPASS),
                                          pair('cd', 'c', 'd', keys=None, policies=[dict(BYPASS[0], name='W2')])], fake)
    work = [c[1] for c in fake.calls if c[0] == 'check'][0].split('/hosts/')[0]
    assert not os.path.exists(work), 'the work directory (keys, passphrase) is removed'


# ---- topologies ----

TEMPLATE = [
    {'name': 'PGOUT', 'direction': 'out', 'protocol': 'tcp', 'remote-ports': 5432, 'action': 'protect',
     'esp': {'integrity': 'hmac-sha256', 'integrity-key': 'AUTH'}},
    {'name': 'PGIN', 'direction': 'in', 'protocol': 'tcp', 'remote-ports': 5432, 'action': 'protect',
     'esp': {'integrity': 'hmac-sha256', 'integrity-key': 'AUTH'}},
    {'name': 'SSHIN', 'direction': 'in', 'protocol': 'tcp', 'local-ports': 22, 'action': 'bypass'},
]
ADDRS = dict(('h%d' % i, 'fec0::%d' % i) for i in range(1, 8))


def expand(topos, store, base=1000):
    a = action()
    a._keystore = str(store)
    spis = a._spi_allocator(base)
    errors, pairs = [], []
    for t in topos:
        pairs += a._expand(t, ADDRS, spis, errors)
    return a, pairs, errors


def test_topologies_wire_hub_mesh_and_groups(tmp_path):
    _, pairs, errors = expand([
        {'name': 'db', 'hub': 'h1', 'spokes': ['h2', 'h3'], 'policies': TEMPLATE, 'keys': {'AUTH': 'sha256'}},
        {'name': 'm', 'mesh': ['h4', 'h5', 'h6'], 'policies': TEMPLATE[2:]},
        {'name': 'g', 'groups': [['h1'], ['h6', 'h7']], 'policies': TEMPLATE[2:]},
    ], tmp_path)
    assert errors == []
    assert [p['name'] for p in pairs] == ['db.h1.h2', 'db.h1.h3', 'm.h4.h5', 'm.h4.h6', 'm.h5.h6', 'g.h1.h6', 'g.h1.h7']
    hub = pairs[0]
    assert (hub['a'], hub['b'], hub['a_addr'], hub['b_addr']) == ('h1', 'h2', 'fec0::1', 'fec0::2')
    assert [p['name'] for p in hub['policies']] == ['h1.h2-PGOUT', 'h1.h2-PGIN', 'h1.h2-SSHIN']
    assert hub['keys'] == {'h1.h2-AUTH': 'sha256'} and hub['policies'][0]['esp']['integrity-key'] == 'h1.h2-AUTH'
    assert 'spi' not in hub['policies'][2], 'a BYPASS gets no SPI'


def test_topology_spis_are_per_pair_kept_and_never_reused(tmp_path):
    topo = {'name': 'db', 'hub': 'h1', 'spokes': ['h2', 'h3'], 'policies': TEMPLATE, 'keys': {'AUTH': 'sha256'}}
    a, pairs, _ = expand([topo], tmp_path)
    first = dict((p['name'], [q['spi'] for q in p['policies'][:2]]) for p in pairs)
    assert first == {'db.h1.h2': [1000, 1001], 'db.h1.h3': [1016, 1017]}
    a._play_context.check_mode = False
    a._save_spis()
    # A spoke added in the middle of the list: the existing pairs keep their SPIs.
    a, pairs, _ = expand([dict(topo, spokes=['h2', 'h4', 'h3'])], tmp_path)
    now = dict((p['name'], [q['spi'] for q in p['policies'][:2]]) for p in pairs)
    assert now['db.h1.h2'] == first['db.h1.h2'] and now['db.h1.h3'] == first['db.h1.h3']
    assert now['db.h1.h4'] == [1032, 1033], 'the new pair gets a new block'
    a._save_spis()
    # A pair removed and added again later never gets another pair's SPIs.
    a, pairs, _ = expand([dict(topo, spokes=['h2']), dict(topo, name='x', spokes=['h5'])], tmp_path)
    assert [q['spi'] for q in pairs[1]['policies'][:2]] == [1048, 1049]
    a._play_context.check_mode = True
    a._save_spis()
    with open(str(tmp_path / 'spis.yml')) as f:
        assert 'x.h1.h5' not in f.read(), 'check mode writes nothing'


def test_topology_mistakes(tmp_path):
    _, _, errors = expand([{'name': 'bad', 'hub': 'h1', 'spokes': ['nowhere'], 'policies': TEMPLATE},
                           {'name': 'fixed', 'hub': 'h1', 'spokes': ['h2'],
                            'policies': [dict(TEMPLATE[0], spi=5)], 'keys': {'AUTH': 'sha256'}},
                           {'name': 'none', 'policies': TEMPLATE}], tmp_path)
    assert 'topology bad: host nowhere has no mcpsec_addr' in errors
    assert 'topology fixed: policy PGOUT: spi is allocated per pair: leave it out' in errors
    assert any(e.startswith('topology none: give hub and spokes, mesh') for e in errors)


def test_a_hub_topology_renders_one_site_per_host(tmp_path, monkeypatch):
    a = action({'passphrase': 'long enough', 'keystore': str(tmp_path / 'store'), 'spi_base': 7000,
                'topologies': [{'name': 'db', 'hub': 'h1', 'spokes': ['h2', 'h3'], 'policies': TEMPLATE[2:]}]})
    fake = FakeMcpsec()
    monkeypatch.setattr(ActionModule, '_mcpsec', lambda self, *args, **kw: fake(*args))
    monkeypatch.setattr('ansible.plugins.action.ActionBase.run', lambda self, tmp=None, task_vars=None: {})
    hosts = ['h1', 'h2', 'h3']
    result = a.run(task_vars={'groups': {'all': hosts}, 'hostvars': dict((h, {'mcpsec_addr': ADDRS[h]}) for h in hosts)})
    assert result['host_pairs'] == {'h1': ['db.h1.h2', 'db.h1.h3'], 'h2': ['db.h1.h2'], 'h3': ['db.h1.h3']}
    hub = yaml.safe_load(result['sites']['h1'])
    assert [p['name'] for p in hub['policies']] == ['h1.h2-SSHIN', 'h1.h3-SSHIN']


def test_rekey_only_steps_the_named_pairs_and_topologies():
    a = action({'passphrase': 'long enough', 'rekey': 'accept', 'rekey_only': ['db', 'cd']})
    a._settings({})
    errors = []
    pairs = [dict(pair('db.h1.h2', 'h1', 'h2'), topology='db'), dict(pair('db.h1.h3', 'h1', 'h3'), topology='db'),
             pair('cd', 'c', 'd'), pair('ab'), dict(pair('m.x.y', 'x', 'y'), topology='m')]
    stepping = a._stepping(pairs, {'h1', 'h2', 'h3', 'c', 'd', 'a', 'b', 'x'}, errors)
    assert stepping == {'db.h1.h2', 'db.h1.h3', 'cd'}, 'the hub\'s pairs together, and the named pair'
    assert errors == [], 'a pair not named is not stepped, so its split by the limit is no error'


# ---- phase-in and phase-out: enforce on a pair's PROTECT policies, a step at a time ----

def phaser(tmp_path, monkeypatch, phase, state=None, out_dir=False, fake=None, check_mode=False):
    """An action ready to step pair ab to `phase` from `state` (its phase file), mcpsec mocked."""
    a = action({'passphrase': 'long enough', 'phase': phase, 'phase_out': out_dir, 'phase_only': ['ab'],
                'keystore': str(tmp_path / 'store')}, check_mode=check_mode)
    a._settings({})
    a._work = str(tmp_path / 'work')
    os.makedirs(a._keystore)
    os.makedirs(os.path.join(a._work, 'ab', 'a'))
    a._phasing = {'ab'}
    if state:
        with open(a._phase_path(pair()), 'w') as f:
            yaml.safe_dump({'enforce': state}, f)
    monkeypatch.setattr(ActionModule, '_mcpsec', lambda self, *args, **kw: (fake or FakeMcpsec())(*args))
    return a


def phase_out():
    return dict(generated=[], rekeyed=[], phased=[], changed=set(), failures=[])


def test_with_enforce_marks_protect_policies_only():
    got = ActionModule._with_enforce(POLICIES + BYPASS, 'protect')
    assert [p.get('enforce') for p in got] == ['protect', 'protect', None]
    assert ActionModule._with_enforce(POLICIES, 'require') is POLICIES, 'require is the policies as written'
    assert 'enforce' not in POLICIES[0], 'the inventory is not changed'


def test_settings_refuse_an_unknown_phase_and_a_phase_with_a_rekey():
    with pytest.raises(AnsibleActionFail, match='phase: one of accept, protect, require'):
        action({'passphrase': 'long enough', 'phase': 'on', 'phase_only': ['ab']})._settings({})
    with pytest.raises(AnsibleActionFail, match='phase: one of protect, accept'):
        action({'passphrase': 'long enough', 'phase': 'require', 'phase_out': True, 'phase_only': ['ab']})._settings({})
    with pytest.raises(AnsibleActionFail, match='one at a time'):
        action({'passphrase': 'long enough', 'phase': 'accept', 'rekey': 'accept', 'phase_only': ['ab']})._settings({})
    with pytest.raises(AnsibleActionFail, match='name the pairs'):
        action({'passphrase': 'long enough', 'phase': 'accept'})._settings({})


def test_a_new_pair_goes_in_at_accept_and_its_phase_is_kept(tmp_path, monkeypatch):
    fake = FakeMcpsec()
    a = phaser(tmp_path, monkeypatch, 'accept', fake=fake)
    out = phase_out()
    d = os.path.join(a._work, 'ab')
    assert a._phase_step(pair(), d, POLICIES, 'none', out) == 'accept'
    assert not out['failures'] and out['phased'] == ['ab'] and out['changed'] == {'ab'}
    assert [c[0] for c in fake.calls] == ['mirror'], 'a new pair: nothing ran before it to check against'
    with open(os.path.join(d, 'new-a.yaml')) as f:
        assert [p.get('enforce') for p in yaml.safe_load(f)['policies']] == ['accept', 'accept']
    with open(a._phase_path(pair())) as f:
        assert yaml.safe_load(f) == {'enforce': 'accept'}


def test_each_step_is_checked_in_both_orders_it_rolls_out(tmp_path, monkeypatch):
    fake = FakeMcpsec()
    a = phaser(tmp_path, monkeypatch, 'protect', state='accept', fake=fake)
    out = phase_out()
    d = os.path.join(a._work, 'ab')
    assert a._phase_step(pair(), d, POLICIES, 'accept', out) == 'protect'
    peers = [c for c in fake.calls if c[0] == 'check-peer']
    assert [(os.path.basename(c[1]), os.path.basename(c[2])) for c in peers] == \
        [('new-a.yaml', 'prev-b.yaml'), ('prev-a.yaml', 'new-b.yaml')]
    fake = FakeMcpsec(peer_rc=1)
    a = phaser(tmp_path / 'x', monkeypatch, 'require', state='protect', fake=fake)
    out = phase_out()
    a._phase_step(pair(), os.path.join(a._work, 'ab'), POLICIES, 'protect', out)
    assert out['failures'] and 'pair ab: the phase require step would drop traffic while it rolls out' in out['failures'][0]


def test_a_skipped_step_is_refused_and_a_taken_one_changes_nothing(tmp_path, monkeypatch):
    a = phaser(tmp_path, monkeypatch, 'protect')
    out = phase_out()
    assert a._phase_step(pair(), os.path.join(a._work, 'ab'), POLICIES, 'none', out) == 'none'
    assert out['failures'] == ['pair ab: cannot take the phase-in step protect after none (the steps are '
                               'accept, protect, require)']
    out = phase_out()
    a = phaser(tmp_path / 'again', monkeypatch, 'protect', state='protect')
    assert a._phase_step(pair(), os.path.join(a._work, 'ab'), POLICIES, 'protect', out) == 'protect'
    assert not out['failures'] and not out['changed'] and out['phased'] == ['ab'], 'a run that resumes'
    out = phase_out()
    a = phaser(tmp_path / 'past', monkeypatch, 'accept', state='require')
    assert a._phase_step(pair(), os.path.join(a._work, 'ab'), POLICIES, 'require', out) == 'require'
    assert not out['failures'] and not out['changed'] and not out['phased'], 'a pair past the step skips it'


def test_a_protected_pair_goes_out_through_protect_and_check_mode_keeps_no_phase(tmp_path, monkeypatch):
    a = phaser(tmp_path, monkeypatch, 'protect', out_dir=True, check_mode=True)
    out = phase_out()
    assert a._phase_step(pair(), os.path.join(a._work, 'ab'), POLICIES, 'none', out) == 'protect'
    assert not out['failures'] and not os.path.exists(a._phase_path(pair()))
    a = phaser(tmp_path / 'out', monkeypatch, 'accept', out_dir=True)
    out = phase_out()
    a._phase_step(pair(), os.path.join(a._work, 'ab'), POLICIES, 'require', out)
    assert out['failures'] and 'cannot take the phase-out step accept after require (the steps are protect, accept)' \
        in out['failures'][0]
