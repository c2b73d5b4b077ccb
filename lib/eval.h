/* SPDX-License-Identifier: MIT */
/* `mcpsec test`: which policy decides a flow, over a compiled plan (pure). */
#ifndef MCPSEC_EVAL_H
#define MCPSEC_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "model.h"

struct mc_plan;

/* A test flow. Port ranges are inclusive; for ICMP/ICMPv6 the first range is the type and
 * the second the code; for protocols without ports both are ignored (the kernel sees 0).
 * Addresses are one family; each side is the single address `local` (`remote`), or the range
 * from it to `local_last` (`remote_last`) when that is set (family not 0). IPv4-mapped IPv6
 * addresses are the caller's to turn into IPv4 (mc_addr_unmap): the kernel decides such flows
 * by IPv4 policies. */
struct mc_query {
	int proto; /* 1..255 */
	enum mc_dir dir;
	struct mc_addr local, remote;
	struct mc_addr local_last, remote_last;
	unsigned local_lo, local_hi;   /* local port, or ICMP type */
	unsigned remote_lo, remote_hi; /* remote port, or ICMP code */
};

/* One uniform sub-range of the query and what decides it. */
struct mc_result {
	enum mc_action result;
	bool clear_passes; /* PROTECT in a phase-in: clear passes too (sent in clear, or accepted) */
	struct mc_addr local_addr_lo, local_addr_hi, remote_addr_lo, remote_addr_hi;
	unsigned local_lo, local_hi, remote_lo, remote_hi;
	const char *first;    /* rule name; NULL when nothing matched (outside IPsec / default) */
	const char *why_none; /* when first is NULL: why the packet passes or is dropped */
	const char **matching; /* rule names of every matching rule, in first-match order */
	enum mc_action *matching_action;
	bool *matching_never_first; /* the rule repeats an earlier one exactly (not in the kernel) */
	size_t nmatching;
};

struct mc_results {
	struct mc_result *r;
	size_t n, cap;
};

/*
 * Splits the query's address and port ranges into the maximal sub-ranges over which the
 * outcome is uniform (by local address, remote address, local value, then remote value) and
 * evaluates each against the plan's kernel policies in priority order; the plan's shadowed
 * fragments are listed among the matching rules, never first. Names point into the plan.
 * Returns 0.
 */
int mc_eval(const struct mc_plan *plan, const struct mc_query *q, struct mc_results *ret);
/* The index a query of one remote address makes and keeps with the plan (mc_plan_free frees
 * it): the policies by remote prefix, and those of any remote address. A query then meets the
 * policies whose prefix holds its address (a lookup a prefix length) and those, instead of
 * every policy: a hub's thousands of peers cost a lookup. Made again when the plan's policies
 * change. */
struct mc_evalindex;
void mc_evalindex_free(struct mc_evalindex *x);
void mc_results_free(struct mc_results *r);

struct mc_sel;
/* The query for one packet's flow (an exact selector: source and destination as sent, ICMP
 * type and code in the ports) in `mcpsec test`'s terms: local and remote by direction. */
void mc_query_of_flow(const struct mc_sel *f, enum mc_dir dir, struct mc_query *q);

#endif
