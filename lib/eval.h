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
 * the second the code; for protocols without ports both are ignored (the kernel sees 0). */
struct mc_query {
	int proto; /* 1..255 */
	enum mc_dir dir;
	struct mc_addr local, remote;
	unsigned local_lo, local_hi;   /* local port, or ICMP type */
	unsigned remote_lo, remote_hi; /* remote port, or ICMP code */
};

/* One uniform sub-range of the query and what decides it. */
struct mc_result {
	enum mc_action result;
	unsigned local_lo, local_hi, remote_lo, remote_hi;
	const char *first;    /* rule name; NULL when nothing matched (outside IPsec / default) */
	const char *why_none; /* when first is NULL: why the packet passes or is dropped */
	const char **matching; /* rule names of every matching rule, in first-match order */
	enum mc_action *matching_action;
	size_t nmatching;
};

struct mc_results {
	struct mc_result *r;
	size_t n, cap;
};

/*
 * Splits the query's two ranges into the maximal sub-ranges over which the outcome is uniform
 * (first by local, then by remote value) and evaluates each against the plan's kernel policies
 * in priority order. Names point into the plan. Returns 0.
 */
int mc_eval(const struct mc_plan *plan, const struct mc_query *q, struct mc_results *ret);
void mc_results_free(struct mc_results *r);

#endif
