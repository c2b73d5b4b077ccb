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

/* One direction of a flow the staging observer saw since the previous drain: its packets and
 * bytes then, first and last seen (seconds since the epoch; first is the kernel entry's). */
struct mc_seen_flow {
	enum mc_dir dir;
	struct mc_sel flow;
	uint64_t packets, bytes;
	int64_t first, last;
	bool inner; /* seen inside IPsec: a protected flow's clear-text side (else at a device) */
};

struct mc_seen_flows {
	struct mc_seen_flow *f;
	size_t n, cap;
	uint64_t packets[MC_SEEN_DIRS], bytes[MC_SEEN_DIRS]; /* every packet since the previous drain */
};

void mc_seen_flows_free(struct mc_seen_flows *f);

/* An element of the staging observer's counting sets (lib/nlx.c, cmd/mcpsecd/inner.c): an
 * inner flow as the set keys it (exact, as above), its direction (the set's) and
 * its packets and bytes since the element was made. */
struct mc_setflow {
	struct mc_sel flow;
	uint64_t packets, bytes;
	enum mc_dir dir;
};

#endif
