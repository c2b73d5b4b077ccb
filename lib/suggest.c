/* SPDX-License-Identifier: MIT */
/*
 * A first list from real traffic (mcpsec stage --learn): the flows a staged table holds become
 * a site in the MCP style, one policy per peer, service and direction, grouped by peer and
 * service port, ending in the default. Pure.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "suggest.h"
#include "util.h"

/* Peers of one local service beyond this many become one policy for any remote. */
#define MANY_PEERS 8

/* One policy of the suggestion: who, what, which way, and how many flows it covers. */
struct spol {
	struct mc_addr peer; /* family 0: any remote (a local service with many peers) */
	uint8_t proto;
	bool local_service;   /* the service port is this host's (else the peer's) */
	unsigned port;        /* the service port; 0 for a protocol without ports */
	enum mc_dir dir;
	enum mc_action action;
	char enforced[72];    /* the enforced policy of a discarded flow */
	uint64_t flows, packets;
};

struct sset {
	struct spol *v;
	size_t n, cap;
};

static bool skipped(const struct mc_sflow *e, const struct mc_addr *local, const struct mc_addr *remote)
{
	/* What mcpsec always lets through (Neighbor Discovery, ::1, the host's own addresses) and
	 * IPv4 loopback need no policy. */
	if (!strncmp(e->enforced.policy, "BUILTIN-", 8))
		return true;
	if (remote->family == AF_INET && remote->a[0] == 127)
		return true;
	if (remote->family == AF_INET6 && (remote->a[0] == 0xff || (remote->a[0] == 0xfe && (remote->a[1] & 0xc0) == 0x80)))
		return true; /* multicast and link-local: ND and MLD, which the built-ins bypass */
	(void)local;
	return false;
}

static struct spol *find_or_add(struct sset *s, const struct spol *k)
{
	for (size_t i = 0; i < s->n; i++) {
		struct spol *p = &s->v[i];
		if (mc_addr_eq(&p->peer, &k->peer) && p->proto == k->proto && p->local_service == k->local_service &&
		    p->port == k->port && p->dir == k->dir && p->action == k->action)
			return p;
	}
	struct spol *p = MC_PUSH(&s->v, &s->n, &s->cap);
	*p = *k;
	p->flows = p->packets = 0;
	return p;
}

static int by_peer_port(const void *a, const void *b)
{
	const struct spol *x = a, *y = b;
	int c = memcmp(&x->peer, &y->peer, sizeof(x->peer));
	if (c)
		return c;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	if (x->local_service != y->local_service)
		return x->local_service ? -1 : 1;
	return (int)x->dir - (int)y->dir;
}

/* Local services with more than MANY_PEERS peers: one policy each way for any remote. */
static void widen(struct sset *s)
{
	for (size_t i = 0; i < s->n; i++) {
		struct spol *p = &s->v[i];
		if (!p->local_service || !p->peer.family)
			continue;
		size_t peers = 0;
		for (size_t j = 0; j < s->n; j++) {
			const struct spol *q = &s->v[j];
			peers += q->local_service && q->peer.family && q->proto == p->proto && q->port == p->port &&
				 q->dir == p->dir && q->action == p->action;
		}
		if (peers <= MANY_PEERS)
			continue;
		struct spol any = *p;
		memset(&any.peer, 0, sizeof(any.peer));
		struct spol *w = find_or_add(s, &any);
		p = &s->v[i]; /* find_or_add may have moved the array */
		for (size_t j = 0; j < s->n; j++) {
			struct spol *q = &s->v[j];
			if (q != w && q->local_service && q->peer.family && q->proto == p->proto && q->port == p->port &&
			    q->dir == p->dir && q->action == p->action) {
				w->flows += q->flows;
				w->packets += q->packets;
				q->flows = 0; /* merged */
			}
		}
	}
}

static void name_of(const struct spol *p, const char *peer, char *buf, size_t len)
{
	char pb[16], proto[16];
	size_t j = 0;

	for (const char *c = mc_proto_str(p->proto, pb, sizeof(pb)); *c && j + 1 < sizeof(proto); c++)
		proto[j++] = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
	proto[j] = '\0';
	const char *act = p->action == MC_DISCARD ? "DISCARD" : "BYPASS", *dir = p->dir == MC_DIR_IN ? "IN" : "OUT";
	/* BYPASS-TCP22-FROM-PEER3-IN: this host's port 22 for PEER3; BYPASS-TCP443-ON-PEER2-OUT:
	 * PEER2's port 443; BYPASS-ICMPV6-PEER2-IN: no ports. */
	if (p->port)
		snprintf(buf, len, "%s-%s%u-%s-%s-%s", act, proto, p->port, p->local_service ? "FROM" : "ON", peer, dir);
	else
		snprintf(buf, len, "%s-%s-%s-%s", act, proto, peer, dir);
}

