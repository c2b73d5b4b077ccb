/* SPDX-License-Identifier: MIT */
/* Diff of the desired plan against the kernel: the operations apply sends, and their inverse. */
#ifndef MCPSEC_RECONCILE_H
#define MCPSEC_RECONCILE_H

#include <stdbool.h>
#include <stddef.h>

#include "kobj.h"

struct mc_diags;

/* How far ahead of the dumped send counter a replaced SA's successor starts: more packets than
 * a host sends between the dump and the delete (2^24: 1.6 s at 10 million packets a second). A
 * forward jump is harmless (a receiver with anti-replay accepts it; ours has none); a reset
 * would not be. Outbound SAs may wrap, so the sum may too. */
#define MC_OSEQ_CARRY_AHEAD 0x1000000u
struct mc_plan;

struct mc_diff {
	struct mc_op *ops;
	size_t n, cap;
	size_t pol_add, pol_upd, pol_del, pol_same;
	size_t sa_add, sa_del, sa_replace, sa_upd, sa_same;
	bool with_policies; /* the plan's policies are wanted (IPsec enabled) */
	/* Names the diff owns (mc_diff_own_name): a stale policy's rule, named from a committed
	 * state that a commit then replaces. Freed with the diff. */
	char **names;
	size_t nnames, capnames;
};

/* Gives op its rule name as a copy the diff owns. */
void mc_diff_own_name(struct mc_diff *d, struct mc_op *op, const char *name);

/*
 * Computes the operations that turn the kernel's mcpsec-owned objects into the plan. Only
 * objects mcpsec owns (policies in its priority band, SAs with its reqid) are ever changed or
 * deleted; a desired object whose identity a foreign object already holds is an error in ds.
 * With with_policies false (IPsec disabled) every owned policy is removed and SAs are left
 * untouched (neither added nor removed), so that enable restores service without re-keying.
 * Order: replaced SAs out, new SAs in, policies added/updated, stale policies out, stale SAs
 * out, so that no PROTECT policy ever points at a missing SA. Returns 0 or -EINVAL.
 */
int mc_reconcile(const struct mc_plan *want, const struct mc_kstate *have, bool with_policies,
		 struct mc_diags *ds, struct mc_diff *ret);

/* The operations that undo the successful ones of ops[0..n), in reverse order. */
void mc_diff_inverse(const struct mc_op *ops, size_t n, struct mc_diff *ret);

/* "add policy PROTECTFTPOUT out ..." lines for --dry-run, and the ip-xfrm form. */
void mc_diff_render(const struct mc_diff *d, bool ip_cmds, struct mc_buf *out);
/* The operations as a JSON array of {op, object, name, ...} (apply --json). */
void mc_diff_render_json(const struct mc_diff *d, struct mc_buf *out);
void mc_diff_free(struct mc_diff *d);

/* The words for each kind of operation, in one table: verb ("add"; ip xfrm's and apply --json's),
 * what ("add policy"; apply --dry-run's column), gerund ("adding"; refusals) and the drift
 * reason mcpsecd logs when a repair needs it ("policy-missing"). */
struct mc_op_words {
	const char *verb, *what, *gerund, *drift;
};
const struct mc_op_words *mc_op_words(enum mc_op_kind k);

#endif
