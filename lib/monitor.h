/* SPDX-License-Identifier: MIT */
/*
 * The daemon's logic, pure: XFRM events and counter snapshots in, drop records and totals out.
 * mcpsecd (cmd/mcpsecd) does the I/O: sockets, /proc/net/xfrm_stat, the log file, syslog.
 */
#ifndef MCPSEC_MONITOR_H
#define MCPSEC_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "event.h"

#include "reconcile.h"

struct mc_buf;
struct mc_kstate;
struct mc_plan;
struct mc_xsa;

/* /proc/net/xfrm_stat: "XfrmInPolBlock   3" lines. */
struct mc_stat {
	char name[40];
	uint64_t value;
};

struct mc_stats {
	struct mc_stat *v;
	size_t n, cap;
};

void mc_stats_parse(const char *text, struct mc_stats *ret);
uint64_t mc_stats_get(const struct mc_stats *s, const char *name);
void mc_stats_free(struct mc_stats *s);

/* One line of the log. Strings are fixed-size so that records need no freeing. */
struct mc_record {
	int64_t time;        /* seconds since the epoch */
	char event[16];      /* drop | sa-expire | drift | repair | overrun | suppressed | daemon */
	char reason[48];     /* drop: no-sa, policy-block, plaintext-for-protect, icv-failure, ... */
	char dir[4];         /* in | out | "" */
	char policy[72];     /* the mcpsec policy that decided, or "" */
	char flow[160];      /* "udp fec0::100 port 40000 -> fec0::127 port 21" or "" */
	char detail[256];
	uint64_t count;
	/* The flow's fields, for filters and tools (set with flow when the packet was seen). */
	char proto[12];      /* "tcp", "icmpv6", or the number */
	char src[48], dst[48];
	int32_t sport, dport;         /* -1: the protocol has no ports */
	int32_t icmp_type, icmp_code; /* -1: not ICMP */
};

struct mc_records {
	struct mc_record *r;
	size_t n, cap;
};

void mc_records_free(struct mc_records *r);

/* Rule names by kernel priority (the committed state). NULL when not one of mcpsec's. */
typedef const char *(*mc_namer)(void *ctx, uint32_t priority, enum mc_dir dir, int family);
/* The policy whose SAs carry reqid (NULL: none). */
typedef const char *(*mc_reqid_namer)(void *ctx, uint32_t reqid);

struct mc_tally {
	char key[72];
	uint64_t count;
};

/* Dropped packets attributed to a policy, by direction and reason (the metrics' series). */
struct mc_policy_drops {
	char policy[72];
	char dir[4];
	char reason[48];
	uint64_t count;
};

/* Discarded packets of one flow and the policy that decided them, since the daemon started. */
struct mc_top_flow {
	char policy[72];
	char dir[4];
	char flow[160];
	uint64_t count;
};

/* Cumulative packets the per-flow hooks attributed, and what the counters said at the start,
 * by the counter they must agree with. */
enum mc_hook_counter { MC_HC_IN_BLOCK, MC_HC_IN_TMPL, MC_HC_OUT_BLOCK, MC_HC_N };

/* An SA the kernel removed at its hard lifetime (mc_mon_sa_expired). */
struct mc_expired_sa {
	struct mc_addr daddr;
	uint32_t spi;
	uint8_t proto;
};

/* The outbound hook's default idle time (mc_mon_config.out_hook_idle). */
#define MC_OUT_HOOK_IDLE 60