/* The selector that names p's peer (PEER1 is peers[0]), or ANY for any remote. */
static void peer_label(const struct spol *p, const struct mc_addr *peers, size_t npeers, char *buf, size_t len)
{
	snprintf(buf, len, "ANY");
	for (size_t j = 0; j < npeers; j++)
		if (p->peer.family && mc_addr_eq(&peers[j], &p->peer))
			snprintf(buf, len, "PEER%zu", j + 1);
}

/* A BYPASS the suggestion adds though no flow showed it: to remote (a selector, or NULL for any),
 * its ICMP types (NULL: any) or the remote port (0: any). */
static void added_bypass(struct mc_buf *out, const char *name, enum mc_dir dir, const char *remote, int proto,
			 const char *icmp, unsigned rport)
{
	char pb[16];

	mc_buf_printf(out, "  - name: %s\n    direction: %s\n", name, mc_dir_str(dir));
	if (remote)
		mc_buf_printf(out, "    remote: %s\n", remote);
	mc_buf_printf(out, "    protocol: %s\n", mc_proto_str(proto, pb, sizeof(pb)));
	if (icmp)
		mc_buf_printf(out, "    icmp: %s\n", icmp);
	if (rport)
		mc_buf_printf(out, "    remote-ports: %u\n", rport);
	mc_buf_printf(out, "    action: %s\n", mc_action_str(MC_BYPASS));
}

