/* SPDX-License-Identifier: MIT */
/*
 * Lint over the compiled plan, so that built-ins, default discards and the exact kernel order
 * take part. Every question is "which rules are the first match for some of these flows",
 * answered by partitioning flow boxes (flowspace.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "diag.h"
#include "flowspace.h"
#include "lint.h"
#include "model.h"
#include "plan.h"
#include "util.h"

/* Past this many residual boxes an analysis stops and says so: fragmentation grows with
 * policies that each cut a little out of a wide box (a deny-all list of 10,000 hosts). */
#define LINT_MAX_PIECES 65536
#define LINT_MAX_NAMED 5

struct lint {
	const struct mc_site *s;
	const struct mc_plan *plan;
	struct mc_diags *ds;
	struct mc_porder order;
	size_t *pol_start, *pol_idx; /* kernel policies of rule r: pol_idx[pol_start[r]..pol_start[r+1]) */
	bool incomplete;
	size_t *claim_of; /* rule → its slot in the claims being built (checked, never cleared) */
};

/* Which rules are the first match for some of the flows, in priority order. */
struct claim {
	size_t rule;
	struct mc_box example; /* one flow box the rule decides */
};

struct claims {
	struct claim *c;
	size_t n, cap;
	bool unclaimed;        /* some flows match no policy (the kernel lets them pass) */
	struct mc_box unclaimed_example;
	bool complete;
};

static void claims_free(struct claims *c)
{
	free(c->c);
	memset(c, 0, sizeof(*c));
}

static const struct mc_plan *g_plan; /* for qsort */

static int cmp_claim_prio(const void *a, const void *b)
{
	const struct mc_rule *x = &g_plan->rules[((const struct claim *)a)->rule];
	const struct mc_rule *y = &g_plan->rules[((const struct claim *)b)->rule];
	return x->priority < y->priority ? -1 : x->priority > y->priority;
}

/* The example shown: a piece of one well-known protocol if there is one ("udp fec0::8 -> any"
 * reads better than "protocols 0-5"), then the widest by source and destination addresses. */
static bool named_proto(const struct mc_box *b)
{
	mc_u128 p = b->lo[MC_D_PROTO];
	return p == b->hi[MC_D_PROTO] &&
	       (p == MC_PROTO_TCP || p == MC_PROTO_UDP || p == MC_PROTO_ICMP || p == MC_PROTO_ICMPV6);
}

static bool better_example(const struct mc_box *a, const struct mc_box *b)
{
	if (named_proto(a) != named_proto(b))
		return named_proto(a);
	for (int d = MC_D_SRC; d <= MC_D_DST; d++) {
		mc_u128 x = a->hi[d] - a->lo[d], y = b->hi[d] - b->lo[d];
		if (x != y)
			return x > y;
	}
	return false;
}

static void find_claims(struct lint *l, const char *what, enum mc_dir dir, const struct mc_boxes *in,
			uint32_t below, struct claims *ret)
{
	struct mc_pieces pc = { 0 };

	memset(ret, 0, sizeof(*ret));
	ret->complete = mc_partition(l->plan, &l->order, dir, in->b, in->n, below, LINT_MAX_PIECES, &pc) == 0;
	if (!ret->complete && !l->incomplete) {
		l->incomplete = true;
		mc_warnc(l->ds, mc_loc_file(l->s->file), "lint-incomplete",
			 "the analysis of %s stopped at %d flow boxes: some warnings may be missing", what,
			 LINT_MAX_PIECES);
	}
	for (size_t i = 0; i < pc.n; i++) {
		size_t r = pc.p[i].rule, k;
		if (r == SIZE_MAX) {
			if (!ret->unclaimed || better_example(&pc.p[i].box, &ret->unclaimed_example))
				ret->unclaimed_example = pc.p[i].box;
			ret->unclaimed = true;
			continue;
		}
		k = l->claim_of[r];
		if (k >= ret->n || ret->c[k].rule != r) {
			l->claim_of[r] = ret->n;
			*MC_PUSH(&ret->c, &ret->n, &ret->cap) = (struct claim){ r, pc.p[i].box };
		} else if (better_example(&pc.p[i].box, &ret->c[k].example))
			ret->c[k].example = pc.p[i].box;
	}
	mc_pieces_free(&pc);
	g_plan = l->plan;
	if (ret->n > 1)
		qsort(ret->c, ret->n, sizeof(*ret->c), cmp_claim_prio);
}

