#!/usr/bin/python
# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT
# The work is done on the controller, by the action plugin of the same name
# (plugins/action/mcpsec_pairs.py); this file documents it.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: mcpsec_pairs
short_description: Render and check every protected host pair's site files (on the controller)
description:
  - Runs on the controller and changes no managed host. For every pair of C(pairs) it
  - "1. keeps the pair's keys: generated once with C(mcpsec key generate), exported with
    C(mcpsec key export) under C(passphrase) and stored Vault-encrypted as
    C(KEYSTORE/PAIR.export.vault) (the playbook must run with a Vault password). Keys the
    pair names later are added to the store; stored keys never change."
  - "2. renders host A's site from the pair's policies (A's view; C(local) and C(remote) default
    to the pair's addresses) and host B's with C(mcpsec mirror); each host's own
    C(mcpsec_host_policies) (a host variable) come first in its file."
  - "3. merges each host's pairs into one site (its own policies, then its pairs' in pair-name
    order, then the default) and refuses a policy name, SPI or key name that two of a host's
    pairs both use, naming both; checks each host's whole site (C(mcpsec check)) and every pair
    (C(mcpsec check-peer), on the files the hosts will hold). Any problem in any pair fails the
    task naming the pair, the hosts and mcpsec's own error, so that no host is changed."
  - "4. with C(rekey), first takes one key rollover step for every pair (C(mcpsec rekey)):
    C(accept), C(switch) or C(retire). The step taken is recorded in
    C(KEYSTORE/PAIR.rollover.yml) (SPIs and key names, no key bytes) and the new keys are added
    to the store. A step already taken is not taken again, so a rollover that stopped can be
    run again."
  - Returns each host's site text (key names only, never key bytes).
version_added: "1.0.0"
author: mcpsec developers
options:
  pairs:
    description:
      - The protected pairs. Each is a mapping with C(name), C(a) and C(b) (inventory host
        names; a host may be in any number of pairs), C(a_addr) and C(b_addr) (the addresses the pair's
        traffic uses), C(keys) (key name to algorithm for C(mcpsec key generate), one of sha1, sha256,
        sha512, aes128, aes256, tdes), C(policies) (mcpsec site policies, in order, as host A
        sees them; PROTECT policies name keys of C(keys) and carry SPIs), and optionally
        C(default) (C(ipsec.default), default C(deny)) and C(enabled) (default C(true)).
    type: list
    elements: dict
    default: []
  topologies:
    description:
      - Pairs generated rather than listed, so that nobody writes n(n-1)/2 pairs. Each is a
        mapping with C(name) and one of C(hub) and C(spokes) (the hub paired with each spoke),
        C(mesh) (a list of hosts, every two paired) or C(groups) (two lists, each host of the
        first paired with each of the second); C(policies) and C(keys) as a pair's, a template
        in the view of the first host of each pair (the hub, the earlier mesh member, the first
        group); optionally C(default) and C(enabled).
      - "Each generated pair is named C(TOPOLOGY.A.B). Its policy and key names are the
        template's with the prefix C(A.B-), so they are unique on every host; its keys are its
        own, generated for it; its SPIs come from a block of 16 allocated the first time the
        pair is seen, from a counter kept in the key store (C(spis.yml)) that only grows: a
        pair added later gets new SPIs and changes no other pair, and no SPI is ever given
        twice. Template PROTECT policies leave C(spi) out."
      - Each host's address is its C(mcpsec_addr) host variable.
    type: list
    elements: dict
    default: []
  rekey_only:
    description:
      - With C(rekey), only the pairs, and the pairs of the topologies, named here take the step
        (empty, the default, is every pair); a hub's pairs roll over together by naming its
        topology.
    type: list
    elements: str
    default: []
  phase:
    description:
      - A phase-in step for the pairs named in C(phase_only) (required), turning protection on
        without loss, each step on every host before the next (C(playbooks/phase_in.yml)); the steps are
        C(accept) (SAs installed, sending in clear, accepting both), C(protect) (sending with the
        SAs), C(require) (inbound requires IPsec). With C(phase_out), a phase-out step, C(protect)
        then C(accept). The pair's phase is kept in C(PAIR.phase.yml) in the keystore; each step
        is checked with check-peer in both orders the rollout runs it.
    type: str
    choices: [accept, protect, require]
  phase_out:
    description: C(phase) is a phase-out step.
    type: bool
    default: false
  phase_only:
    description:
      - With C(phase), the pairs, and the pairs of the topologies, that take the step (required, since a
        pair never phased is new when going in and protected when going out). A pair past the
        step skips it.
    type: list
    elements: str
    default: []
  spi_base:
    description: The first SPI of the topologies' blocks, when C(spis.yml) does not exist yet.
    type: int
    default: 1073741824
  keystore:
    description: Controller directory of the Vault-encrypted key exports and rollover states.
    type: path
    required: true
  passphrase:
    description: Passphrase of the key exports (8 characters or more). Keep it in Vault.
    type: str
    required: true
  rekey:
    description: Take this key rollover step for every pair first.
    type: str
    choices: [accept, switch, retire]
  binary:
    description: The mcpsec program on the controller.
    type: str
    default: mcpsec
  keys_file:
    description: The key file name the sites give, beside the site file on each host.
    type: str
    default: keys.yaml
  serial:
    description: The rollout's batch size, to warn about pairs whose two hosts fall in different batches.
    type: int
notes:
  - Runs on the controller only (an action plugin). Check mode generates missing keys in a
    temporary directory only and stores nothing.
seealso:
  - module: mcpsec.ipsec.mcpsec_apply
  - module: mcpsec.ipsec.mcpsec_key
'''

EXAMPLES = r'''
- name: Render and check every pair
  mcpsec.ipsec.mcpsec_pairs:
    pairs: "{{ mcpsec_pairs }}"
    keystore: "{{ inventory_dir }}/mcpsec-keys"
    passphrase: "{{ mcpsec_key_passphrase }}"
  run_once: true
  register: prepared
'''

RETURN = r'''
sites:
  description: Each host's site file text, by inventory host name.
  returned: success
  type: dict
host_pairs:
  description: Each host's pairs, by name.
  returned: success
  type: dict
host_pair:
  description: Each host's first pair name (by name order; see C(host_pairs)).
  returned: success
  type: dict
generated:
  description: Pairs whose keys were generated (or completed) in this run.
  returned: success
  type: list
  elements: str
keyed:
  description: Pairs that have keys (the others have no PROTECT policy and no key file).
  returned: success
  type: list
  elements: str
rekeyed:
  description: Pairs that took the rollover step in this run.
  returned: success
  type: list
  elements: str
phased:
  description: Pairs that took (or took again) the phase step in this run.
  returned: success
  type: list
  elements: str
batch_warnings:
  description: Pairs whose two hosts fall in different rollout batches.
  returned: success
  type: list
  elements: str
'''
