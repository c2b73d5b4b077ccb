/* SPDX-License-Identifier: MIT */
/* Key rollover, make before break: one step of it as edits of site.yaml's text, so that comments
 * and layout survive (as keys.c edits keys.yaml). Pure. */
#ifndef MCPSEC_REKEY_H
#define MCPSEC_REKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

struct mc_buf;
struct mc_diags;

/*
 * The three steps, each applied on both hosts of a pair before the next one starts:
 *
 *   | step    | file after the step              | kernel after apply                        |
 *   |---------|----------------------------------|-------------------------------------------|
 *   | accept  | next: { phase: accept, spi, keys }| next SA installed; inbound accepts both  |
 *   | switch  | next: { phase: switch, ... }     | outbound sends with the next SA           |
 *   | retire  | next folded into spi and keys    | the old SA removed                        |
 *
 * A host may switch once its peer accepts, and retire once its peer switched: check-peer reports
 * every pair of files that breaks this.
 */
enum mc_rekey_step { MC_REKEY_ACCEPT, MC_REKEY_SWITCH, MC_REKEY_RETIRE };

/* The step a policy takes next: accept without next, switch from accept, retire from switch. */
enum mc_rekey_step mc_rekey_step_of(const struct mc_policy *p);
const char *mc_rekey_step_str(enum mc_rekey_step st);
/* Where a policy is: "none" (no rollover), "accept" or "switch". */
const char *mc_rekey_phase_of(const struct mc_policy *p);

/* What accept writes for one policy. */
struct mc_rekey_fresh {
	uint32_t spi;
	const char *integrity_key, *confidentiality_key; /* NULL when the policy has none */
};

/*
 * The text of site.yaml (as loaded into s) with policies pol[0..n) moved by step, into out.
 * fresh[i] is policy i's next SA for accept (unused otherwise). Every policy must be a block
 * mapping and, for retire, its `next:` must be lines of its own: otherwise an error in ds and
 * -EINVAL (out is then unusable). Returns 0.
 */
int mc_rekey_edit(const char *text, const struct mc_policy *const *pol, size_t n, enum mc_rekey_step step,
		  const struct mc_rekey_fresh *fresh, struct mc_buf *out, struct mc_diags *ds);

/*
 * Protection turned on without loss (a phase-in), make before break, and off again (a phase-out):
 * the same kind of site edit, on a PROTECT policy's `enforce:`, each step applied on both hosts
 * of a pair before the next one starts:
 *
 *   | enforce | outbound             | inbound                          |
 *   |---------|----------------------|----------------------------------|
 *   | accept  | clear (SAs installed)| clear or IPsec                   |
 *   | protect | IPsec                | clear or IPsec                   |
 *   | require | IPsec                | IPsec only (no `enforce:` line)  |
 *
 * A phase-in starts from a PROTECT policy written with `enforce: accept` and moves it one step
 * towards require; a phase-out moves one step back towards accept, after which the policy can be
 * replaced by a BYPASS (or removed). A host may protect once its peer accepts, and require once
 * its peer protects: check-peer reports every pair of files that breaks this.
 *
 * The step from e for a phase-in (in) or a phase-out; false when there is none.
 */
bool mc_enforce_step(enum mc_enforce e, bool in, enum mc_enforce *ret);

/* The text of site.yaml with policies pol[0..n) moved to enforce `to`, into out: the value
 * replaced, a line `enforce: to` added at the policy's end, or (require) the line removed. The
 * same errors as mc_rekey_edit. */
int mc_phase_edit(const char *text, const struct mc_policy *const *pol, size_t n, enum mc_enforce to,
		  struct mc_buf *out, struct mc_diags *ds);

/* A name for the successor of key `old` that is not taken (taken(name, ctx) says): "K" → "K-r2",
 * "K-r2" → "K-r3". Caller frees. */
char *mc_rekey_key_name(const char *old, int (*taken)(const char *name, void *ctx), void *ctx);

#endif