static struct mc_loc rule_loc(const struct lint *l, const struct mc_rule *r)
{
	if (r->src)
		return r->src->loc;
	return l->s->def_loc.line ? l->s->def_loc : mc_loc_file(l->s->file);
}

static const char *dir_word(enum mc_dir d)
{
	return d == MC_DIR_IN ? "inbound" : "outbound";
}

static void rule_label(const struct mc_rule *r, struct mc_buf *out)
{
	if (r->kind == MC_RULE_USER)
		mc_buf_printf(out, "policy '%s'", r->name);
	else if (r->kind == MC_RULE_BUILTIN)
		mc_buf_printf(out, "built-in '%s'", r->name);
	else
		mc_buf_printf(out, "the default discard '%s'", r->name);
}

/* The realizable flows of rule r's kernel policies. */
static void rule_boxes(const struct lint *l, size_t r, struct mc_boxes *out)
{
	for (size_t k = l->pol_start[r]; k < l->pol_start[r + 1]; k++) {
		struct mc_box b = mc_box_from_sel(&l->plan->pols[l->pol_idx[k]].sel);
		mc_box_realizable(&b, out);
	}
}

static void index_rules(struct lint *l)
{
	const struct mc_plan *p = l->plan;

	l->pol_start = mc_calloc(p->nrules + 2, sizeof(size_t));
	l->pol_idx = mc_calloc(p->npols + 1, sizeof(size_t));
	for (size_t i = 0; i < p->npols; i++)
		l->pol_start[p->pols[i].rule + 1]++;
	for (size_t r = 0; r < p->nrules; r++)
		l->pol_start[r + 1] += l->pol_start[r];
	size_t *fill = mc_calloc(p->nrules + 1, sizeof(size_t));
	for (size_t i = 0; i < p->npols; i++) {
		size_t r = p->pols[i].rule;
		l->pol_idx[l->pol_start[r] + fill[r]++] = i;
	}
	free(fill);
}

/* "'A', 'B' and 3 more". Built-ins and defaults are named only when no policy of the user's
 * is among them: that the loopback bypass also takes ::1 is true but beside the point. */
static void name_list(const struct lint *l, const struct claims *c, struct mc_buf *out)
{
	bool user = false;
	size_t shown = 0, skipped = 0;

	for (size_t i = 0; i < c->n; i++)
		user |= l->plan->rules[c->c[i].rule].kind == MC_RULE_USER;
	for (size_t i = 0; i < c->n; i++) {
		const struct mc_rule *r = &l->plan->rules[c->c[i].rule];
		if (user && r->kind != MC_RULE_USER)
			continue;
		if (shown == LINT_MAX_NAMED) {
			skipped++;
			continue;
		}
		mc_buf_printf(out, "%s'%s'%s", shown++ ? ", " : "", r->name,
			      r->kind == MC_RULE_BUILTIN ? " (built-in)" : r->kind == MC_RULE_DEFAULT ? " (default)" : "");
	}
	if (skipped)
		mc_buf_printf(out, " and %zu more", skipped);
}

/* ---- shadowed ---- */

