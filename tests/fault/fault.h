/* SPDX-License-Identifier: MIT */
/*
 * Test-only fault injection, linked into the sanitizer build alone (Makefile: FAULT_SRC), never
 * into the release binaries: production code has only two weak seams, mc_kernel_decorate
 * (lib/kernel.h) and mc_state_step (lib/state.h), which are NULL there.
 *
 * MCPSEC_FAULT, read once at start and removed from the environment (so that no child, such as
 * apply's rollback timer, inherits it):
 *   fail:N          the Nth kernel operation of the process fails as a refusal would (EPERM,
 *                   not sent); kill:N, term:N, int:N, hup:N send that signal just before it
 *                   (while one is set, every operation goes alone, so that N is exact);
 *   commit-kill:K   the process is killed at step K of a state commit (commit-term:K,
 *                   commit-int:K, commit-hup:K: those signals);
 *   prepare-fail, switch-fail   that commit step fails as a full disk would (ENOSPC).
 */
#ifndef MCPSEC_FAULT_H
#define MCPSEC_FAULT_H

/* Sets the fault for this process from now on (NULL: none): the unit tests' way in. */
void mc_fault_set(const char *spec);

#endif
