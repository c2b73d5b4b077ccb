# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT
"""What the mcpsec modules share: the command line, and running mcpsec for a JSON answer."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

# The options every module that runs mcpsec has (merged into each argument_spec).
COMMON_ARGS = dict(
    binary=dict(type='str', default='mcpsec'),
    netns=dict(type='str'),
    state_dir=dict(type='path'),
)


def mcpsec_argv(module, *args):
    """mcpsec [--netns N] [--state-dir D] ARGS..., the binary found on PATH unless a path."""
    binary = module.params['binary']
    if '/' not in binary:
        binary = module.get_bin_path(binary, required=True)
    argv = [binary]
    if module.params.get('netns'):
        argv += ['--netns', module.params['netns']]
    if module.params.get('state_dir'):
        argv += ['--state-dir', module.params['state_dir']]
    return argv + list(args)


def run_json(module, argv, **kwargs):
    """Runs argv; returns (rc, answer, stderr). answer is the JSON object mcpsec printed on
    stdout, or None when it printed none (a usage error)."""
    rc, out, err = module.run_command(argv, **kwargs)
    answer = None
    text = (out or '').strip()
    if text:
        try:
            answer = json.loads(text)
        except ValueError:
            module.fail_json(msg='mcpsec printed something that is not JSON', rc=rc, stdout=out, stderr=err)
    return rc, answer, err or ''


def stderr_lines(err):
    return [line for line in err.splitlines() if line.strip()]


def failure_msg(what, rc, err):
    """The message of a failed run: mcpsec's own lines (file:line:col: error: ...) say why."""
    errors = [line for line in stderr_lines(err) if 'error:' in line or line.startswith('mcpsec')]
    return '%s failed (exit status %d): %s' % (what, rc, '; '.join(errors or stderr_lines(err)) or 'no message')
