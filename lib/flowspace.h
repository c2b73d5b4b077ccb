/* SPDX-License-Identifier: MIT */
/*
 * Flow space: sets of packets as boxes over the kernel selector's fields, and the partition of
 * such a set by first match over a plan's kernel policies. Pure. Used by lint (shadowing, ND,
 * PMTU, counterparts) and check-peer, which ask "who decides all of these packets" rather
 * than "who decides this one" (that is eval.c).
 */
#ifndef MCPSEC_FLOWSPACE_H
#define MCPSEC_FLOWSPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "model.h"

struct mc_plan;
struct mc_sel;

/* The box's dimensions, as the kernel matches a flow (xfrm_selector_match): source and
 * destination address, protocol, then sport/dport, which carry ICMP type/code for ICMP. */
enum { MC_D_SRC, MC_D_DST, MC_D_PROTO, MC_D_SPORT, MC_D_DPORT, MC_NDIM };

/* The packets whose every field lies in [lo[d], hi[d]] (inclusive), of one family. */
struct mc_box {
	uint8_t family;
	mc_u128 lo[MC_NDIM], hi[MC_NDIM];
};

struct mc_boxes {
	struct mc_box *b;
	size_t n, cap;
};

/* Every flow of a family: all addresses, protocols and ports. */
struct mc_box mc_box_all(int family);
/* The packets a normalised kernel selector matches (prefixes and value/mask blocks). */
struct mc_box mc_box_from_sel(const struct mc_sel *s);
bool mc_box_intersect(const struct mc_box *a, const struct mc_box *b, struct mc_box *ret);
/* Appends a minus b as at most 2·MC_NDIM disjoint boxes. */
void mc_box_subtract(const struct mc_box *a, const struct mc_box *b, struct mc_boxes *out);
/* The same flows travelling the other way: addresses swapped, and ports swapped for protocols
 * with ports (ICMP type and code stay where they are). */
struct mc_box mc_box_reverse(const struct mc_box *a);

/*
 * Appends a ∩ {flows a packet can have}: TCP/UDP/SCTP/DCCP/UDP-Lite with ports 1-65535,
 * ICMP/ICMPv6 with type and code 0-255, every other protocol with ports 0 (what the kernel
 * puts in the flow for them). Without this, "ports 0" or "ICMP type 300" would keep a
 * policy from looking shadowed.
 */
void mc_box_realizable(const struct mc_box *a, struct mc_boxes *out);

void mc_boxes_push(struct mc_boxes *s, const struct mc_box *b);
void mc_boxes_free(struct mc_boxes *s);

/* A piece of a partition: the rule (plan index) that is the first match for all of box, or
 * SIZE_MAX when no kernel policy matches it (the kernel lets it pass). */
struct mc_piece {
	struct mc_box box;
	size_t rule;
};

struct mc_pieces {
	struct mc_piece *p;
	size_t n, cap;
};

void mc_pieces_free(struct mc_pieces *p);

/* Positions of boxes by their interval in one dimension: sorted by lo, with a max-hi segment
 * tree, so that "which boxes meet [a, b] here" costs log n plus the answer. */
struct mc_ivindex {
	size_t n, size;  /* entries; leaves of the tree (a power of two) */
	size_t *pos;     /* positions sorted by lo */
	mc_u128 *lo;     /* lo of each, in that order */
	mc_u128 *maxhi;  /* tree: node i covers its leaves' highest hi */
};

/* The plan's kernel policies of each direction, in the kernel's first-match order, indexed by
 * every dimension (a partition then tests only policies that can meet its input). */
struct mc_porder {
	size_t *idx[2]; /* indexes into plan->pols */
	struct mc_box *box[2];
	size_t n[2];
	struct mc_ivindex by_dim[2][MC_NDIM];
};

void mc_porder_build(const struct mc_plan *plan, struct mc_porder *ret);
void mc_porder_free(struct mc_porder *o);

/*
 * Partitions the flows in[0..nin) (disjoint boxes) by their first matching kernel policy of
 * direction dir, considering only policies whose priority is below `below` (UINT32_MAX: all).
 * Returns 0, or -E2BIG when the residue would exceed max_pieces boxes (ret then holds what was
 * found so far and the answer is incomplete).
 */
int mc_partition(const struct mc_plan *plan, const struct mc_porder *o, enum mc_dir dir,
		 const struct mc_box *in, size_t nin, uint32_t below, size_t max_pieces,
		 struct mc_pieces *ret);

/* "tcp 2001:db8::1 1024-65535 -> 2001:db8::2 20-21": a short text form of a box. */
void mc_box_str(const struct mc_box *b, struct mc_buf *out);

#endif
