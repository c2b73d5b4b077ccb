/* SPDX-License-Identifier: MIT */
/* The lockout guard (see guard.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "eval.h"
#include "guard.h"
#include "plan.h"
#include "util.h"

/*
 * /proc/net/tcp6 prints an address as 32 hex digits: four 32-bit words, each the host-order
 * value of 4 network-order bytes (%08X), so on a little-endian host every word's bytes come
 * out reversed. IPv4 is one such word. Ports are plain hex. (net/ipv6/tcp_ipv6.c get_tcp6_sock)
 */
static bool parse_hex_addr(const char *s, size_t len, struct mc_addr *ret)
{
	if (len != 8 && len != 32)
		return false;
	memset(ret, 0, sizeof(*ret));
	ret->family = len == 8 ? AF_INET : AF_INET6;
	for (size_t w = 0; w < len / 8; w++) {
		char word[9];
		char *end;
		memcpy(word, s + 8 * w, 8);
		word[8] = '\0';
		unsigned long v = strtoul(word, &end, 16);
		if (*end)
			return false;
		uint32_t host = (uint32_t)v;
		memcpy(ret->a + 4 * w, &host, 4); /* the host-order value's bytes are the wire bytes */
	}
	(void)mc_addr_unmap(ret);
	return true;
}

static bool parse_endpoint(const char *s, struct mc_addr *addr, uint16_t *port)
{
	const char *colon = strchr(s, ':');
	char *end;

	if (!colon || !parse_hex_addr(s, (size_t)(colon - s), addr))
		return false;
	unsigned long p = strtoul(colon + 1, &end, 16);
	if (end == colon + 1 || p > 0xffff)
		return false;
	*port = (uint16_t)p;
	return true;
}

/*
 * The socket states (include/net/tcp_states.h) in which a change can still cut traffic: TCP
 * connections being made (SYN-SENT, SYN-RECV), established, or closing with data still to go
 * either way (FIN-WAIT-1/2: the peer may still send; CLOSE-WAIT: we may; LAST-ACK, CLOSING:
 * the last segments are under way). A connected UDP socket shows as 1. TIME-WAIT, CLOSE and
 * LISTEN carry nothing of a connection.
 */
bool mc_conn_state_carries(int proto, unsigned state)
{
	if (proto != MC_PROTO_TCP)
		return state == 1;
	switch (state) {
	case 1: case 2: case 3: case 4: case 5: case 8: case 9: case 11:
		return true;
	default:
		return false;
	}
}

const char *mc_conn_state_str(int proto, unsigned state)
{
	static const char *const tcp[] = { "?", "ESTABLISHED", "SYN-SENT", "SYN-RECV", "FIN-WAIT-1", "FIN-WAIT-2",
					   "TIME-WAIT", "CLOSE", "CLOSE-WAIT", "LAST-ACK", "LISTEN", "CLOSING" };

	if (proto != MC_PROTO_TCP)
		return state == 1 ? "connected" : "?";
	return state < MC_ARRAY_SIZE(tcp) ? tcp[state] : "?";
}

int mc_conns_parse_proc(const char *text, int proto, struct mc_conns *ret)
{
	const char *line = text, *nl;
	int added = 0;

	if (strncmp(text, "  sl", 4) && strncmp(text, "   sl", 5) && strncmp(text, "sl", 2))
		return -EINVAL;
	for (line = strchr(text, '\n'); line && line[1]; line = nl) {
		char local[64], remote[64];
		unsigned state;
		line++;
		nl = strchr(line, '\n');
		/* "  0: 0100007F:0016 0100007F:C350 01 ..." */
		if (sscanf(line, " %*u: %63s %63s %x", local, remote, &state) != 3)
			continue;
		if (!mc_conn_state_carries(proto, state))
			continue;
		struct mc_conn c = { .proto = proto, .state = (uint8_t)state };
		if (!parse_endpoint(local, &c.local, &c.lport) || !parse_endpoint(remote, &c.remote, &c.rport))
			continue;
		if (mc_addr_is_any(&c.remote))
			continue;
		*MC_PUSH(&ret->c, &ret->n, &ret->cap) = c;
		added++;
	}
	return added;
}

void mc_conns_free(struct mc_conns *c)
{
	free(c->c);
	memset(c, 0, sizeof(*c));
}

void mc_cuts_free(struct mc_cuts *c)
{
	free(c->c);
	memset(c, 0, sizeof(*c));
}

/* What plan decides for c in direction dir: the action, the rule (NULL: none; *ri its index)
 * and, for PROTECT, its policy (NULL for a plan read from the kernel). */
