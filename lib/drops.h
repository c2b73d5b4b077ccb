/* SPDX-License-Identifier: MIT */
/*
 * What the per-flow drop hook (cmd/mcpsecd/bpf/drops.bpf.c, loaded by cmd/mcpsecd/dropmon.c) and
 * the pure monitor share: the flows it reports. Types only.
 */
#ifndef MCPSEC_DROPS_H
#define MCPSEC_DROPS_H

#include <stddef.h>
#include <stdint.h>

#include "plan.h"
#include "wire.h" /* enum mc_drop_kind */

/* Packets of one flow refused since the previous drain. flow is exact: addresses as
 * one-address prefixes, ports (or ICMP type and code) with full masks. */
struct mc_drop_flow {
	enum mc_drop_kind hook;
	struct mc_sel flow;
	uint64_t count;
};

struct mc_drop_flows {
	struct mc_drop_flow *f;
	size_t n, cap;
	uint64_t totals[MC_DROP_KINDS]; /* packets since the previous drain, by kind */
};

void mc_drop_flows_free(struct mc_drop_flows *f);

#endif
