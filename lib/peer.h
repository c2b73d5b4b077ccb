/* SPDX-License-Identifier: MIT */
/* Two hosts' configurations against each other: `mcpsec mirror` and `mcpsec check-peer`. Pure. */
#ifndef MCPSEC_PEER_H
#define MCPSEC_PEER_H

#include <stdbool.h>
#include <stddef.h>

#include "addr.h"

struct mc_site;
struct mc_plan;
struct mc_diags;
struct mc_buf;

struct mc_mirror_opts {
	struct mc_addr peer;  /* the peer's address */
	bool have_self;
	struct mc_addr self;  /* our address as the peer sees it (for PROTECT with local any) */
	const char *source;   /* our file's name, for the header comment */
};

/*
 * Writes the peer's site.yaml: every policy whose remote is any or contains the peer, seen from
 * the peer. Local and remote swap (addresses and ports), directions swap, SPI, protocol,
 * algorithms and key names stay: our outbound SA is the peer's inbound SA. A remote that
 * contains the peer becomes the peer's own address; names ending in IN/OUT swap the suffix.
 * Returns the number of policies written, or -EINVAL (ds says why; nothing useful in out).
 */
int mc_mirror(const struct mc_site *s, const struct mc_mirror_opts *o, struct mc_buf *out,
	      struct mc_diags *ds);

/* "PROTECTFTPOUT" → "PROTECTFTPIN", "bna-in" → "bna-out"; others unchanged. Caller frees. */
char *mc_mirror_name(const char *name);

struct mc_peer_side {
	const struct mc_site *site;
	const struct mc_plan *plan; /* compiled without host facts */
	struct mc_addr addr;        /* this host's address as the other one sees it */
};

/*
 * Follows all traffic between the two addresses, both ways, through the sender's outbound
 * policies and the receiver's inbound policies, and reports as errors (codes peer-*) every
 * pair of first matches that disagree: protected on one side and not the other, or protected
 * with a different SPI, IPsec protocol, algorithm, key name or key value (values are compared,
 * never shown). Returns the number of mismatches.
 */
/* The one remote host of the site's PROTECT policies: 0, -ENOENT (none) or -EEXIST (several). */
int mc_peer_guess(const struct mc_site *s, struct mc_addr *ret);

size_t mc_check_peer(const struct mc_peer_side *a, const struct mc_peer_side *b, struct mc_diags *ds);

#endif