static void check_shadowed(struct lint *l)
{
	for (size_t r = 0; r < l->plan->nrules; r++) {
		const struct mc_rule *rule = &l->plan->rules[r];
		struct mc_boxes in = { 0 };
		struct claims c;

		if (rule->kind != MC_RULE_USER || !rule->nfrag)
			continue; /* nfrag == 0: compile already said it repeats an earlier policy */
		rule_boxes(l, r, &in);
		if (!in.n) {
			mc_boxes_free(&in);
			continue;
		}
		find_claims(l, "shadowed policies", rule->dir, &in, rule->priority, &c);
		if (c.complete && !c.unclaimed && c.n) {
			struct mc_buf names = { 0 };
			name_list(l, &c, &names);
			mc_warnc(l->ds, rule_loc(l, rule), "shadowed",
				 "policy '%s' can never be the first match: all of its traffic is decided "
				 "earlier by %s", rule->name, mc_buf_str(&names));
			mc_buf_free(&names);
		}
		claims_free(&c);
		mc_boxes_free(&in);
	}
}

/* ---- traffic that should pass in clear ---- */

struct clear_check {
	const char *code, *what, *advice;
	int family, proto;
	unsigned type_lo, type_hi, code_lo, code_hi;
	bool protect_out_ok; /* outbound PROTECT does no harm (only inbound arrives in clear) */
};

static const struct clear_check clear_checks[] = {
	{ "nd-discarded", "ICMPv6 Neighbor Discovery (types 133-137)",
	  "IPv6 neighbours cannot be resolved and the host becomes unreachable; BYPASS icmpv6 "
	  "133-137 before it (MCP best practice)", AF_INET6, MC_PROTO_ICMPV6, 133, 137, 0, 0, false },
	{ "icmp4-discarded", "IPv4 ICMP",
	  "MCP's best practice is that ICMP bypasses IPsec on hosts that use IPsec for IPv4 (error "
	  "reports and path MTU discovery depend on it)", AF_INET, MC_PROTO_ICMP, 0, 255, 0, 255, false },
	{ "pmtu-discarded", "ICMPv6 Packet Too Big (type 2)",
	  "routers send it in clear; without it path MTU discovery fails and large transfers stall; "
	  "BYPASS icmpv6 type 2 before it", AF_INET6, MC_PROTO_ICMPV6, 2, 2, 0, 255, true },
	{ "pmtu-discarded", "ICMP Fragmentation Needed (type 3 code 4)",
	  "routers send it in clear; without it path MTU discovery fails and large transfers stall; "
	  "BYPASS icmp type 3 before it", AF_INET, MC_PROTO_ICMP, 3, 3, 4, 4, true },
};

