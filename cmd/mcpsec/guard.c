/* SPDX-License-Identifier: MIT */
/* The lockout guard's impure half: this namespace's sockets, and what to say about cuts. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../../lib/guard.h"
#include "../../lib/plan.h"
#include "../../lib/fileio.h"
#include "../../lib/util.h"
#include "cmd.h"

/* TCP connections that carry traffic and connected UDP sockets of the current namespace (/proc/net follows
 * setns). A table that cannot be read is skipped: the guard then knows less, never more. */
static void read_conns(struct mc_conns *ret)
{
	static const struct { const char *file; int proto; } tables[] = {
		{ "/proc/net/tcp", MC_PROTO_TCP }, { "/proc/net/tcp6", MC_PROTO_TCP },
		{ "/proc/net/udp", MC_PROTO_UDP }, { "/proc/net/udp6", MC_PROTO_UDP },
	};

	memset(ret, 0, sizeof(*ret));
	for (size_t i = 0; i < MC_ARRAY_SIZE(tables); i++) {
		char *text = NULL;
		size_t len = 0;
		if (mc_file_read(tables[i].file, MC_READ_NOFOLLOW, MC_FILE_MAX, &text, &len, NULL) == 0)
			(void)mc_conns_parse_proc(text, tables[i].proto, ret);
		free(text);
	}
}

size_t lockout_check(const struct mc_plan *new_plan, const struct mc_plan *old_plan, const char *verdict)
{
	struct mc_conns cs;
	struct mc_cuts cuts;
	const char *ssh = getenv("SSH_CONNECTION");
	char l[64], r[64];

	read_conns(&cs);
	mc_guard_check(new_plan, old_plan, &cs, &cuts);
	size_t settling = 0;
	for (size_t i = 0; i < cuts.n; i++)
		settling += cs.c[cuts.c[i].conn].proto == MC_PROTO_TCP && cs.c[cuts.c[i].conn].state != 1;
	if (cuts.n)
		fprintf(stderr, "mcpsec: %s: this change would cut %zu %sconnection%s%s:\n", verdict, cuts.n,
			settling ? "" : "established ", cuts.n == 1 ? "" : "s",
			settling ? " (some being made or closing, with data still to go)" : "");
	for (size_t i = 0; i < cuts.n; i++) {
		const struct mc_cut *c = &cuts.c[i];
		const struct mc_conn *k = &cs.c[c->conn];
		bool v6 = k->local.family == AF_INET6;
		bool established = k->proto != MC_PROTO_TCP || k->state == 1;
		fprintf(stderr, "  %s %s%s%s:%u <-> %s%s%s:%u%s%s%s: ", k->proto == MC_PROTO_TCP ? "tcp" : "udp",
			v6 ? "[" : "", mc_addr_str(&k->local, l, sizeof(l)), v6 ? "]" : "", k->lport, v6 ? "[" : "",
			mc_addr_str(&k->remote, r, sizeof(r)), v6 ? "]" : "", k->rport, established ? "" : " ",
			established ? "" : mc_conn_state_str(k->proto, k->state),
			mc_conn_is_ssh(k, ssh) ? " (YOUR SSH SESSION)" : "");
		if (c->action == MC_DISCARD && c->policy)
			fprintf(stderr, "%s traffic discarded by policy '%s'\n", c->dir == MC_DIR_IN ? "inbound" : "outbound",
				c->policy);
		else if (c->action == MC_DISCARD)
			fprintf(stderr, "%s traffic discarded: no policy matches\n", c->dir == MC_DIR_IN ? "inbound" : "outbound");
		else
			fprintf(stderr, "%s traffic newly protected by policy '%s' (spi %u): cut until the peer has that SA\n",
				c->dir == MC_DIR_IN ? "inbound" : "outbound", c->policy ? c->policy : "?", c->spi);
	}
	size_t n = cuts.n;
	mc_cuts_free(&cuts);
	mc_conns_free(&cs);
	return n;
}
