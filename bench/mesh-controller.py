#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The controller's side of a full mesh, at scale (issue 28): the mcpsec_pairs action plugin run
in-process on N hosts in one mesh topology (N(N-1)/2 pairs, 4 policies a pair: two PROTECT with
their own key, two BYPASS), with the release mcpsec and Ansible's real Vault, no hosts. Prints
the wall time of the whole render-and-check and the part spent in mcpsec calls.

  bench/mesh-controller.py [HOSTS]     (default 50; uses ./mcpsec: make mcpsec)
"""

import os
import shutil
import sys
import tempfile
import threading
import time
from unittest.mock import MagicMock

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))


def collection_path():
    """ansible_collections/mcpsec/ipsec -> ansible/, so the plugin imports as Ansible's would."""
    d = tempfile.mkdtemp(prefix='mesh-bench.')
    os.makedirs(os.path.join(d, 'ansible_collections', 'mcpsec'))
    os.symlink(os.path.join(ROOT, 'ansible'), os.path.join(d, 'ansible_collections', 'mcpsec', 'ipsec'))
    return d


def main(argv):
    n = int(argv[1]) if len(argv) > 1 else 50
    coll = collection_path()
    sys.path.insert(0, coll)
    from ansible.parsing.vault import VaultSecret
    from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder
    _AnsibleCollectionFinder(paths=[coll])._install()
    from ansible_collections.mcpsec.ipsec.plugins.action import mcpsec_pairs as plugin

    store = tempfile.mkdtemp(prefix='mesh-store.')
    hosts = ['n%02d' % i for i in range(1, n + 1)]
    esp = {'integrity': 'hmac-sha256', 'integrity-key': 'AUTH'}
    template = [
        {'name': 'PGOUT', 'direction': 'out', 'protocol': 'tcp', 'remote-ports': 5432, 'action': 'protect', 'esp': esp},
        {'name': 'PGIN', 'direction': 'in', 'protocol': 'tcp', 'local-ports': 5432, 'action': 'protect', 'esp': esp},
        {'name': 'SSHIN', 'direction': 'in', 'protocol': 'tcp', 'local-ports': 22, 'action': 'bypass'},
        {'name': 'SSHOUT', 'direction': 'out', 'protocol': 'tcp', 'remote-ports': 22, 'action': 'bypass'},
    ]
    task = MagicMock()
    task.args = {'passphrase': 'mesh-bench-passphrase', 'keystore': store, 'binary': os.path.join(ROOT, 'mcpsec'),
                 'topologies': [{'name': 'mesh', 'mesh': hosts, 'keys': {'AUTH': 'sha256'}, 'policies': template}]}
    play_context = MagicMock()
    play_context.check_mode = False
    loader = MagicMock()
    loader._vault.secrets = [('default', VaultSecret(b'mesh-bench-vault-password'))]
    action = plugin.ActionModule(task, MagicMock(), play_context, loader, MagicMock(), MagicMock())
    spent = {'mcpsec': 0.0, 'calls': 0}
    lock = threading.Lock()  # the controller calls mcpsec from a thread per core
    real = plugin.ActionModule._mcpsec

    def timed(self, *args, **kw):
        t = time.monotonic()
        try:
            return real(self, *args, **kw)
        finally:
            with lock:
                spent['mcpsec'] += time.monotonic() - t
                spent['calls'] += 1
    plugin.ActionModule._mcpsec = timed
    plugin.ActionBase.run = lambda self, tmp=None, task_vars=None: {}
    hostvars = dict((h, {'mcpsec_addr': 'fec0::%x' % (i + 1)}) for i, h in enumerate(hosts))
    for run in ('first (keys generated)', 'again (keys stored)'):
        spent.update(mcpsec=0.0, calls=0)
        t = time.monotonic()
        result = action.run(task_vars={'groups': {'all': hosts}, 'hostvars': hostvars})
        wall = time.monotonic() - t
        pols = sum(len(plugin.yaml.safe_load(s)['policies']) for s in result['sites'].values())
        print('%d hosts, %d pairs, %s: %.1f s; %d mcpsec calls, %.1f s summed over threads; %d policies in %d sites'
              % (n, len(result['pairs']), run, wall, spent['calls'], spent['mcpsec'], pols, len(result['sites'])))
    shutil.rmtree(store)
    shutil.rmtree(coll)


if __name__ == '__main__':
    main(sys.argv)
