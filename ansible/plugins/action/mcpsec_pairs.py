# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT
"""mcpsec_pairs: the controller's side of a fleet rollout (documented in modules/mcpsec_pairs.py).

Runs on the controller, never on a managed host, and changes no host: it keeps each pair's keys
(generated once, stored Vault-encrypted), renders both hosts' site files (host A from the
inventory, host B by `mcpsec mirror`), checks them (`mcpsec check`, `mcpsec check-peer`) and
returns the texts. Every pair is checked before the answer: one bad pair fails the whole task,
so no host changes. Key material only ever sits in a private temporary directory, removed at the
end; the result holds names, SPIs and site texts (which name keys, never hold them).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor

import yaml

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.parsing.vault import VaultLib
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()

NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*$')
KEY_FIELDS = ('key', 'integrity-key', 'confidentiality-key')
STEPS = ('accept', 'switch', 'retire')
# A rollover step, by the step last taken (kept in the pair's rollover file): take it, or
# nothing when it was already taken (a run that resumes), or refuse.
#   step    | taken after            | nothing after
#   accept  | none, retire           | accept, switch
#   switch  | accept                 | switch
#   retire  | switch                 | retire
TAKE_AFTER = {'accept': ('none', 'retire'), 'switch': ('accept',), 'retire': ('switch',)}
DONE_AFTER = {'accept': ('accept', 'switch'), 'switch': ('switch',), 'retire': ('retire',)}
# Protection turned on (phase-in) or off (phase-out) without loss: a pair's PROTECT policies get
# `enforce:` (accept, protect; require is the default). A step, by the phase last rendered (kept
# in the pair's phase file; 'none' before any): 'none' is a new pair going in, and a protected
# pair going out, so the pairs that step are always named (phase_only). A step is taken from the
# one before it, taken again from itself, and skipped when the pair is past it (a run that
# resumes, or runs again).
PHASE_FROM = {('in', 'accept'): ('none', 'accept'), ('in', 'protect'): ('accept', 'protect'),
              ('in', 'require'): ('protect', 'require'), ('out', 'protect'): ('none', 'require', 'protect'),
              ('out', 'accept'): ('protect', 'accept')}
PHASE_PAST = {('in', 'accept'): ('protect', 'require'), ('in', 'protect'): ('require',), ('in', 'require'): (),
              ('out', 'protect'): ('accept',), ('out', 'accept'): ()}


def plain(v):
    """Inventory data as plain Python (Ansible's own string and mapping types do not dump)."""
    if isinstance(v, dict):
        return dict((plain(k), plain(x)) for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return float(v)
    return str(to_text(v))  # an exact str: the subclasses Ansible uses do not dump


def site_dump(header, site):
    return header + yaml.safe_dump(site, default_flow_style=False, sort_keys=False, width=1000)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(('pairs', 'topologies', 'keystore', 'passphrase', 'binary', 'rekey', 'rekey_only',
                             'phase', 'phase_out', 'phase_only',
                             'keys_file', 'serial', 'spi_base'))

    # ---- running mcpsec on the controller ----

    def _mcpsec(self, *args, **kw):
        """Runs mcpsec; returns (rc, stdout, stderr), the work directory's path written as '…'."""
        p = subprocess.run([self._binary] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           input=kw.get('input'), check=False)
        out, err = to_text(p.stdout), to_text(p.stderr)
        return p.returncode, out.replace(self._work + '/', ''), err.replace(self._work + '/', '')

    def _must(self, what, *args):
        rc, out, err = self._mcpsec(*args)
        if rc:
            raise AnsibleActionFail('%s: mcpsec %s failed (exit status %d): %s' % (
                what, args[0], rc, ' | '.join(l for l in err.splitlines() if l.strip()) or out.strip()))
        return out

    # ---- keys: generated once, kept as a Vault-encrypted mcpsec export ----

    @staticmethod
    def _each(items, fn):
        """fn(item) for every item, in order, on as many threads as the controller has cores:
        nearly all of a pair's time is mcpsec processes (the key store's scrypt), which run in
        parallel. The first exception is raised, as a loop would."""
        items = list(items)
        workers = min(len(items), os.cpu_count() or 1)
        if workers <= 1:
            return [fn(i) for i in items]
        with ThreadPoolExecutor(workers) as ex:
            return list(ex.map(fn, items))

    def _vault(self):
        secrets = getattr(getattr(self._loader, '_vault', None), 'secrets', None)
        if not secrets:
            raise AnsibleActionFail('the pairs\' keys are stored encrypted with Ansible Vault: run with '
                                    '--vault-password-file or --ask-vault-pass')
        return VaultLib(secrets)

    def _keys(self, pair, d, changed_pairs):
        """Brings the pair's keys into d/keys.yaml: imported from the store, missing names
        generated (and the store rewritten, unless in check mode)."""
        store = os.path.join(self._keystore, pair['name'] + '.export.vault')
        keys_file = os.path.join(d, 'keys.yaml')
        export = os.path.join(d, 'export')
        have = set()
        if os.path.exists(store):
            with open(store, 'rb') as f:
                plain = self._vault().decrypt(f.read(), filename=store)
            fd = os.open(export, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, 'wb') as f:
                f.write(plain)
            self._must('pair %s: the key store %s' % (pair['name'], store), 'key', 'import', export,
                       '--keys', keys_file, '--passphrase-file', self._passfile)
            os.unlink(export)
            rc, out, err = self._mcpsec('key', 'list', '--keys', keys_file, '--json')
            have = set(k['name'] for k in json.loads(out).get('keys', [])) if rc == 0 else set()
        missing = [n for n in pair['keys'] if n not in have]
        for name in missing:
            self._must('pair %s: key %s' % (pair['name'], name), 'key', 'generate', name, '--alg',
                       str(pair['keys'][name]), '--keys', keys_file)
        if missing:
            changed_pairs.add(pair['name'])
            self._store_keys(pair, d)
        return missing

    def _store_keys(self, pair, d):
        """Writes every key of d/keys.yaml to the store: an mcpsec export (passphrase), then
        Vault. Not in check mode."""
        if self._play_context.check_mode:
            return
        keys_file = os.path.join(d, 'keys.yaml')
        export = os.path.join(d, 'export.new')
        rc, out, err = self._mcpsec('key', 'list', '--keys', keys_file, '--json')
        names = [k['name'] for k in json.loads(out).get('keys', [])]
        self._must('pair %s: exporting its keys' % pair['name'], 'key', 'export', *(names + [
            '--keys', keys_file, '--out', export, '--passphrase-file', self._passfile]))
        with open(export, 'rb') as f:
            sealed = self._vault().encrypt(f.read())
        os.unlink(export)
        store = os.path.join(self._keystore, pair['name'] + '.export.vault')
        tmp = store + '.tmp'
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'wb') as f:
            f.write(sealed)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, store)

    # ---- a rollover's state: SPIs, key names and the next SA per policy ----

    def _rollover_path(self, pair):
        return os.path.join(self._keystore, pair['name'] + '.rollover.yml')

    def _rollover(self, pair):
        """(the step last taken, the policies' state); ('none', {}) before any rollover."""
        path = self._rollover_path(pair)
        if not os.path.exists(path):
            return 'none', {}
        with open(path) as f:
            doc = yaml.safe_load(f) or {}
        return doc.get('step', 'none'), doc.get('policies') or {}

    # ---- a phase-in's (or -out's) state: the phase last rendered ----

    def _phase_path(self, pair):
        return os.path.join(self._keystore, pair['name'] + '.phase.yml')

    def _phase_of(self, pair):
        path = self._phase_path(pair)
        if not os.path.exists(path):
            return 'none'
        with open(path) as f:
            return (yaml.safe_load(f) or {}).get('enforce', 'none')

    @staticmethod
    def _with_enforce(policies, phase):
        """The policies with `enforce: phase` on each PROTECT one (require: as written)."""
        if phase not in ('accept', 'protect'):
            return policies
        return [dict(p, enforce=phase) if str(p.get('action', '')).lower() == 'protect' else p for p in policies]

    def _phase_step(self, pair, d, policies, phase, out):
        """The pair's phase, and when it steps: both orders of the step checked with check-peer
        (a at the new phase against b at the last one, and the reverse), as the hosts will run
        them while the step rolls out; the new phase kept. Returns the phase to render."""
        name = pair['name']
        if name not in self._phasing or phase in PHASE_PAST[(self._phase_dir, self._phase)]:
            return phase
        if phase not in PHASE_FROM[(self._phase_dir, self._phase)]:
            out['failures'].append('pair %s: cannot take the phase-%s step %s after %s (the steps are %s)' % (
                name, self._phase_dir, self._phase, phase,
                'accept, protect, require' if self._phase_dir == 'in' else 'protect, accept'))
            return phase
        sites = {}
        keys = os.path.join(d, 'a', self._keys_name)
        if os.path.exists(keys):  # the sites below sit in d: their keys.yaml is the pair's
            shutil.copy(keys, os.path.join(d, self._keys_name))
        for when, ph in (('prev', 'require' if phase == 'none' and self._phase_dir == 'out' else phase),
                         ('new', self._phase)):
            if when == 'prev' and ph == 'none':
                continue  # a new pair: its hosts do not protect its traffic yet (nothing to check)
            a, b = os.path.join(d, when + '-a.yaml'), os.path.join(d, when + '-b.yaml')
            with open(a, 'w') as f:
                f.write(site_dump('', self._render_a(pair, self._with_enforce(policies, ph))))
            self._must('pair %s' % name, 'mirror', a, '--peer', str(pair['b_addr']), '--self',
                       str(pair['a_addr']), '--out', b)
            sites[when] = (a, b)
        for x, y in ((sites.get('new', (None,))[0], sites.get('prev', (None, None))[1]),
                     (sites.get('prev', (None,))[0], sites.get('new', (None, None))[1])):
            if not x or not y:
                continue
            rc, o, err = self._mcpsec('check-peer', x, y, '--addr-a', str(pair['a_addr']),
                                      '--addr-b', str(pair['b_addr']))
            if rc:
                out['failures'].append('pair %s: the phase %s step would drop traffic while it rolls out: %s' % (
                    name, self._phase, ' | '.join(l.replace(d + '/', '') for l in (err + o).splitlines() if l.strip())))
        if phase != self._phase:
            out['changed'].add(name)
        out['phased'].append(name)
        if not self._play_context.check_mode:
            tmp = self._phase_path(pair) + '.tmp'
            with open(tmp, 'w') as f:
                f.write('# mcpsec.ipsec phase state of pair %s (enforce of its PROTECT policies)\n' % name)
                yaml.safe_dump({'enforce': self._phase}, f, default_flow_style=False)
            os.rename(tmp, self._phase_path(pair))
        return self._phase

    @staticmethod
    def _overlay(policies, state):
        """The inventory's policies with a rollover's SPIs, key names and next SAs."""
        out = []
        for p in policies:
            p = dict(p)
            s = state.get(p['name'])
            if s:
                p['spi'] = s['spi']
                for proto in ('esp', 'ah'):
                    if proto in p and proto in s:
                        p[proto] = dict(p[proto], **s[proto])
                if s.get('next'):
                    p['next'] = s['next']
            out.append(p)
        return out

    @staticmethod
    def _state_of(site):
        """What a rollover changed in site's PROTECT policies (to be kept across runs)."""
        state = {}
        for p in site['policies']:
            if str(p.get('action', '')).lower() != 'protect':
                continue
            s = {'spi': p['spi']}
            for proto in ('esp', 'ah'):
                if isinstance(p.get(proto), dict):
                    s[proto] = dict((k, v) for k, v in p[proto].items() if k in KEY_FIELDS)
            if p.get('next'):
                s['next'] = p['next']
            state[p['name']] = s
        return state

    # ---- rendering ----

    def _render_a(self, pair, policies):
        site = {'ipsec': {'enabled': bool(pair.get('enabled', True)), 'default': pair.get('default', 'deny')}}
        if pair.get('keys'):
            site['ipsec']['keys'] = self._keys_name
        if pair.get('allow_shared_spi'):
            site['ipsec']['allow-shared-spi'] = True
        out = []
        for p in policies:
            p = dict(p)
            p.setdefault('local', pair['a_addr'])
            p.setdefault('remote', pair['b_addr'])
            out.append(p)
        site['policies'] = out
        return site

    def _host_text(self, host, header, blocks):
        """A host's site: its own policies (mcpsec_host_policies) first, then each of its pairs'
        policies as it sees them, by pair name (adding a pair moves no other), then the default.
        blocks: [(pair, side, policies)]."""
        site = {'ipsec': header, 'policies': list(self._host_policies.get(host) or [])}
        for pair, side, policies in sorted(blocks, key=lambda b: b[0]['name']):
            site['policies'] += policies
        lines = ['# Written by mcpsec.ipsec.mcpsec_pairs for host %s:' % host]
        lines += ['#   side %s of pair %s (peer %s)' % (side, pair['name'], pair['b' if side == 'a' else 'a'])
                  for pair, side, _ in sorted(blocks, key=lambda b: b[0]['name'])]
        lines.append('# Edit the inventory, not this file: the next run writes it again.')
        return site_dump('\n'.join(lines) + '\n', site)

    @staticmethod
    def _spis(policy):
        if str(policy.get('action', '')).lower() != 'protect':
            return []
        spis = [policy.get('spi')]
        if isinstance(policy.get('next'), dict):
            spis.append(policy['next'].get('spi'))
        return [int(x) for x in spis if x is not None and str(x).isdigit()]

    def _clashes(self, host, blocks):
        """What two of a host's pairs (or a pair and the host's own policies) both use: a policy
        name (in any case), an SPI, a key name. Each named with both its owners."""
        errors, names, spis, keys = [], {}, {}, {}
        owners = [('its own policies', p) for p in self._host_policies.get(host) or []]
        owners += [('pair %s' % pair['name'], p) for pair, side, policies in blocks for p in policies]
        for owner, p in owners:
            n = str(p.get('name', '')).lower()
            if n in names and names[n] != owner:
                errors.append('host %s: policy %s is in %s and %s' % (host, p.get('name'), names[n], owner))
            names.setdefault(n, owner)
            for spi in self._spis(p):
                if spi in spis and spis[spi] != owner:
                    errors.append('host %s: SPI %d is used by %s and %s' % (host, spi, spis[spi], owner))
                spis.setdefault(spi, owner)
        for pair, side, policies in blocks:
            for k in pair.get('keys') or {}:
                owner = 'pair %s' % pair['name']
                if k in keys and keys[k] != owner:
                    errors.append('host %s: key %s is in %s and %s' % (host, k, keys[k], owner))
                keys.setdefault(k, owner)
        return errors

    def _header(self, host, blocks, failures):
        """The ipsec: mapping of a host's site: what its pairs agree on."""
        defaults = sorted(set(str(pair.get('default', 'deny')) for pair, _, _ in blocks))
        if len(defaults) > 1:
            failures.append('host %s: its pairs give different defaults (%s): give them one' % (
                host, ', '.join('pair %s: %s' % (pair['name'], pair.get('default', 'deny')) for pair, _, _ in blocks)))
        header = {'enabled': all(bool(pair.get('enabled', True)) for pair, _, _ in blocks), 'default': defaults[0]}
        if any(pair.get('keys') for pair, _, _ in blocks):
            header['keys'] = self._keys_name
        if any(pair.get('allow_shared_spi') for pair, _, _ in blocks):
            header['allow-shared-spi'] = True
        return header

    def _merge_keys(self, host, blocks, path):
        """The host's key file for the checks: every one of its pairs' keys (private work dir)."""
        merged = {}
        for pair, _, _ in blocks:
            kf = os.path.join(self._work, pair['name'], 'a', 'keys.yaml')
            if pair.get('keys') and os.path.exists(kf):
                with open(kf) as f:
                    merged.update((yaml.safe_load(f) or {}).get('keys') or {})
        if merged:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, 'w') as f:
                yaml.safe_dump({'keys': merged}, f, default_flow_style=False)

    def _hosts_sites(self, pairs, out):
        """Every host's merged site, checked as a whole, then every pair checked on what its
        two hosts will hold (check-peer). Sets out['sites']; adds to out['failures']."""
        blocks = {}
        for pair in pairs:
            for side in ('a', 'b'):
                if (pair['name'], side) in out['docs']:
                    blocks.setdefault(pair[side], []).append((pair, side, out['docs'][(pair['name'], side)]))
        paths = {}
        for host in sorted(blocks):
            errors = self._clashes(host, blocks[host])
            if errors:
                out['failures'].extend(errors)
                continue
            d = os.path.join(self._work, 'hosts', host)
            os.makedirs(d, 0o700)
            text = self._host_text(host, self._header(host, blocks[host], out['failures']), blocks[host])
            paths[host] = os.path.join(d, 'site.yaml')
            with open(paths[host], 'w') as f:
                f.write(text)
            self._merge_keys(host, blocks[host], os.path.join(d, self._keys_name))
            out['sites'][host] = text

        def check(host):
            rc, _, err = self._mcpsec('check', paths[host])
            return 'host %s: %s' % (host, ' | '.join(
                l.replace(self._work + '/', '') for l in err.splitlines() if 'error' in l)) if rc else None

        def check_peer(pair):
            pa, pb = paths.get(pair['a']), paths.get(pair['b'])
            if not pa or not pb:
                return None
            rc, o, err = self._mcpsec('check-peer', pa, pb, '--addr-a', str(pair['a_addr']),
                                      '--addr-b', str(pair['b_addr']))
            if not rc:
                return None
            lines = [l.replace('hosts/%s/site.yaml' % pair['a'], '%s:site.yaml' % pair['a'])
                      .replace('hosts/%s/site.yaml' % pair['b'], '%s:site.yaml' % pair['b'])
                     for l in (err + o).splitlines() if l.strip()]
            return 'pair %s (%s, %s) is inconsistent: %s' % (pair['name'], pair['a'], pair['b'], ' | '.join(lines))

        out['failures'] += [f for f in self._each(sorted(paths), check) + self._each(pairs, check_peer) if f]

    # ---- topologies: pairs generated from a hub, a mesh or two groups ----

    @staticmethod
    def _topology_pairs(topo):
        """The (a, b) host pairs a topology wires: hub -> each spoke; every two members of a
        mesh, in the listed order; each host of the first group with each of the second."""
        if topo.get('hub'):
            return [(topo['hub'], s) for s in topo.get('spokes') or []]
        if topo.get('mesh'):
            m = list(topo['mesh'])
            return [(m[i], m[j]) for i in range(len(m)) for j in range(i + 1, len(m))]
        groups = topo.get('groups') or []
        if len(groups) == 2:
            return [(x, y) for x in groups[0] for y in groups[1]]
        return []

    @staticmethod
    def _tagged(name, tag):
        return '%s-%s' % (tag, name)

    def _expand(self, topo, addrs, spis, errors):
        """A topology's pairs, each with its own keys (the template's names, tagged with the pair)
        and its own SPIs (allocated once, kept in the key store, never reused)."""
        tname = topo.get('name')
        if not tname or not NAME_RE.match(str(tname)):
            errors.append('topology %r: name: letters, digits, _ . -' % (tname,))
            return []
        where = 'topology %s' % tname
        wired = self._topology_pairs(topo)
        if not wired:
            errors.append('%s: give hub and spokes, mesh (a list of hosts), or groups (two lists)' % where)
            return []
        template = topo.get('policies') or []
        keys = topo.get('keys') or {}
        pairs = []
        for a, b in wired:
            name = '%s.%s.%s' % (tname, a, b)
            missing = [h for h in (a, b) if not addrs.get(h)]
            if missing:
                errors.append('%s: host %s has no mcpsec_addr' % (where, ', '.join(missing)))
                continue
            tag = '%s.%s' % (a, b)
            policies = []
            for i, p in enumerate(template):
                if not isinstance(p, dict) or not p.get('name'):
                    errors.append('%s: every policy needs a name' % where)
                    break
                p = dict(p, name=self._tagged(p['name'], tag))
                for proto in ('esp', 'ah'):
                    if isinstance(p.get(proto), dict):
                        p[proto] = dict((k, self._tagged(v, tag) if k in KEY_FIELDS else v)
                                        for k, v in p[proto].items())
                if str(p.get('action', '')).lower() == 'protect':
                    if p.get('spi') not in (None, 'auto'):
                        errors.append('%s: policy %s: spi is allocated per pair: leave it out' % (where, template[i]['name']))
                    p['spi'] = spis(name, i)
                policies.append(p)
            pair = {'name': name, 'a': a, 'b': b, 'a_addr': addrs[a], 'b_addr': addrs[b], 'policies': policies,
                    'keys': dict((self._tagged(k, tag), v) for k, v in keys.items()), 'topology': tname}
            for k in ('default', 'enabled', 'allow_shared_spi'):
                if k in topo:
                    pair[k] = topo[k]
            pairs.append(pair)
        return pairs

    def _spi_allocator(self, base):
        """SPIs per pair, from DIR/spis.yml in the key store: a pair's block (16 SPIs, one per
        template policy) is allocated the first time the pair is seen, from a counter that only
        grows, so a pair keeps its SPIs and no SPI is ever given twice, even after a pair is
        removed. Written once the run succeeds (never in check mode)."""
        path = os.path.join(self._keystore, 'spis.yml')
        doc = {}
        if os.path.exists(path):
            with open(path) as f:
                doc = yaml.safe_load(f) or {}
        blocks = dict(doc.get('pairs') or {})
        state = {'next': int(doc.get('next') or base), 'blocks': blocks, 'path': path, 'dirty': False}

        def spi(pair, index):
            if pair not in blocks:
                blocks[pair] = state['next']
                state['next'] += 16
                state['dirty'] = True
            if index >= 16:
                raise AnsibleActionFail('pair %s: at most 16 policies per topology template' % pair)
            return blocks[pair] + index
        self._spi_state = state
        return spi

    def _save_spis(self):
        st = getattr(self, '_spi_state', None)
        if not st or not st['dirty'] or self._play_context.check_mode:
            return
        tmp = st['path'] + '.tmp'
        with open(tmp, 'w') as f:
            f.write('# mcpsec.ipsec SPI blocks by pair: allocated once, never reused\n')
            yaml.safe_dump({'next': st['next'], 'pairs': st['blocks']}, f, default_flow_style=False, sort_keys=True)
        os.rename(tmp, st['path'])

    def _validate(self, pairs, hosts):
        errors = []
        for i, pair in enumerate(pairs):
            where = 'mcpsec_pairs[%d]' % i
            if not isinstance(pair, dict):
                errors.append('%s: not a mapping' % where)
                continue
            name = pair.get('name')
            if not name or not NAME_RE.match(str(name)):
                errors.append('%s: name: letters, digits, _ . - (got %r)' % (where, name))
                continue
            where = 'pair %s' % name
            for k in ('a', 'b', 'a_addr', 'b_addr'):
                if not pair.get(k):
                    errors.append('%s: %s is required' % (where, k))
            if pair.get('a') and pair.get('a') == pair.get('b'):
                errors.append('%s: a and b are the same host' % where)
            for side in ('a', 'b'):
                h = pair.get(side)
                if h and hosts is not None and h not in hosts:
                    errors.append('%s: host %s is not in this play' % (where, h))
            pols = pair.get('policies')
            if not isinstance(pols, list) or not pols:
                errors.append('%s: policies: a list of mcpsec policies, host a\'s view' % where)
                pols = []
            keys = pair.get('keys') or {}
            if not isinstance(keys, dict):
                errors.append('%s: keys: a mapping of key name to algorithm' % where)
                keys = {}
            for p in pols:
                if not isinstance(p, dict) or not p.get('name'):
                    errors.append('%s: every policy needs a name' % where)
                    continue
                for proto in ('esp', 'ah'):
                    for f in KEY_FIELDS:
                        ref = (p.get(proto) or {}).get(f) if isinstance(p.get(proto), dict) else None
                        if ref and ref not in keys:
                            errors.append('%s: policy %s: key %s is not in the pair\'s keys' % (where, p['name'], ref))
        if len(set(p.get('name') for p in pairs if isinstance(p, dict))) != len(pairs):
            errors.append('two pairs have the same name')
        return errors

    def _batches_warning(self, pairs, hosts, serial):
        """Pairs whose hosts land in different batches: between the two, the pair's traffic
        is dropped (one side protects, the other does not yet)."""
        if not serial or not hosts:
            return []
        batch = dict((h, i // serial) for i, h in enumerate(hosts))
        return ['pair %s: hosts %s and %s are in different batches of %d; list them next to each other '
                '(and use an even serial) so that they change together' % (p['name'], p['a'], p['b'], serial)
                for p in pairs if batch.get(p['a']) != batch.get(p['b'])]

    # ---- the run: validate, then each pair (keys, render, rekey, check), then the result ----

    def _settings(self, task_vars):
        """The task's arguments and the inventory facts the run needs, checked."""
        args = self._task.args
        self._binary = args.get('binary') or shutil.which('mcpsec') or 'mcpsec'
        self._keystore = os.path.abspath(os.path.expanduser(args.get('keystore') or 'mcpsec-keys'))
        self._keys_name = args.get('keys_file') or 'keys.yaml'
        self._rekey = plain(args.get('rekey')) or None
        self._rekey_only = set(plain(args.get('rekey_only') or []))
        self._passphrase = args.get('passphrase')
        # Pairs are checked against the whole inventory (a --limit run still checks every pair).
        self._hosts = (task_vars.get('groups') or {}).get('all')
        hostvars = task_vars.get('hostvars') or {}
        self._host_policies = dict((h, plain((hostvars.get(h) or {}).get('mcpsec_host_policies') or []))
                                   for h in (self._hosts or []))
        if self._rekey and self._rekey not in STEPS:
            raise AnsibleActionFail('rekey: one of %s' % ', '.join(STEPS))
        self._phase = plain(args.get('phase')) or None
        self._phase_dir = 'out' if args.get('phase_out') else 'in'
        self._phase_only = set(plain(args.get('phase_only') or []))
        if self._phase and (self._phase_dir, self._phase) not in PHASE_FROM:
            raise AnsibleActionFail('phase: one of %s' % ('accept, protect, require' if self._phase_dir == 'in'
                                                          else 'protect, accept (with phase_out)'))
        if self._phase and self._rekey:
            raise AnsibleActionFail('phase and rekey: one at a time (finish the phase-in first)')
        if self._phase and not self._phase_only:
            raise AnsibleActionFail('phase: name the pairs (or topologies) that take it in phase_only; the others '
                                    'keep their phase')
        self._phasing = set()
        if not self._passphrase or len(self._passphrase) < 8:
            raise AnsibleActionFail('passphrase: the key exports\' passphrase (8 characters or more, from Vault)')

    def _stepping(self, pairs, play_hosts, errors):
        """The pairs that take a rollover step: those whose two hosts are both in this play (a
        --limit run steps its own pairs); a pair split by the limit would leave one host a step
        behind its peer's next run. With rekey_only, only the pairs and topologies it names."""
        stepping = set()
        for pair in pairs:
            if self._rekey_only and not ({pair.get('name'), pair.get('topology')} & self._rekey_only):
                continue
            inside = [h for h in (pair.get('a'), pair.get('b')) if h in play_hosts]
            if self._rekey and len(inside) == 1:
                errors.append('pair %s: a rollover step needs both its hosts in the play (%s is not)' % (
                    pair['name'], pair['b'] if inside[0] == pair['a'] else pair['a']))
            elif len(inside) == 2:
                stepping.add(pair['name'])
        return stepping

    def _start_work(self):
        """The private work directory, the key store, and the passphrase in a file of its own."""
        self._work = tempfile.mkdtemp(prefix='mcpsec-pairs.')
        os.chmod(self._work, 0o700)
        if not self._play_context.check_mode and not os.path.isdir(self._keystore):
            os.makedirs(self._keystore, 0o700)
        self._passfile = os.path.join(self._work, 'passphrase')
        fd = os.open(self._passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'wb') as f:
            f.write(to_bytes(self._passphrase) + b'\n')

    def _render(self, pair, policies, a_site, b_site):
        """Host a's site from the inventory, host b's by mcpsec mirror."""
        with open(a_site, 'w') as f:
            f.write(site_dump('', self._render_a(pair, policies)))
        self._must('pair %s' % pair['name'], 'mirror', a_site, '--peer', str(pair['b_addr']), '--self',
                   str(pair['a_addr']), '--out', b_site)

    def _step(self, pair, d, policies, a_site, b_site):
        """The pair's rollover step (mcpsec rekey on a's site, b's mirrored), its state kept."""
        name = pair['name']
        protect = [p['name'] for p in policies if str(p.get('action', '')).lower() == 'protect']
        self._must('pair %s: rekey %s' % (name, self._rekey), '--state-dir', os.path.join(d, 'state'),
                   'rekey', *(protect + ['--site', a_site, '--peer', str(pair['b_addr']),
                                         '--self', str(pair['a_addr']), '--peer-out', b_site, '--force']))
        with open(a_site) as f:
            state = self._state_of(yaml.safe_load(f))
        policies = self._overlay(pair['policies'], state)
        self._render(pair, policies, a_site, b_site)
        if not self._play_context.check_mode:
            self._store_keys(pair, os.path.join(d, 'a'))
            tmp_state = self._rollover_path(pair) + '.tmp'
            with open(tmp_state, 'w') as f:
                f.write('# mcpsec.ipsec rollover state of pair %s: SPIs and key names (no key bytes)\n' % name)
                yaml.safe_dump({'step': self._rekey, 'policies': state}, f, default_flow_style=False,
                               sort_keys=True)
            os.rename(tmp_state, self._rollover_path(pair))

    def _pair(self, pair, stepping, out):
        """One pair: its keys, both sides rendered (b's by mirror), its rollover step. Adds to
        out: generated, rekeyed, changed, failures, each side's policies (docs) and each host's
        pairs (host_pairs)."""
        name = pair['name']
        d = os.path.join(self._work, name)
        for sub in ('a', 'b', 'state'):
            os.makedirs(os.path.join(d, sub), 0o700)
        keysdir = os.path.join(d, 'a')
        if pair.get('keys') and self._keys(pair, keysdir, out['changed']):
            out['generated'].append(name)
        step, state = self._rollover(pair)
        policies = self._overlay(pair['policies'], state)
        phase = self._phase_step(pair, d, policies, self._phase_of(pair), out)
        policies = self._with_enforce(policies, phase)
        a_site, b_site = os.path.join(d, 'a', 'site.yaml'), os.path.join(d, 'b', 'site.yaml')
        self._render(pair, policies, a_site, b_site)
        this_step = self._rekey if name in stepping else None
        if this_step and step not in TAKE_AFTER[this_step] + DONE_AFTER[this_step]:
            out['failures'].append('pair %s: cannot take the rollover step %s after step %s (the steps are '
                                   'accept, switch, retire)' % (name, this_step, step))
            return
        if this_step and step in TAKE_AFTER[this_step] and any(
                str(p.get('action', '')).lower() == 'protect' for p in policies):
            self._step(pair, d, policies, a_site, b_site)
            out['rekeyed'].append(name)
            out['changed'].add(name)
        for side, path in (('a', a_site), ('b', b_site)):
            with open(path) as f:
                out['docs'][(name, side)] = (yaml.safe_load(f) or {}).get('policies') or []
            out['host_pairs'].setdefault(pair[side], []).append(name)

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        task_vars = task_vars or {}
        pairs = plain(self._task.args.get('pairs') or [])
        self._settings(task_vars)
        errors = []
        topologies = plain(self._task.args.get('topologies') or [])
        if topologies:
            hostvars = task_vars.get('hostvars') or {}
            addrs = dict((h, str((hostvars.get(h) or {}).get('mcpsec_addr') or '')) for h in (self._hosts or []))
            spis = self._spi_allocator(int(self._task.args.get('spi_base') or 0x40000000))
            for topo in topologies:
                pairs += self._expand(topo, addrs, spis, errors)
        errors += self._validate(pairs, self._hosts)
        stepping = self._stepping(pairs, set(task_vars.get('ansible_play_hosts_all') or self._hosts or []), errors)
        if self._phase:
            self._phasing = set(p['name'] for p in pairs if {p.get('name'), p.get('topology')} & self._phase_only)
        if errors:
            raise AnsibleActionFail('mcpsec_pairs: ' + '; '.join(errors))
        out = dict(generated=[], rekeyed=[], phased=[], changed=set(), sites={}, docs={}, host_pairs={}, failures=[])
        try:
            self._start_work()
            self._each(pairs, lambda pair: self._pair(pair, stepping, out))
            order = dict((p['name'], i) for i, p in enumerate(pairs))  # the pairs ran in parallel
            for k in ('generated', 'rekeyed', 'phased'):
                out[k].sort(key=order.get)
            out['failures'].sort()
            self._hosts_sites(pairs, out)
        finally:
            shutil.rmtree(self._work, ignore_errors=True)
        if out['failures']:
            raise AnsibleActionFail('no host was changed: ' + '; '.join(out['failures']))
        self._save_spis()
        host_pairs = dict((h, sorted(ps)) for h, ps in out['host_pairs'].items())
        result.update(changed=bool(out['changed']), sites=out['sites'], host_pairs=host_pairs,
                      host_pair=dict((h, ps[0]) for h, ps in host_pairs.items()),
                      generated=out['generated'], rekeyed=out['rekeyed'], phased=out['phased'],
                      pairs=[p['name'] for p in pairs],
                      keyed=[p['name'] for p in pairs if p.get('keys')],
                      batch_warnings=self._batches_warning(pairs, task_vars.get('ansible_play_hosts_all'),
                                                           int(self._task.args.get('serial') or 0)))
        for w in result['batch_warnings']:
            display.warning(w)
        return result
