/* SPDX-License-Identifier: MIT */
/* A first list from real traffic (mcpsec stage --learn), from a staged table's flows. Pure. */
#ifndef MCPSEC_SUGGEST_H
#define MCPSEC_SUGGEST_H

#include <stdint.h>

#include "stage.h"

struct mc_buf;

struct mc_suggest_opts {
	int64_t seconds;   /* how long the flows were learned */
	const char *host;  /* said in the header (NULL: nothing) */
	enum mc_default def;
};

/*
 * Writes a site covering every flow of t: one BYPASS per peer, protocol, service port (the
 * lower of the two ports: the other side's is ephemeral) and direction, or DISCARD for a flow
 * the enforced list discards (kept so); a local service with more than 8 peers, one policy for
 * any remote. Named selectors PEER1... for the peers; grouped by peer and service port; the
 * default decides the rest. Skips what mcpsec always bypasses (Neighbor Discovery, loopback,
 * the host's own addresses) and names the PROTECT policies whose SAs carried protected flows.
 * Says in its header that it is a list to edit, not to trust.
 */
void mc_suggest(const struct mc_stage *t, const struct mc_suggest_opts *o, struct mc_buf *out);

#endif
