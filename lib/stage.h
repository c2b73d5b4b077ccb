/* SPDX-License-Identifier: MIT */
/*
 * A staged list (mcpsec stage), pure: the flows mcpsecd sees, each decided by the enforced plan
 * and by the staged one with `mcpsec test`'s evaluator, kept in a bounded table (the least
 * recently seen flow makes room) with totals that count every packet whatever the table kept.
 * mcpsecd feeds it; status and log show it.
 */
#ifndef MCPSEC_STAGE_H
#define MCPSEC_STAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drops.h"
#include "model.h"
#include "plan.h"

struct mc_buf;
struct mc_record;
struct mc_records;

/* What the staged list would do to a flow, against what the enforced one does. */
enum mc_change {
	MC_CHANGE_NONE,     /* the same policy decides, the same way */
	MC_CHANGE_POLICY,   /* another policy decides, the same way (listed apart) */
	MC_CHANGE_SA,       /* protected both ways, under another SA (the peer must change too) */
	MC_CHANGE_DISCARD,  /* would be discarded */
	MC_CHANGE_PROTECT,  /* would be protected (the peer must be ready) */
	MC_CHANGE_BYPASS,   /* would pass in clear */
	MC_CHANGE_N
};
/* "unchanged", "other-policy", "other-sa", "would-discard", "would-protect", "would-bypass". */
const char *mc_change_str(enum mc_change c);

/* How one plan decides a flow: the action, the policy ("" when none of the plan's rules
 * matches: the kernel's own default), and for PROTECT the SA (protocol and SPI). */
struct mc_decision {
	enum mc_action action;
	char policy[72];
	uint8_t sa_proto;
	uint32_t spi;
};

/*
 * Decides a flow seen at the device by plan. An ESP or AH packet (the observer sees protected
 * traffic after encryption and before decryption) is decided by its SA: the policy whose SA
 * has its SPI and destination, PROTECT; an SA the plan does not have, DISCARD.
 */
void mc_stage_decide(const struct mc_plan *plan, enum mc_dir dir, const struct mc_sel *flow,
		     struct mc_decision *ret);
/* Both decisions of a flow. An ESP or AH flow the enforced list protects and the staged one has
 * no SA for takes the staged list's policy of the same name (its SA, or its action), or else is
 * "protected by an SA that is gone" (a change of SA, whose inner flows are not seen). */
void mc_stage_decide_both(const struct mc_plan *enforced, const struct mc_plan *staged, enum mc_dir dir,
			  const struct mc_sel *flow, struct mc_decision *e, struct mc_decision *s);
enum mc_change mc_stage_compare(const struct mc_decision *enforced, const struct mc_decision *staged);

/* One flow in the table: its counts since it was first seen, and both decisions. */
struct mc_sflow {
	struct mc_seen_flow s;
	enum mc_change change;
	struct mc_decision enforced, staged;
	uint32_t newer, older, hnext; /* the LRU list and the hash chain (indexes; UINT32_MAX: none) */
};

struct mc_stage {
	size_t max; /* flows kept */
	struct mc_sflow *v;
	size_t n;
	uint32_t *buckets;
	size_t nbuckets;
	uint32_t newest, oldest;
	/* every flow and packet, whatever the table kept: a flow made room for and seen again
	 * counts again in flows (evicted says how often that happened) */
	uint64_t flows[MC_CHANGE_N], packets[MC_CHANGE_N], bytes[MC_CHANGE_N];
	uint64_t evicted;
	/* packets the observer counted but no flow carried (not IP, or its own table made room
	 * first): a running balance, since a drain's flows may hold packets its totals were read
	 * before (the next drain's totals have them); shown as 0 while negative */
	int64_t unattributed_packets, unattributed_bytes;
	int64_t since; /* observed since (seconds since the epoch) */
	/* the summary record's state */
	uint64_t flows_at_summary;
	int64_t last_summary;
};

/* max: flows kept (0: MC_STAGE_FLOWS). */
#define MC_STAGE_FLOWS 65536
void mc_stage_init(struct mc_stage *t, size_t max, int64_t now);
void mc_stage_free(struct mc_stage *t);

/*
 * Adds a drain's flows, each decided by both plans when first seen (a table is for one pair
 * of plans: start a new one when either changes). A flow first seen whose decision would
 * change (not MC_CHANGE_NONE or MC_CHANGE_POLICY) becomes a "staged" record in out.
 */
void mc_stage_add(struct mc_stage *t, const struct mc_seen_flows *f, const struct mc_plan *enforced,
		  const struct mc_plan *staged, int64_t now, struct mc_records *out);
/* Puts flow f, decided already (its change is recomputed), in the table as its newest, without
 * counting it in the totals: a table read back (mc_stage_load). False when the table holds it. */
bool mc_stage_put(struct mc_stage *t, const struct mc_sflow *f);

/*
 * The table kept across a restart of mcpsecd (DIR/mcpsecd.staged-table): mc_stage_save writes
 * it with the staged list's and the enforced generation's names, newest flow first, at most max
 * bytes (the oldest flows left out past them). mc_stage_load reads it back into t
 * (initialised) when it is for the same two generations: 0; -ESTALE when it is for others;
 * -EINVAL, with why, when it is malformed in any way (then t is as it was: nothing of it is
 * used).
 */
void mc_stage_save(const struct mc_stage *t, const char *staged_gen, const char *enforced_gen, size_t max,
		   struct mc_buf *b);
int mc_stage_load(struct mc_stage *t, const char *text, size_t len, const char *staged_gen,
		  const char *enforced_gen, char *why, size_t why_len);

/* A "staged" summary record when interval seconds have passed since the last and a flow was
 * seen since: true with *r filled. */
bool mc_stage_summary(struct mc_stage *t, int64_t now, int64_t interval, struct mc_record *r);

/* The staging observer's counting sets at the previous drain (flows sorted by direction and
 * flow) and its totals: what mc_stage_inner takes differences from. */
struct mc_innerprev {
	struct mc_setflow *v;
	size_t n;
	uint64_t packets[MC_SEEN_DIRS], bytes[MC_SEEN_DIRS];
};
void mc_innerprev_free(struct mc_innerprev *p);

/*
 * One reading of the counting sets (v, n elements; taken over) and of their totals (every
 * protected packet, by direction, since the sets were made), appended to out: each inner flow
 * with the packets and bytes since the previous reading, which prev holds (an element new
 * since, or whose counters went back, counts whole), and the totals' differences added to
 * out's totals (a flow the sets had no room for is in these alone).
 */
void mc_stage_inner(struct mc_innerprev *prev, struct mc_setflow *v, size_t n, const uint64_t packets[MC_SEEN_DIRS],
		    const uint64_t bytes[MC_SEEN_DIRS], int64_t now, struct mc_seen_flows *out);

/* {"since":..,"totals":{..},"flows":[..]}: every flow kept, most recently seen first. */
void mc_stage_json(const struct mc_stage *t, struct mc_buf *b);
/* The totals, then the top flows (by packets) of each change. */
void mc_stage_text(const struct mc_stage *t, size_t top, struct mc_buf *b);

#endif