static enum mc_action decide(const struct mc_plan *plan, const struct mc_conn *c, enum mc_dir dir,
			     const char **rule, size_t *ri, const struct mc_policy **pol)
{
	struct mc_query q = { .proto = c->proto, .dir = dir, .local = c->local, .remote = c->remote,
			      .local_lo = c->lport, .local_hi = c->lport, .remote_lo = c->rport, .remote_hi = c->rport };
	struct mc_results res;
	enum mc_action a;

	*rule = NULL;
	*ri = SIZE_MAX;
	*pol = NULL;
	if (!plan)
		return MC_BYPASS; /* nothing enforced: everything passes */
	mc_eval(plan, &q, &res);
	a = res.n ? res.r[0].result : MC_BYPASS;
	if (a == MC_PROTECT && res.r[0].clear_passes)
		a = MC_BYPASS; /* a phase-in lets clear through: it cuts nothing this way */
	if (res.n && res.r[0].first) {
		*rule = res.r[0].first;
		for (size_t i = 0; i < plan->nrules; i++)
			if (plan->rules[i].name == *rule) {
				*ri = i;
				*pol = plan->rules[i].src;
			}
	}
	mc_results_free(&res);
	return a;
}

/* The SPI a PROTECT policy uses for a flow: the one it sends with (out), its current one (in). */
static uint32_t flow_spi(const struct mc_policy *p, enum mc_dir dir)
{
	return dir == MC_DIR_OUT ? mc_policy_send_spi(p) : p->spi;
}

/*
 * Whether the SA new uses for a flow was already one old had: the one it sends with (out), or
 * one of those it accepts (in), among the SAs of old's rule orule (its current and next ones,
 * as compiled, or as the kernel holds them). A key rollover's steps keep this true (accept
 * adds, switch sends with the SA accept installed, retire keeps the next one); a new SPI out
 * of the blue does not. Whether the peer took the same step is check-peer's.
 */
static bool sa_known(const struct mc_policy *np, const struct mc_plan *old, size_t orule, enum mc_dir dir)
{
	if (!np)
		return true; /* only user policies protect: nothing to compare */
	uint32_t used[2] = { flow_spi(np, dir), 0 };
	if (dir == MC_DIR_IN && np->next.given)
		used[1] = np->next.spi;
	for (size_t j = 0; old && j < old->nsas; j++)
		for (int i = 0; i < 2; i++)
			if (old->sas[j].rule == orule && used[i] && old->sas[j].spi == used[i])
				return true;
	return false;
}

void mc_guard_check(const struct mc_plan *new_plan, const struct mc_plan *old_plan, const struct mc_conns *cs,
		    struct mc_cuts *ret)
{
	memset(ret, 0, sizeof(*ret));
	for (size_t i = 0; i < cs->n; i++) {
		for (int d = 0; d < 2; d++) {
			enum mc_dir dir = d ? MC_DIR_OUT : MC_DIR_IN;
			const char *nrule, *orule;
			size_t nri, ori;
			const struct mc_policy *np, *op;
			enum mc_action na = decide(new_plan, &cs->c[i], dir, &nrule, &nri, &np);
			enum mc_action oa = decide(old_plan, &cs->c[i], dir, &orule, &ori, &op);
			/* The old rule's SAs count even when it let clear through: a phase-in's accept
			 * installed the SAs that its protect and require steps use. */
			bool cut = (na == MC_DISCARD && oa != MC_DISCARD) ||
				   (na == MC_PROTECT && !sa_known(np, old_plan, ori, dir));
			if (!cut)
				continue;
			struct mc_cut *c = MC_PUSH(&ret->c, &ret->n, &ret->cap);
			*c = (struct mc_cut){ i, dir, na, nrule, np ? flow_spi(np, dir) : 0 };
			break; /* one cut names the connection; the first direction found is enough */
		}
	}
}

bool mc_conn_is_ssh(const struct mc_conn *c, const char *ssh_connection)
{
	char client[64], server[64];
	unsigned cport, sport;
	struct mc_addr ca, sa;

	if (!ssh_connection || c->proto != MC_PROTO_TCP ||
	    sscanf(ssh_connection, "%63s %u %63s %u", client, &cport, server, &sport) != 4)
		return false;
	if (!mc_addr_parse(client, &ca) || !mc_addr_parse(server, &sa))
		return false;
	(void)mc_addr_unmap(&ca);
	(void)mc_addr_unmap(&sa);
	return c->lport == sport && c->rport == cport && mc_addr_eq(&c->local, &sa) && mc_addr_eq(&c->remote, &ca);
}