struct mc_monitor {
	/* configuration (mc_mon_configure) */
	unsigned acquire_interval; /* seconds: one ACQUIRE report per flow per interval */
	double rate, burst;        /* records per second written, and the burst allowed */
	mc_namer namer;
	mc_reqid_namer reqid_namer; /* may be NULL */
	void *namer_ctx;
	uint32_t own_portid;       /* our write socket: its changes are not drift */
	/* state */
	double tokens;
	int64_t last_refill;
	uint64_t suppressed_pending;
	struct flow_seen *seen;
	size_t nseen, capseen;
	uint32_t *slots; /* index into seen; a power of two in size */
	size_t nslots;
	int64_t seen_expired;
	struct mc_stats prev;
	bool have_prev;
	int64_t prev_time;
	struct sa_fail *sa_prev;
	size_t nsa_prev, capsa_prev;
	/* totals, whatever the rate limit let through */
	int64_t started;
	uint64_t records, suppressed, overruns, resyncs, drifts, repairs, events;
	uint64_t checks; /* passes that compared the kernel with the committed configuration */
	uint64_t written; /* records the rate limit let out, and the "suppressed N" records */
	struct mc_tally *by_reason, *by_policy;
	size_t nreason, capreason, npolicy, cappolicy;
	struct mc_policy_drops *by_policy_reason;
	size_t npoldrop, cappoldrop;
	/* per-flow hooks (mcpsecd's BPF program): when attached, the block counters they cover
	 * give no records of their own; a lasting difference between the two is reported */
	bool hook_in, hook_out;  /* attached now */
	bool hook_out_available; /* the outbound hook loaded (it is detached while idle) */
	uint64_t hooked[MC_HC_N], counted[MC_HC_N], gap_prev[MC_HC_N];
	bool have_counted;
	struct mc_top_flow *top;
	size_t ntop, captop;
	/* the outbound hook's pacing (mc_mon_pace_out) */
	int64_t out_hook_idle;   /* seconds without an outbound block before it is detached */
	uint64_t out_blocked;    /* XfrmOutPolBlock at the last pace */
	int64_t out_last_block;  /* when it last moved */
	/* SAs the kernel removed at their hard lifetime, never put back by a repair (the same key
	 * again would void the limit) until another configuration is committed */
	struct mc_expired_sa expired[64];
	size_t nexpired;
};

void mc_mon_init(struct mc_monitor *m, int64_t now);
void mc_mon_free(struct mc_monitor *m);

/* What the daemon sets once: the record rate and burst, how kernel objects are named, its own
 * netlink port (its changes are not drift), the outbound hook's idle time. */
struct mc_mon_config {
	double rate, burst;
	mc_namer namer;
	mc_reqid_namer reqid_namer; /* may be NULL */
	void *namer_ctx;
	uint32_t own_portid;
	int64_t out_hook_idle; /* seconds; 0: MC_OUT_HOOK_IDLE */
};
void mc_mon_configure(struct mc_monitor *m, const struct mc_mon_config *c);

/* What the daemon did, for the totals: a pass that compared the kernel with the committed
 * configuration, drift found, a repair made, an event overrun (which also resynchronises). */
enum mc_mon_tally { MC_MON_CHECK, MC_MON_DRIFT, MC_MON_REPAIR, MC_MON_OVERRUN };
void mc_mon_count(struct mc_monitor *m, enum mc_mon_tally t);

/* The per-flow hooks that loaded: inbound, and whether an outbound one can be attached (it is,
 * from now on, until mc_mon_pace_out detaches it). */
void mc_mon_hooks_loaded(struct mc_monitor *m, bool in, bool out, int64_t now);

/* Whether the outbound hook should be attached, detached or left: it costs every outbound route
 * lookup a trampoline call, so it runs only while XfrmOutPolBlock moves, and is detached after
 * out_hook_idle quiet seconds. st: the counters now; attached: whether it is. The caller then
 * calls mc_mon_hook_out when the change took effect. */
enum mc_hook_step { MC_HOOK_STAY, MC_HOOK_ATTACH, MC_HOOK_DETACH };
enum mc_hook_step mc_mon_pace_out(struct mc_monitor *m, int64_t now, const struct mc_stats *st, bool attached);

/* Whether the kernel removed sa at its hard lifetime (mc_mon_event saw it), so that a repair
 * does not put it back; mc_mon_forget_expired when another configuration is committed. */
bool mc_mon_sa_expired(const struct mc_monitor *m, const struct mc_xsa *sa);
void mc_mon_forget_expired(struct mc_monitor *m);

/* A repair's operations as drift: one group per rule and kind of change, with its first
 * operation as example, in the order of those (sorted, not compared pairwise: a flush of
 * 100,000 policies is 100,000 operations). name gives each operation's rule. Returns how many
 * groups *ret (to free) holds. */
struct mc_op_group {
	size_t first, count;
	enum mc_op_kind kind;
	const char *name;
};
size_t mc_drift_groups(const struct mc_diff *diff, const char *(*name)(const struct mc_op *o, const void *ctx),
		       const void *ctx, struct mc_op_group **ret);

