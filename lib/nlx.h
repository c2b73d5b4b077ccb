/* SPDX-License-Identifier: MIT */
/* The kernel edge: XFRM and route netlink. The only file that includes libnl headers. */
#ifndef MCPSEC_NLX_H
#define MCPSEC_NLX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "plan.h"

struct mc_nl;
struct mc_nlmon;

/* A policy as the kernel holds it. */
struct mc_kpolicy {
	struct mc_xpolicy x; /* x.rule is SIZE_MAX */
	uint32_t index;
	int ntmpl;
	uint8_t tmpl_mode;
	uint64_t add_time, use_time; /* seconds since the epoch; use_time 0 = never */
};

/* An SA as the kernel holds it (keys included: needed to diff and to roll back). */
struct mc_ksa {
	struct mc_xsa x; /* x.integrity / x.confidentiality NULL when not one of ours */
	char auth_name[64], enc_name[64];
	unsigned auth_trunc;
	uint8_t mode;
	uint32_t replay_window;
	uint64_t bytes, packets, add_time, use_time;
	uint64_t replay_fail, integrity_fail;
};

struct mc_kstate {
	struct mc_kpolicy *pols;
	size_t npols, cappols;
	struct mc_ksa *sas;
	size_t nsas, capsas;
};

enum mc_op_kind { MC_OP_SA_ADD, MC_OP_SA_DEL, MC_OP_POL_ADD, MC_OP_POL_UPD, MC_OP_POL_DEL };

/* One kernel operation. Objects are copies so that an op list outlives plan and dump. */
struct mc_op {
	enum mc_op_kind kind;
	struct mc_xpolicy pol;
	struct mc_xpolicy old_pol; /* POL_UPD: what it replaces (for rollback) */
	struct mc_xsa sa;
	const char *name; /* rule name for messages (borrowed) */
	int err;          /* after mc_nl_exec: 0 or -errno */
	char errmsg[128]; /* the kernel's extended ack text, when it gave one */
};

/* Opens the XFRM and route sockets of the current network namespace. Returns 0 or -errno. */
int mc_nl_open(struct mc_nl **ret);
void mc_nl_close(struct mc_nl *nl);

/* Dumps every policy and SA (not only mcpsec's). Returns 0 or -errno. */
int mc_nl_dump(struct mc_nl *nl, struct mc_kstate *ret);
void mc_kstate_free(struct mc_kstate *k);

/*
 * Sends ops in batches (many messages per send), checks every ack and records each op's
 * result in op->err. Returns 0 when all succeeded, else the first error (-errno). SA operations
 * come first and form a barrier: if one fails, no policy operation is sent (their err is
 * -ECANCELED). Within a phase, ops after a failure in the same batch were still tried (the
 * kernel handles each message on its own); op->err tells which.
 */
int mc_nl_exec(struct mc_nl *nl, struct mc_op *ops, size_t n);

/* Source address the kernel's routing table picks to reach dst. */
int mc_nl_route_src(struct mc_nl *nl, const struct mc_addr *dst, struct mc_addr *ret);

/* IPv6 addresses configured on the host, other than ::1. Caller frees *ret. */
int mc_nl_own_addrs6(struct mc_nl *nl, struct mc_addr **ret, size_t *nret);

/* The netlink port of nl's XFRM socket: events caused by our own requests carry it. */
uint32_t mc_nl_portid(const struct mc_nl *nl);

/* A non-blocking socket subscribed to XFRM ACQUIRE, EXPIRE, SA and POLICY events, with a
 * receive buffer of rcvbuf bytes. Returns 0 or -errno. */
int mc_nl_monitor_open(int rcvbuf, struct mc_nlmon **ret);
int mc_nl_monitor_fd(const struct mc_nlmon *m);
void mc_nl_monitor_close(struct mc_nlmon *m);
/* IPv6 address changes (rtnetlink), which move the own-address bypass: a second fd to poll
 * (-1 when unavailable), and whether anything changed since the last call (drains it). */
int mc_nl_monitor_addr_fd(const struct mc_nlmon *m);
bool mc_nl_monitor_addr_changed(struct mc_nlmon *m);
/* Decodes every pending message and calls cb for each. Returns the number of events, or
 * -ENOBUFS when the kernel had to drop some (the caller must resync), or another -errno. */
int mc_nl_monitor_read(struct mc_nlmon *m, void (*cb)(void *ctx, const struct mc_event *ev), void *ctx);

/*
 * Encodes one op as a netlink message into buf (returns its length, 0 if buf is too small).
 * The decoders read one message of a buffer of len bytes (a dump's SA or policy, or an event)
 * and refuse (-EINVAL) any message that does not fit in len or holds a malformed attribute:
 * the daemon and the dumps use them, tests and fuzzers feed them raw bytes.
 */
size_t mc_nl_encode(const struct mc_op *op, uint32_t seq, void *buf, size_t cap);
int mc_nl_decode_sa(const void *msg, size_t len, struct mc_ksa *ret);
int mc_nl_decode_policy(const void *msg, size_t len, struct mc_kpolicy *ret);
int mc_nl_decode_event(const void *msg, size_t len, struct mc_event *ret);

#endif
