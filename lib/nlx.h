/* SPDX-License-Identifier: MIT */
/* The kernel edge: XFRM, route and nftables netlink. The only file that includes libnl headers. */
#ifndef MCPSEC_NLX_H
#define MCPSEC_NLX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "kernel.h"
#include "kobj.h"
#include "plan.h"

struct mc_setflow;
struct mc_nl;
struct mc_nlmon;

/* Opens the XFRM and route sockets of the current network namespace. Returns 0 or -errno. */
int mc_nl_open(struct mc_nl **ret);
void mc_nl_close(struct mc_nl *nl);
/* nl as the engine's kernel (lib/kernel.h): valid until mc_nl_close. */
struct mc_kernel *mc_nl_kernel(struct mc_nl *nl);

/* Dumps every policy and SA (not only mcpsec's). Returns 0 or -errno. */
int mc_nl_dump(struct mc_nl *nl, struct mc_kstate *ret);

/*
 * Sends ops in batches (many messages per send), checks every ack and records each op's
 * result in op->err. Returns 0 when all succeeded, else the first error (-errno). SA operations
 * come first and form a barrier: if one fails, no policy operation is sent (their err is
 * -ECANCELED). Within a phase, ops after a failure in the same batch were still tried (the
 * kernel handles each message on its own); op->err tells which.
 */
int mc_nl_exec(struct mc_nl *nl, struct mc_op *ops, size_t n);

/* A check mc_nl_exec makes before each batch (NULL: none): when it says stop, the rest is not
 * sent (err -ECANCELED), what was sent stays, and mc_nl_exec returns -EINTR. */
void mc_nl_set_stop(struct mc_nl *nl, bool (*stop)(void *ctx), void *ctx);

/* Source address the kernel's routing table picks to reach dst. */
int mc_nl_route_src(struct mc_nl *nl, const struct mc_addr *dst, struct mc_addr *ret);

/* Addresses of one family (AF_INET6, AF_INET) configured on the host, other than ::1 and
 * 127.0.0.1. Caller frees *ret. */
int mc_nl_own_addrs(struct mc_nl *nl, int family, struct mc_addr **ret, size_t *nret);
/* How many tc filters interface ifindex has under parent (a clsact qdisc's ingress or egress
 * point): 0 or -errno. */
int mc_nl_tc_filters(int ifindex, uint32_t parent, size_t *n);
/* Whether interface ifindex has a legacy ingress qdisc (which excludes clsact, and would take
 * both of the observer's filters): 0 or -errno. */
int mc_nl_tc_ingress_legacy(int ifindex, bool *legacy);

/*
 * nftables, family inet (the staging observer's counting table, cmd/mcpsecd/inner.c): the
 * elements of table's set, as flows with their counters (elements whose key is not an inner
 * flow's are left out), or table's named counters. 0 or -errno (-ENOENT: no such table or
 * set); *ret is the caller's to free.
 */
struct mc_nftcounter {
	char name[32];
	uint64_t packets, bytes;
};
int mc_nl_nft_elems(const char *table, const char *set, struct mc_setflow **ret, size_t *nret);
int mc_nl_nft_counters(const char *table, struct mc_nftcounter **ret, size_t *nret);
/* One NFT_MSG_NEWSETELEM message of len bytes: its elements appended to *v (an MC_PUSH array);
 * 0 or -EBADMSG (those before the malformed part are kept). */
int mc_nl_decode_setelems(const void *msg, size_t len, struct mc_setflow **v, size_t *n, size_t *cap);
/* One NFT_MSG_NEWOBJ message: a counter's name and values; 0 or -EBADMSG (another object). */
int mc_nl_decode_counter(const void *msg, size_t len, struct mc_nftcounter *ret);

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

/* The kernel's default policy for packets no policy matches, inbound and outbound (forwarding
 * is never touched). -EOPNOTSUPP (or the kernel's error) on kernels before 5.15. */
int mc_nl_get_default(struct mc_nl *nl, bool *in_block, bool *out_block);
int mc_nl_set_default(struct mc_nl *nl, bool in_block, bool out_block);

#endif
