# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT
"""Options the mcpsec modules share."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    # The program (every module that runs mcpsec).
    DOCUMENTATION = r'''
options:
  binary:
    description: The mcpsec program, found on PATH unless a path is given.
    type: str
    default: mcpsec
'''

    # Where mcpsec acts (modules that talk to the kernel).
    NAMESPACE = r'''
options:
  netns:
    description: Act on this network namespace (C(/run/netns/NAME)), as C(mcpsec --netns).
    type: str
  state_dir:
    description: mcpsec's state directory (C(--state-dir)); mcpsec's default when left out.
    type: path
'''
