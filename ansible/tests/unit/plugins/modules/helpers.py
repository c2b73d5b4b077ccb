# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT
"""Running a module's main() in-process, as community.general's unit tests do: the arguments
set, run_command mocked by a table of (argv test, answer), exit_json and fail_json caught."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes


class Exited(Exception):
    """exit_json was called: args[0] is the result."""


class Failed(Exception):
    """fail_json was called: args[0] is the result."""


def _exit_json(self, **kwargs):
    kwargs.setdefault('changed', False)
    raise Exited(kwargs)


def _fail_json(self, **kwargs):
    kwargs['failed'] = True
    raise Failed(kwargs)


class Commands(object):
    """run_command's stand-in: each call is matched, in order, against the table's entries
    (a function of argv that says whether it is the expected command, and (rc, out, err))."""

    def __init__(self, table):
        self.table = list(table)
        self.calls = []

    def __call__(self, module, argv, **kwargs):
        self.calls.append(list(argv))
        if not self.table:
            raise AssertionError('unexpected command %r' % (argv,))
        expect, answer = self.table.pop(0)
        assert expect(argv), 'unexpected command %r' % (argv,)
        rc, out, err = answer
        return rc, json.dumps(out) if isinstance(out, dict) else out, err


def run_module(monkeypatch, main, args, table, check_mode=False, diff=False):
    """Runs main with args; returns (result, failed, commands)."""
    if check_mode:
        args = dict(args, _ansible_check_mode=True)
    if diff:
        args = dict(args, _ansible_diff=True)
    monkeypatch.setattr(basic, '_ANSIBLE_ARGS', to_bytes(json.dumps({'ANSIBLE_MODULE_ARGS': args})))
    commands = Commands(table)
    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', _exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', _fail_json)
    monkeypatch.setattr(basic.AnsibleModule, 'run_command', lambda self, argv, **kw: commands(self, argv, **kw))
    monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path', lambda self, name, required=False, opt_dirs=None: '/usr/sbin/' + name)
    try:
        main()
    except Exited as e:
        return e.args[0], False, commands
    except Failed as e:
        return e.args[0], True, commands
    raise AssertionError('the module neither exited nor failed')