static bool already(const size_t *v, size_t n, size_t x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

static void check_clear_traffic(struct lint *l)
{
	size_t *seen = NULL, nseen = 0, capseen = 0; /* (rule) warned by icmp4, not again for PMTU */

	for (size_t k = 0; k < MC_ARRAY_SIZE(clear_checks); k++) {
		const struct clear_check *cc = &clear_checks[k];
		struct mc_box b = mc_box_all(cc->family);

		b.lo[MC_D_PROTO] = b.hi[MC_D_PROTO] = (mc_u128)cc->proto;
		b.lo[MC_D_SPORT] = cc->type_lo;
		b.hi[MC_D_SPORT] = cc->type_hi;
		b.lo[MC_D_DPORT] = cc->code_lo;
		b.hi[MC_D_DPORT] = cc->code_hi;
		for (int d = 0; d < 2; d++) {
			struct mc_boxes in = { 0 };
			struct claims c;

			mc_boxes_push(&in, &b);
			find_claims(l, cc->what, (enum mc_dir)d, &in, UINT32_MAX, &c);
			for (size_t i = 0; i < c.n; i++) {
				const struct mc_rule *r = &l->plan->rules[c.c[i].rule];
				struct mc_buf who = { 0 }, eg = { 0 };

				if (r->action == MC_BYPASS || already(seen, nseen, c.c[i].rule))
					continue;
				if (r->action == MC_PROTECT && cc->protect_out_ok && d == MC_DIR_OUT)
					continue;
				if (!strcmp(cc->code, "icmp4-discarded"))
					*MC_PUSH(&seen, &nseen, &capseen) = c.c[i].rule;
				rule_label(r, &who);
				mc_box_str(&c.c[i].example, &eg);
				mc_warnc(l->ds, rule_loc(l, r), cc->code, "%s %s %s %s, for example %s: %s",
					 mc_buf_str(&who), r->action == MC_DISCARD ? "discards" : "requires IPsec for",
					 dir_word((enum mc_dir)d), cc->what, mc_buf_str(&eg), cc->advice);
				mc_buf_free(&who);
				mc_buf_free(&eg);
			}
			claims_free(&c);
			mc_boxes_free(&in);
		}
	}
	free(seen);
}

/* The flows rule r decides: its own, less what an earlier policy takes (MCP's "bypass TLS, then
 * protect the rest" protects only the rest). False when the analysis stopped short. */
static bool decided_boxes(struct lint *l, size_t r, struct mc_boxes *out)
{
	const struct mc_rule *rule = &l->plan->rules[r];
	struct mc_boxes own = { 0 };
	struct mc_pieces pc = { 0 };

	rule_boxes(l, r, &own);
	bool complete = mc_partition(l->plan, &l->order, rule->dir, own.b, own.n, rule->priority, LINT_MAX_PIECES,
				     &pc) == 0;
	for (size_t i = 0; i < pc.n; i++)
		if (pc.p[i].rule == SIZE_MAX)
			mc_boxes_push(out, &pc.p[i].box);
	if (!complete && !l->incomplete) {
		l->incomplete = true;
		mc_warnc(l->ds, mc_loc_file(l->s->file), "lint-incomplete",
			 "the analysis of counterpart policies stopped at %d flow boxes: some warnings may be "
			 "missing", LINT_MAX_PIECES);
	}
	mc_pieces_free(&pc);
	mc_boxes_free(&own);
	return complete;
}

/* ---- PROTECT without a counterpart ---- */

static void check_counterparts(struct lint *l)
{
	for (size_t r = 0; r < l->plan->nrules; r++) {
		const struct mc_rule *rule = &l->plan->rules[r];
		struct mc_boxes fwd = { 0 }, back = { 0 };
		struct claims c;

		if (rule->kind != MC_RULE_USER || rule->action != MC_PROTECT || !rule->nfrag)
			continue;
		/* Only what this policy decides needs protection coming back: reversing its whole
		 * selector would also ask for the flows an earlier policy bypasses. */
		if (!decided_boxes(l, r, &fwd) || !fwd.n) {
			mc_boxes_free(&fwd);
			continue;
		}
		for (size_t i = 0; i < fwd.n; i++) {
			struct mc_box rev = mc_box_reverse(&fwd.b[i]);
			mc_boxes_push(&back, &rev);
		}
		enum mc_dir other = rule->dir == MC_DIR_IN ? MC_DIR_OUT : MC_DIR_IN;
		find_claims(l, "counterpart policies", other, &back, UINT32_MAX, &c);
		struct mc_buf why = { 0 };
		for (size_t i = 0; i < c.n; i++) {
			const struct mc_rule *o = &l->plan->rules[c.c[i].rule];
			if (o->action == MC_PROTECT || o->kind == MC_RULE_BUILTIN)
				continue; /* built-ins apply to both directions alike */
			struct mc_buf eg = { 0 };
			mc_box_str(&c.c[i].example, &eg);
			mc_buf_printf(&why, "%s'%s' (%s) decides %s", why.len ? "; " : "", o->name,
				      mc_action_str(o->action), mc_buf_str(&eg));
			mc_buf_free(&eg);
		}
		if (c.unclaimed) {
			struct mc_buf eg = { 0 };
			mc_box_str(&c.unclaimed_example, &eg);
			mc_buf_printf(&why, "%sno policy matches %s (it passes in clear)", why.len ? "; " : "",
				      mc_buf_str(&eg));
			mc_buf_free(&eg);
		}
		if (why.len)
			mc_warnc(l->ds, rule_loc(l, rule), "no-counterpart",
				 "policy '%s' protects %s traffic, but the traffic coming back is not "
				 "protected: %s; add a PROTECT %s policy for the same peer and traffic",
				 rule->name, dir_word(rule->dir), mc_buf_str(&why), dir_word(other));
		mc_buf_free(&why);
		claims_free(&c);
		mc_boxes_free(&fwd);
		mc_boxes_free(&back);
	}
}

/* ---- ports usually protected by TLS ---- */

static const struct {
	int proto;
	unsigned port;
	const char *name;
} tls_ports[] = {
	{ MC_PROTO_TCP, 443, "https" },	  { MC_PROTO_UDP, 443, "https over QUIC" },
	{ MC_PROTO_TCP, 465, "smtps" },	  { MC_PROTO_TCP, 563, "nntps" },
	{ MC_PROTO_TCP, 636, "ldaps" },	  { MC_PROTO_TCP, 853, "dns over tls" },
	{ MC_PROTO_TCP, 989, "ftps-data" }, { MC_PROTO_TCP, 990, "ftps" },
	{ MC_PROTO_TCP, 992, "telnets" },  { MC_PROTO_TCP, 993, "imaps" },
	{ MC_PROTO_TCP, 995, "pop3s" },	  { MC_PROTO_TCP, 5061, "sips" },
	{ MC_PROTO_TCP, 8443, "https-alt" },
};

static void check_tls_ports(struct lint *l)
{
	for (size_t r = 0; r < l->plan->nrules; r++) {
		const struct mc_rule *rule = &l->plan->rules[r];
		struct mc_boxes own = { 0 };
		struct mc_buf found = { 0 };
		size_t nfound = 0;

		if (rule->kind != MC_RULE_USER || rule->action != MC_PROTECT || !rule->nfrag)
			continue;
		rule_boxes(l, r, &own);
		for (size_t t = 0; t < MC_ARRAY_SIZE(tls_ports); t++) {
			struct mc_boxes in = { 0 };
			struct claims c;

			for (size_t i = 0; i < own.n; i++)
				for (int side = MC_D_SPORT; side <= MC_D_DPORT; side++) {
					struct mc_box want = mc_box_all(own.b[i].family), x;
					want.lo[MC_D_PROTO] = want.hi[MC_D_PROTO] = (mc_u128)tls_ports[t].proto;
					/* The TLS port on one side, an ephemeral port on the other:
					 * "any local port to remote 20-21" is not TLS from port 443. */
					int other = side == MC_D_SPORT ? MC_D_DPORT : MC_D_SPORT;
					want.lo[side] = want.hi[side] = tls_ports[t].port;
					want.lo[other] = 1024;
					if (mc_box_intersect(&own.b[i], &want, &x))
						mc_boxes_push(&in, &x);
				}
			if (!in.n) {
				mc_boxes_free(&in);
				continue;
			}
			/* Only what no earlier policy takes: then this PROTECT is the first match. */
			find_claims(l, "TLS ports", rule->dir, &in, rule->priority, &c);
			if (c.unclaimed && nfound++ < LINT_MAX_NAMED)
				mc_buf_printf(&found, "%s%s %u (%s)", found.len ? ", " : "",
					      tls_ports[t].proto == MC_PROTO_TCP ? "tcp" : "udp", tls_ports[t].port,
					      tls_ports[t].name);
			claims_free(&c);
			mc_boxes_free(&in);
		}
		if (nfound > LINT_MAX_NAMED)
			mc_buf_printf(&found, " and %zu more", nfound - LINT_MAX_NAMED);
		if (found.len)
			mc_warnc(l->ds, rule_loc(l, rule), "tls-port",
				 "policy '%s' protects %s, usually protected by TLS already: MCP's best "
				 "practice is to BYPASS such traffic in a policy before it", rule->name,
				 mc_buf_str(&found));
		mc_buf_free(&found);
		mc_boxes_free(&own);
	}
}

/* ---- selectors that depend on whether a client bound first ---- */

/*
 * A TCP client that does not bind() is decided at local port 0, before the kernel picks its
 * port (model.h, mc_ports_take_zero). A local-port selector on an outbound policy that covers
 * part of the ephemeral range decides a client's connection only when the client bound first:
 * over IPv6 an unbound client's connection keeps what port 0 met. The same selector on the
 * peer's side is an inbound remote-port selector here. Judged against Linux's default range;
 * apply compiles against the namespace's own.
 */
static void check_unbound_ports(struct lint *l)
{
	for (size_t i = 0; i < l->s->npol; i++) {
		const struct mc_policy *p = &l->s->pol[i];
		const struct mc_portset *ps = p->dir == MC_DIR_OUT ? &p->local_ports : &p->remote_ports;

		if (p->proto != MC_PROTO_TCP || mc_ports_unbound(ps, MC_EPHEMERAL_LO, MC_EPHEMERAL_HI) != MC_UNBOUND_SOME)
			continue;
		struct mc_loc at = ps->loc.line ? ps->loc : p->loc;
		if (p->dir == MC_DIR_OUT)
			mc_warnc(l->ds, at, "unbound-client",
				 "policy '%s': its local-ports cover some of the ports the kernel picks for a TCP client "
				 "that does not bind() (the ephemeral range, %u-%u by default), not all. Such a client's "
				 "connect is decided at local port 0, before its port is chosen: a DISCARD met there fails it "
				 "(EPERM), and over IPv6 the whole connection keeps that decision. '%s' decides a client's connection only if it bound "
				 "first. Select the service by remote-ports, or cover the whole ephemeral range (then "
				 "an unbound client's connect meets '%s' too)", p->name, MC_EPHEMERAL_LO, MC_EPHEMERAL_HI,
				 p->name, p->name);
		else
			mc_warnc(l->ds, at, "unbound-client",
				 "policy '%s': its remote-ports cover some of the ports a peer's kernel picks for a TCP "
				 "client that does not bind() (the ephemeral range, %u-%u by default), not all. The "
				 "peer decides such a client's connect at local port 0, before its port is chosen (over "
				 "IPv6 for the whole connection), so whether its traffic is sent as '%s' expects depends "
				 "on whether it bound first. Select the service by local-ports, or cover the whole "
				 "ephemeral range", p->name, MC_EPHEMERAL_LO, MC_EPHEMERAL_HI, p->name);
	}
}

/* ---- a direction with no policy ---- */

/* MCP: "you must have at least one policy defined for each direction; otherwise, all traffic is
 * discarded by default". mcpsec installs the same, and says so rather than leave it implied. */
static void check_directions(struct lint *l)
{
	bool has[2] = { false, false };

	if (l->s->def == MC_DEF_BYPASS)
		return; /* IPv4 passes; IPv6 is still discarded, which the other checks show */
	for (size_t r = 0; r < l->plan->nrules; r++)
		if (l->plan->rules[r].kind == MC_RULE_USER)
			has[l->plan->rules[r].dir] = true;
	for (int d = 0; d < 2; d++)
		if (!has[d])
			mc_warnc(l->ds, mc_loc_file(l->s->file), "no-direction",
				 "the list has no %s policy: all %s %s traffic is discarded (only the built-in "
				 "bypasses pass: ::1, own IPv6 addresses, Neighbor Discovery%s); MCP requires at least one policy for "
				 "each direction", dir_word((enum mc_dir)d), dir_word((enum mc_dir)d),
				 l->s->def == MC_DEF_IPV6_ONLY ? "IPv6" : "IPv6 and IPv4",
				 l->s->def == MC_DEF_DENY_ALL ? " - not even those with deny-all" : "");
}

/* ---- ping and its source-address probe ---- */

/*
 * ping (iputils, both families) first connects a UDP socket to the destination (port 1025) to
 * learn its source address. connect() makes the kernel look up the outbound policy for that UDP
 * flow: a list that bypasses ICMP but discards other UDP to the host refuses it with EPERM, and
 * ping fails with "connect: Operation not permitted" before sending a single echo. Said, once
 * per family, when echo requests leave in clear (BYPASS) but the probe to the same hosts is
 * discarded.
 */
static void check_ping_probe_family(struct lint *l, int family)
{
	struct mc_box echo = mc_box_all(family), probe;
	struct mc_boxes in = { 0 };
	struct claims c;
	const char *ping = family == AF_INET6 ? "ping -6" : "ping";

	echo.lo[MC_D_PROTO] = echo.hi[MC_D_PROTO] = family == AF_INET6 ? MC_PROTO_ICMPV6 : MC_PROTO_ICMP;
	echo.lo[MC_D_SPORT] = echo.hi[MC_D_SPORT] = family == AF_INET6 ? 128 : 8; /* echo request */
	echo.lo[MC_D_DPORT] = 0;
	echo.hi[MC_D_DPORT] = 0;
	mc_boxes_push(&in, &echo);
	find_claims(l, "ping", MC_DIR_OUT, &in, UINT32_MAX, &c);
	mc_boxes_free(&in);
	for (size_t i = 0; i < c.n; i++) {
		const struct mc_rule *r = &l->plan->rules[c.c[i].rule];
		struct claims pc;
		if (r->action != MC_BYPASS || r->kind != MC_RULE_USER)
			continue;
		/* The probe: UDP from any port to port 1025 of the hosts this bypass lets ping. */
		probe = c.c[i].example;
		probe.lo[MC_D_PROTO] = probe.hi[MC_D_PROTO] = MC_PROTO_UDP;
		probe.lo[MC_D_SPORT] = 1;
		probe.hi[MC_D_SPORT] = 65535;
		probe.lo[MC_D_DPORT] = probe.hi[MC_D_DPORT] = 1025;
		mc_boxes_push(&in, &probe);
		find_claims(l, "ping", MC_DIR_OUT, &in, UINT32_MAX, &pc);
		mc_boxes_free(&in);
		for (size_t k = 0; k < pc.n; k++) {
			const struct mc_rule *d = &l->plan->rules[pc.c[k].rule];
			if (d->action != MC_DISCARD)
				continue;
			struct mc_buf eg = { 0 }, who = { 0 };
			mc_box_str(&pc.c[k].example, &eg);
			rule_label(d, &who);
			mc_warnc(l->ds, rule_loc(l, r), "ping-probe",
				 "policy '%s' lets %s send echo requests, but %s discards %s: %s first "
				 "connects a UDP socket to port 1025 of the host to pick its source address, and "
				 "fails with \"connect: Operation not permitted\"; BYPASS outbound udp to "
				 "remote-ports 1025 for those hosts (nothing is sent: connect() only asks the "
				 "policy), or ping with -I ADDRESS", r->name, ping, mc_buf_str(&who), mc_buf_str(&eg), ping);
			mc_buf_free(&eg);
			mc_buf_free(&who);
			break;
		}
		claims_free(&pc);
		break; /* once per family: the advice is the same */
	}
	claims_free(&c);
}

static void check_ping_probe(struct lint *l)
{
	check_ping_probe_family(l, AF_INET6);
	check_ping_probe_family(l, AF_INET);
}

void mc_lint(const struct mc_site *s, const struct mc_plan *plan, struct mc_diags *ds)
{
	struct lint l = { .s = s, .plan = plan, .ds = ds };

	mc_porder_build(plan, &l.order);
	l.claim_of = mc_calloc(plan->nrules + 1, sizeof(size_t));
	index_rules(&l);
	check_shadowed(&l);
	check_clear_traffic(&l);
	check_counterparts(&l);
	check_tls_ports(&l);
	check_unbound_ports(&l);
	check_directions(&l);
	check_ping_probe(&l);
	free(l.claim_of);
	free(l.pol_start);
	free(l.pol_idx);
	mc_porder_free(&l.order);
}