void mc_suggest(const struct mc_stage *t, const struct mc_suggest_opts *o, struct mc_buf *out)
{
	struct sset s = { 0 };
	struct mc_addr *peers = NULL;
	size_t npeers = 0, cappeers = 0, skipped_flows = 0, protected_flows = 0, nprot = 0;
	char prot[16][72];

	for (size_t i = 0; i < t->n; i++) {
		const struct mc_sflow *e = &t->v[i];
		const struct mc_sel *f = &e->s.flow;
		bool out_dir = e->s.dir == MC_DIR_OUT;
		const struct mc_addr *local = out_dir ? &f->saddr : &f->daddr, *remote = out_dir ? &f->daddr : &f->saddr;
		if (skipped(e, local, remote)) {
			skipped_flows++;
			continue;
		}
		if (f->proto == MC_PROTO_ESP || f->proto == MC_PROTO_AH) {
			protected_flows++;
			bool known = !e->enforced.policy[0];
			for (size_t j = 0; j < nprot && !known; j++)
				known = !strcmp(prot[j], e->enforced.policy);
			if (!known && nprot < MC_ARRAY_SIZE(prot))
				snprintf(prot[nprot++], sizeof(prot[0]), "%s", e->enforced.policy);
			continue;
		}
		struct spol k = { .peer = *remote, .proto = f->proto, .dir = e->s.dir };
		k.action = e->enforced.action == MC_DISCARD ? MC_DISCARD : MC_BYPASS;
		if (k.action == MC_DISCARD)
			snprintf(k.enforced, sizeof(k.enforced), "%s", e->enforced.policy[0] ? e->enforced.policy : "the default");
		if (mc_proto_has_ports(f->proto)) {
			unsigned lport = out_dir ? f->sport : f->dport, rport = out_dir ? f->dport : f->sport;
			k.local_service = lport < rport;
			k.port = k.local_service ? lport : rport;
		}
		struct spol *p = find_or_add(&s, &k);
		p->flows++;
		p->packets += e->s.packets;
	}
	widen(&s);
	qsort(s.v, s.n, sizeof(*s.v), by_peer_port);

	mc_buf_printf(out, "# Suggested by 'mcpsec stage --learn' from the %zu flows mcpsecd saw in %" PRId64 " s%s%s.\n",
		      t->n, o->seconds, o->host ? " on " : "", o->host ? o->host : "");
	mc_buf_puts(out, "# A list to edit, not a list to trust: it allows the traffic seen while learning (one\n"
			 "# policy per peer, service and direction; and, marked \"not seen\" or \"not learned\", what\n"
			 "# ping and path MTU discovery need) and nothing that did not happen then: a\n"
			 "# monthly backup, a failover, a new client. Review every policy, make PROTECT what must\n"
			 "# be protected, then 'mcpsec stage' it and watch 'mcpsec status ipsec staged'.\n");
	if (t->evicted)
		mc_buf_printf(out, "# %" PRIu64 " flows made room in mcpsecd's table while learning and are not covered:\n"
				   "# learn for a shorter time.\n", t->evicted);
	if (protected_flows) {
		mc_buf_printf(out, "# %zu protected flows (ESP or AH) were seen as their SAs only; keep the committed PROTECT\n"
				   "# policies for them:", protected_flows);
		for (size_t i = 0; i < nprot; i++)
			mc_buf_printf(out, " %s", prot[i]);
		mc_buf_puts(out, "\n");
	}
	mc_buf_printf(out, "ipsec:\n  default: %s\n", mc_default_str(o->def));
	for (size_t i = 0; i < s.n; i++) {
		if (!s.v[i].flows || !s.v[i].peer.family)
			continue;
		bool known = false;
		for (size_t j = 0; j < npeers && !known; j++)
			known = mc_addr_eq(&peers[j], &s.v[i].peer);
		if (!known) {
			char a[64];
			*MC_PUSH(&peers, &npeers, &cappeers) = s.v[i].peer;
			mc_buf_printf(out, "%s  PEER%zu: %s\n", npeers == 1 ? "selectors:\n" : "", npeers,
				      mc_addr_str(&s.v[i].peer, a, sizeof(a)));
		}
	}
	mc_buf_puts(out, "policies:\n");
	for (size_t i = 0; i < s.n; i++) {
		const struct spol *p = &s.v[i];
		if (!p->flows)
			continue;
		char peer[32], name[96], pb[16];
		peer_label(p, peers, npeers, peer, sizeof(peer));
		name_of(p, peer, name, sizeof(name));
		mc_buf_printf(out, "  # %" PRIu64 " flow%s, %" PRIu64 " packet%s", p->flows, p->flows == 1 ? "" : "s", p->packets,
			      p->packets == 1 ? "" : "s");
		if (p->action == MC_DISCARD)
			mc_buf_printf(out, "; discarded now by %s, and kept so", p->enforced);
		mc_buf_printf(out, "\n  - name: %s\n    direction: %s\n", name, mc_dir_str(p->dir));
		if (p->peer.family)
			mc_buf_printf(out, "    remote: %s\n", peer);
		mc_buf_printf(out, "    protocol: %s\n", mc_proto_str(p->proto, pb, sizeof(pb)));
		if (p->port)
			mc_buf_printf(out, "    %s: %u\n", p->local_service ? "local-ports" : "remote-ports", p->port);
		mc_buf_printf(out, "    action: %s\n", mc_action_str(p->action));
	}
	/* ping -6 first connect()s a UDP socket to port 1025 of the host (no packet: the connect
	 * only asks the policy, so the observer never sees it). Where echo requests may go out,
	 * that is bypassed too, else ping fails with EPERM under the list (mcpsec check warns). */
	for (size_t i = 0; i < s.n; i++) {
		const struct spol *p = &s.v[i];
		if (!p->flows || p->proto != MC_PROTO_ICMPV6 || p->dir != MC_DIR_OUT || p->action != MC_BYPASS)
			continue;
		char peer[32], name[64];
		peer_label(p, peers, npeers, peer, sizeof(peer));
		snprintf(name, sizeof(name), "BYPASS-PING6-%s-OUT", peer);
		mc_buf_puts(out, "  # not seen (no packet is sent): ping -6 connects a UDP socket to port 1025 of the host first,\n"
				 "  # and fails with \"Operation not permitted\" without this\n");
		added_bypass(out, name, MC_DIR_OUT, p->peer.family ? peer : NULL, MC_PROTO_UDP, NULL, 1025);
	}
	/* What MCP's best practice asks for whether or not it was seen (mcpsec check warns without):
	 * Packet Too Big comes from routers, in clear, when a path's MTU shrinks; IPv4 ICMP where the
	 * list takes IPv4 in. */
	mc_buf_puts(out, "  # not learned: MCP's best practice (mcpsec check warns without them): routers send\n"
			 "  # Packet Too Big in clear, and path MTU discovery needs it\n");
	added_bypass(out, "BYPASS-ICMPV6-TOOBIG-IN", MC_DIR_IN, NULL, MC_PROTO_ICMPV6, "2", 0);
	added_bypass(out, "BYPASS-ICMPV6-TOOBIG-OUT", MC_DIR_OUT, NULL, MC_PROTO_ICMPV6, "2", 0);
	if (o->def == MC_DEF_DENY || o->def == MC_DEF_DENY_ALL) {
		mc_buf_puts(out, "  # IPv4 ICMP (error reports, path MTU discovery) bypasses IPsec\n");
		added_bypass(out, "BYPASS-ICMP-IN", MC_DIR_IN, NULL, MC_PROTO_ICMP, NULL, 0);
		added_bypass(out, "BYPASS-ICMP-OUT", MC_DIR_OUT, NULL, MC_PROTO_ICMP, NULL, 0);
		/* which lets ping send echo requests to any IPv4 host: its probe too */
		mc_buf_puts(out, "  # so ping may send to any IPv4 host: it connects a UDP socket to port 1025 of the host\n"
				 "  # first (nothing is sent), and fails with \"Operation not permitted\" without this;\n"
				 "  # drop it if everyone pings with -I ADDRESS\n");
		added_bypass(out, "BYPASS-PING4-OUT", MC_DIR_OUT, "0.0.0.0/0", MC_PROTO_UDP, NULL, 1025);
	}
	mc_buf_printf(out, "# Everything else: the default (%s) decides.\n", mc_default_str(o->def));
	if (skipped_flows)
		mc_buf_printf(out, "# (%zu flows needed no policy: Neighbor Discovery, loopback and the host's own addresses,\n"
				   "# which mcpsec always lets through.)\n", skipped_flows);
	free(peers);
	free(s.v);
}