/*
 * An event. ACQUIRE becomes a drop record (once per flow per acquire_interval), a hard or
 * soft SA expiry an sa-expire record (larval spi-0 expiries are ACQUIRE's own and ignored);
 * a hard expiry of one of mcpsec's SAs is remembered (mc_mon_sa_expired).
 * Returns true when it changed an object mcpsec owns (priority band or reqid) or flushed a
 * table, and was not caused by own_portid: the caller should check for drift.
 */
bool mc_mon_event(struct mc_monitor *m, const struct mc_event *ev, int64_t now, struct mc_records *out);

/* Whether ev added or removed an SA, any owner's (a hard expiry removes one; an update does
 * not change how many there are). */
bool mc_event_changes_sas(const struct mc_event *ev);

/* True when counters that need the kernel's policies and SAs to attribute have moved. */
bool mc_mon_needs_dump(const struct mc_monitor *m, const struct mc_stats *now);

/*
 * Counter deltas since the previous snapshot become drop records: block drops attributed to
 * the DISCARD policy whose last use moved when only one did (else the candidates are named),
 * plaintext-for-PROTECT to the inbound PROTECT policy likewise, ICV and replay failures to the
 * SA (and its policy) whose own counter moved, the rest as totals. k may be NULL when
 * mc_mon_needs_dump() said no. The first call only records the baseline.
 */
void mc_mon_counters(struct mc_monitor *m, int64_t now, const struct mc_stats *st, const struct mc_kstate *k,
		     struct mc_records *out);

/*
 * Flows the per-flow hooks saw refused (struct mc_drop_flows, lib/drops.h) become drop
 * records naming the policy that decided each: the first match in plan (the kernel's policies,
 * named; NULL when none could be read), by the same evaluator as `mcpsec test`. A packet freed
 * as NO_SOCKET is an IPsec drop only when the plan discards (or requires IPsec for) its flow;
 * a closed port the plan bypasses is not reported.
 */
struct mc_drop_flows;
/* The outbound hook attached (on) or detached from now on; st: the counters as they are now, the
 * new baseline the hook's flows are compared with. */
void mc_mon_hook_out(struct mc_monitor *m, bool on, const struct mc_stats *st);
void mc_mon_flows(struct mc_monitor *m, int64_t now, const struct mc_drop_flows *f, const struct mc_plan *plan,
		  struct mc_records *out);

/* Adds a record (totals always count it); false when the rate limit holds it back. */
bool mc_mon_admit(struct mc_monitor *m, const struct mc_record *r, int64_t now);
/* When records were held back and the bucket has refilled: a "suppressed N" record. */
bool mc_mon_suppressed_record(struct mc_monitor *m, int64_t now, struct mc_record *ret);

/* {"since", "events", "records", "suppressed", "overruns", "resyncs", "drifts", "repairs", "checks",
 *  "by_reason": {...}, "by_policy": {...}} */
void mc_mon_totals_json(const struct mc_monitor *m, struct mc_buf *out);

/* The same for people: "  dropped packets by reason: policy-block 3, no-sa 1" ... */
void mc_mon_totals_text(const struct mc_monitor *m, struct mc_buf *out);

/* A record as one JSON line (with netns, may be NULL) and back; as a line of text. */
void mc_record_json(const struct mc_record *r, const char *netns, struct mc_buf *out);
/* A record's flow fields from an exact flow selector (and its text into flow). */
void mc_record_set_flow(struct mc_record *r, const struct mc_sel *flow);
/* A record of event and reason (dir: MC_DIR_IN, MC_DIR_OUT, or -1 for none), count 1, no flow. */
void mc_record_init(struct mc_record *r, int64_t now, const char *event, const char *reason, int dir);
bool mc_record_parse(const char *line, struct mc_record *ret);
void mc_record_text(const struct mc_record *r, struct mc_buf *out);

/* What `mcpsec log` shows: records since a time, of a policy (any case), with an address (or
 * one in a range) as source or destination, with a port as source or destination port. */
struct mc_record_filter {
	int64_t since;
	const char *policy;  /* NULL: any */
	bool has_range;
	struct mc_range range;
	int port;            /* -1: any */
	bool staged;         /* only a staged list's records (else: all but those) */
};
bool mc_record_match(const struct mc_record *r, const struct mc_record_filter *f);

/* "udp fec0::100 port 40000 -> fec0::127 port 21" for an exact flow selector. */
void mc_flow_str(const struct mc_sel *flow, char *buf, size_t len);

#endif
