#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A fleet of host pairs on one machine, for the Ansible collection's tests: each host is a
network namespace (ansible_connection: local, mcpsec_netns), each pair joined by a veth.

  fleet.py up DIR PREFIX NPAIRS [--protect-enabled] [--serial N]
      namespaces PREFIX-h01 .. PREFIX-hNN (NN = 2 x NPAIRS), and in DIR: ansible.cfg, an
      inventory, group_vars with the pairs and a Vault-encrypted passphrase, the vault password
      file, the collection linked in, a fact cache directory.
  fleet.py down PREFIX NPAIRS
      removes the namespaces (only this fleet's).
  fleet.py up-topo DIR PREFIX
      16 hosts PREFIX-h01 .. h16 wired by topologies (issue 28): hub h01 with spokes h02-h07, a
      full mesh h07-h11 (h07 is both), groups [h12, h13] x [h14, h15]; h16 in no pair (a spoke
      to add). Each host's address is 10.78.0.N on its loopback; the policies bypass SSH and
      web and discard telnet (this kernel has no ESP). Removed with `down PREFIX 8`.

Odd pairs protect PostgreSQL with ESP (HMAC-SHA-256 + AES-CBC); on a kernel without ESP they are
staged (ipsec.enabled: false) unless --protect-enabled. Even pairs bypass SSH and discard telnet.
Every host's site ends in the default: unmatched traffic between the pair is discarded.
"""

import os
import subprocess
import sys

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


def sh(*argv, **kw):
    subprocess.run(argv, check=True, **kw)


def host(i):
    return 'h%02d' % i


def pair_def(p, protect_enabled):
    a, b = host(2 * p - 1), host(2 * p)
    pair = {'name': 'pair%02d' % p, 'a': a, 'b': b, 'a_addr': '10.77.%d.1' % p, 'b_addr': '10.77.%d.2' % p,
            'default': 'deny'}
    ssh = {'name': 'SSHIN', 'direction': 'in', 'protocol': 'tcp', 'local-ports': 22, 'action': 'bypass'}
    ssh_out = {'name': 'SSHOUT', 'direction': 'out', 'protocol': 'tcp', 'remote-ports': 22, 'action': 'bypass'}
    if p % 2:
        esp = {'integrity': 'hmac-sha256', 'integrity-key': 'PG-AUTH', 'confidentiality': 'aes-cbc',
               'confidentiality-key': 'PG-ENC'}
        pair['keys'] = {'PG-AUTH': 'sha256', 'PG-ENC': 'aes256'}
        pair['enabled'] = protect_enabled
        pair['policies'] = [
            ssh, ssh_out,
            {'name': 'PGOUT', 'direction': 'out', 'protocol': 'tcp', 'remote-ports': 5432, 'action': 'protect',
             'spi': 4000 + 2 * p, 'esp': esp},
            {'name': 'PGIN', 'direction': 'in', 'protocol': 'tcp', 'remote-ports': 5432, 'action': 'protect',
             'spi': 4001 + 2 * p, 'esp': esp},
        ]
    else:
        pair['keys'] = {}
        pair['policies'] = [
            ssh, ssh_out,
            {'name': 'TELNETOUT', 'direction': 'out', 'protocol': 'tcp', 'remote-ports': 23, 'action': 'discard'},
            {'name': 'WEBOUT', 'direction': 'out', 'protocol': 'tcp', 'remote-ports': '80,443', 'action': 'bypass'},
            {'name': 'WEBIN', 'direction': 'in', 'protocol': 'tcp', 'remote-ports': '80,443', 'action': 'bypass'},
        ]
    return pair


def common(d, prefix, hosts, group, serial):
    """DIR's ansible.cfg, inventory (hosts: name -> extra host vars), group_vars (group: the pairs
    or topologies), Vault password and passphrase, and the collection linked in."""
    d = os.path.abspath(d)
    for sub in ('collections/ansible_collections/mcpsec', 'group_vars/all', 'facts', 'tmp', 'hosts'):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    link = os.path.join(d, 'collections/ansible_collections/mcpsec/ipsec')
    if not os.path.islink(link):
        os.symlink(os.path.join(ROOT, 'ansible'), link)
    mcpsec = os.environ.get('MCPSEC', os.path.join(ROOT, 'build/san/mcpsec'))
    with open(os.path.join(d, 'ansible.cfg'), 'w') as f:
        f.write('''[defaults]
inventory = {d}/inventory.yml
collections_paths = {d}/collections
forks = 20
gathering = explicit
fact_caching = jsonfile
fact_caching_connection = {d}/facts
local_tmp = {d}/tmp
remote_tmp = {d}/tmp
retry_files_enabled = false
interpreter_python = /usr/bin/python3
vault_password_file = {d}/vault-pass
nocows = true
[connection]
# Modules run from stdin, not from a file written, chmodded and removed by three more processes
# each time (fewer starts matter most under the lab VM's emulation).
pipelining = true
'''.format(d=d))
    for h in hosts:
        hd = os.path.join(d, 'hosts', h)
        hosts[h].update({'ansible_connection': 'local', 'mcpsec_netns': '%s-%s' % (prefix, h), 'mcpsec_dir': hd,
                         'mcpsec_state_dir': os.path.join(hd, 'state')})
    with open(os.path.join(d, 'inventory.yml'), 'w') as f:
        yaml.safe_dump({'all': {'hosts': hosts}}, f, sort_keys=True)
    group = dict({'mcpsec_binary': mcpsec, 'mcpsec_controller_binary': mcpsec,
                  'mcpsec_keystore': os.path.join(d, 'keys')}, **group)
    with open(os.path.join(d, 'group_vars/all/pairs.yml'), 'w') as f:
        yaml.safe_dump(group, f, sort_keys=False)
    # The Vault password and the passphrase: random per fleet; the passphrase only in Vault.
    with open(os.path.join(d, 'vault-pass'), 'w') as f:
        f.write(os.urandom(16).hex() + '\n')
    os.chmod(os.path.join(d, 'vault-pass'), 0o600)
    vault = os.path.join(d, 'group_vars/all/vault.yml')
    with open(vault, 'w') as f:
        f.write('mcpsec_key_passphrase: "%s"\n' % os.urandom(12).hex())
    sh('ansible-vault', 'encrypt', '--vault-password-file', os.path.join(d, 'vault-pass'), vault,
       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if serial:
        with open(os.path.join(d, 'serial'), 'w') as f:
            f.write('%d\n' % serial)


def topo_def():
    """The topologies of up-topo: their pairs bypass and discard (no keys needed)."""
    policies = [
        {'name': 'SSHIN', 'direction': 'in', 'protocol': 'tcp', 'local-ports': 22, 'action': 'bypass'},
        {'name': 'SSHOUT', 'direction': 'out', 'protocol': 'tcp', 'remote-ports': 22, 'action': 'bypass'},
        {'name': 'TELNETOUT', 'direction': 'out', 'protocol': 'tcp', 'remote-ports': 23, 'action': 'discard'},
        {'name': 'WEBIN', 'direction': 'in', 'protocol': 'tcp', 'local-ports': '80,443', 'action': 'bypass'},
    ]
    return [
        {'name': 'hub', 'hub': 'h01', 'spokes': [host(i) for i in range(2, 8)], 'default': 'deny',
         'policies': policies},
        {'name': 'mesh', 'mesh': [host(i) for i in range(7, 12)], 'default': 'deny', 'policies': policies},
        {'name': 'grid', 'groups': [['h12', 'h13'], ['h14', 'h15']], 'default': 'deny', 'policies': policies},
    ]


def up_topo(d, prefix):
    hosts = {}
    for i in range(1, 17):
        h = host(i)
        hosts[h] = {'mcpsec_addr': '10.78.0.%d' % i}
    common(d, prefix, hosts, {'mcpsec_pairs': [], 'mcpsec_topologies': topo_def()}, 0)
    for i in range(1, 17):
        ns = '%s-%s' % (prefix, host(i))
        sh('ip', 'netns', 'add', ns)
        sh('ip', '-n', ns, 'link', 'set', 'lo', 'up')
        sh('ip', '-n', ns, 'addr', 'add', '10.78.0.%d/32' % i, 'dev', 'lo')


def up(d, prefix, npairs, protect_enabled, serial):
    hosts = dict((host(i), {}) for i in range(1, 2 * npairs + 1))
    common(d, prefix, hosts, {'mcpsec_pairs': [pair_def(p, protect_enabled) for p in range(1, npairs + 1)]},
           serial)
    for p in range(1, npairs + 1):
        na, nb = '%s-%s' % (prefix, host(2 * p - 1)), '%s-%s' % (prefix, host(2 * p))
        for ns in (na, nb):
            sh('ip', 'netns', 'add', ns)
            sh('ip', '-n', ns, 'link', 'set', 'lo', 'up')
        va, vb = 'fa%d-%d' % (os.getpid() % 100000, p), 'fb%d-%d' % (os.getpid() % 100000, p)
        sh('ip', 'link', 'add', va, 'netns', na, 'type', 'veth', 'peer', 'name', vb, 'netns', nb)
        for ns, dev, addr in ((na, va, '10.77.%d.1/24' % p), (nb, vb, '10.77.%d.2/24' % p)):
            sh('ip', '-n', ns, 'link', 'set', dev, 'name', 'eth0')
            sh('ip', '-n', ns, 'addr', 'add', addr, 'dev', 'eth0')
            sh('ip', '-n', ns, 'link', 'set', 'eth0', 'up')


def down(prefix, npairs):
    for i in range(1, 2 * npairs + 1):
        ns = '%s-%s' % (prefix, host(i))
        if os.path.exists('/run/netns/' + ns):
            subprocess.run(['ip', 'netns', 'del', ns], check=False)


def main(argv):
    if len(argv) >= 4 and argv[0] == 'up':
        up(argv[1], argv[2], int(argv[3]), '--protect-enabled' in argv,
           int(argv[argv.index('--serial') + 1]) if '--serial' in argv else 0)
    elif len(argv) == 3 and argv[0] == 'up-topo':
        up_topo(argv[1], argv[2])
    elif len(argv) == 3 and argv[0] == 'down':
        down(argv[1], int(argv[2]))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
