/* SPDX-License-Identifier: MIT */
/*
 * Policy test. The plan's kernel policies are what the kernel would consult; evaluating them
 * (not the YAML) shows exactly what will be installed. Each dimension of the query is cut at
 * the edges of every port/type/code block of the candidate policies, so within one
 * elementary cell every policy either matches all of it or none of it; adjacent cells with the
 * same outcome are then merged.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "eval.h"
#include "plan.h"
#include "util.h"

static bool prefix_has(const struct mc_addr *p, unsigned plen, const struct mc_addr *a)
{
	unsigned bits = mc_family_bits(a->family);
	mc_u128 x = mc_addr_to_u128(p), y = mc_addr_to_u128(a);

	if (plen == 0)
		return true;
	unsigned shift = bits - plen;
	return shift >= 128 || (x >> shift) == (y >> shift);
}

/* The packet's (sport, dport) value ranges for this direction: sport is the local port on the
 * way out and the remote port on the way in; ICMP type/code are always sport/dport. */
static bool addr_proto_match(const struct mc_xpolicy *x, const struct mc_query *q)
{
	const struct mc_addr *src = q->dir == MC_DIR_OUT ? &q->local : &q->remote;
	const struct mc_addr *dst = q->dir == MC_DIR_OUT ? &q->remote : &q->local;

	return x->dir == q->dir && x->sel.family == q->local.family &&
	       (x->sel.proto == 0 || x->sel.proto == q->proto) &&
	       prefix_has(&x->sel.saddr, x->sel.plen_s, src) && prefix_has(&x->sel.daddr, x->sel.plen_d, dst);
}

/* Field values as the kernel sees them: local/remote in query terms → sport/dport. */
static void fields(const struct mc_query *q, unsigned l, unsigned r, unsigned *sport, unsigned *dport)
{
	if (mc_proto_is_icmp(q->proto)) {
		*sport = l;
		*dport = r;
	} else if (!mc_proto_has_ports(q->proto)) {
		*sport = *dport = 0;
	} else if (q->dir == MC_DIR_OUT) {
		*sport = l;
		*dport = r;
	} else {
		*sport = r;
		*dport = l;
	}
}

static bool field_match(uint16_t v, uint16_t mask, unsigned x)
{
	return ((x ^ v) & mask) == 0;
}

/* Sorted unique cut points in [lo, hi]: each is the start of an elementary interval. */
struct cuts {
	unsigned *v;
	size_t n, cap;
};

static void add_block_cuts(struct cuts *c, uint16_t v, uint16_t mask, unsigned lo, unsigned hi)
{
	unsigned start = v & mask, end = (unsigned)(v | (uint16_t)~mask);

	if (start > lo && start <= hi)
		*MC_PUSH(&c->v, &c->n, &c->cap) = start;
	if (end + 1 > lo && end + 1 <= hi)
		*MC_PUSH(&c->v, &c->n, &c->cap) = end + 1;
}

static int cmp_uint(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
	return x < y ? -1 : x > y;
}

static void finish_cuts(struct cuts *c, unsigned lo)
{
	*MC_PUSH(&c->v, &c->n, &c->cap) = lo;
	qsort(c->v, c->n, sizeof(*c->v), cmp_uint);
	size_t out = 0;
	for (size_t i = 0; i < c->n; i++)
		if (!out || c->v[i] != c->v[out - 1])
			c->v[out++] = c->v[i];
	c->n = out;
}

static int cmp_pol_prio(const void *a, const void *b, void *ctx)
{
	const struct mc_plan *p = ctx;
	const struct mc_xpolicy *x = &p->pols[*(const size_t *)a], *y = &p->pols[*(const size_t *)b];
	if (x->priority != y->priority)
		return x->priority < y->priority ? -1 : 1;
	return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

/* Outcome of one point; writes matching rule indexes (plan order of priority) into m. */
static size_t eval_point(const struct mc_plan *p, const size_t *cand, size_t ncand, unsigned sport,
			 unsigned dport, size_t *m)
{
	size_t n = 0;

	for (size_t i = 0; i < ncand; i++) {
		const struct mc_xpolicy *x = &p->pols[cand[i]];
		/* The explicit "unmatched IPv4 passes" is ipsec.default, not a policy: the answer
		 * names no policy for it, as MCP's test does (see fill()). */
		if (p->rules[x->rule].kind == MC_RULE_DEFAULT && x->action == MC_BYPASS)
			continue;
		if (!field_match(x->sel.sport, x->sel.sport_mask, sport) ||
		    !field_match(x->sel.dport, x->sel.dport_mask, dport))
			continue;
		bool seen = false;
		for (size_t k = 0; k < n && !seen; k++)
			seen = m[k] == x->rule;
		if (!seen)
			m[n++] = x->rule;
	}
	return n;
}

static bool same_outcome(const struct mc_result *a, const struct mc_result *b)
{
	if (a->result != b->result || a->nmatching != b->nmatching || a->first != b->first)
		return false;
	for (size_t i = 0; i < a->nmatching; i++)
		if (a->matching[i] != b->matching[i])
			return false;
	return true;
}

static void fill(const struct mc_plan *p, const struct mc_query *q, const size_t *m, size_t nm,
		 struct mc_result *r)
{
	r->matching = mc_calloc(nm + 1, sizeof(*r->matching));
	r->matching_action = mc_calloc(nm + 1, sizeof(*r->matching_action));
	r->nmatching = nm;
	for (size_t i = 0; i < nm; i++) {
		r->matching[i] = p->rules[m[i]].name;
		r->matching_action[i] = p->rules[m[i]].action;
	}
	if (nm) {
		r->first = p->rules[m[0]].name;
		r->result = p->rules[m[0]].action;
		return;
	}
	r->first = NULL;
	if (q->local.family == AF_INET && p->def == MC_DEF_IPV6_ONLY) {
		r->result = MC_BYPASS;
		r->why_none = "IPv4 is outside IPsec (ipsec.default ipv6-only)";
	} else if (q->local.family == AF_INET && p->def == MC_DEF_BYPASS) {
		r->result = MC_BYPASS;
		r->why_none = "no policy matches; unmatched IPv4 passes (ipsec.default bypass)";
	} else {
		r->result = MC_DISCARD;
		r->why_none = "no policy matches: discarded";
	}
}

int mc_eval(const struct mc_plan *p, const struct mc_query *q, struct mc_results *ret)
{
	size_t *cand = mc_calloc(p->npols + 1, sizeof(size_t)), ncand = 0;
	size_t *m = mc_calloc(p->nrules + 1, sizeof(size_t));
	struct cuts cl = { 0 }, cr = { 0 };

	memset(ret, 0, sizeof(*ret));
	for (size_t i = 0; i < p->npols; i++)
		if (addr_proto_match(&p->pols[i], q))
			cand[ncand++] = i;
	qsort_r(cand, ncand, sizeof(*cand), cmp_pol_prio, (void *)p);

	/* Which selector field each query dimension lands in. */
	bool l_is_s = mc_proto_is_icmp(q->proto) || q->dir == MC_DIR_OUT;
	bool ports = mc_proto_is_icmp(q->proto) || mc_proto_has_ports(q->proto);
	unsigned llo = ports ? q->local_lo : 0, lhi = ports ? q->local_hi : 0;
	unsigned rlo = ports ? q->remote_lo : 0, rhi = ports ? q->remote_hi : 0;
	for (size_t i = 0; i < ncand && ports; i++) {
		const struct mc_xpolicy *x = &p->pols[cand[i]];
		add_block_cuts(&cl, l_is_s ? x->sel.sport : x->sel.dport, l_is_s ? x->sel.sport_mask : x->sel.dport_mask,
			       llo, lhi);
		add_block_cuts(&cr, l_is_s ? x->sel.dport : x->sel.sport, l_is_s ? x->sel.dport_mask : x->sel.sport_mask,
			       rlo, rhi);
	}
	finish_cuts(&cl, llo);
	finish_cuts(&cr, rlo);

	/* Row by row (local intervals); within a row, merge remote intervals; then merge rows
	 * whose whole row of outcomes is identical. */
	size_t row_start_prev = 0, row_len_prev = 0;
	for (size_t i = 0; i < cl.n; i++) {
		unsigned a = cl.v[i], b = i + 1 < cl.n ? cl.v[i + 1] - 1 : lhi;
		size_t row_start = ret->n;
		for (size_t j = 0; j < cr.n; j++) {
			unsigned c = cr.v[j], d = j + 1 < cr.n ? cr.v[j + 1] - 1 : rhi;
			unsigned sport, dport;
			struct mc_result cell = { .local_lo = a, .local_hi = b, .remote_lo = c, .remote_hi = d };

			fields(q, a, c, &sport, &dport);
			size_t nm = eval_point(p, cand, ncand, sport, dport, m);
			fill(p, q, m, nm, &cell);
			struct mc_result *last = ret->n > row_start ? &ret->r[ret->n - 1] : NULL;
			if (last && same_outcome(last, &cell)) {
				last->remote_hi = d;
				free(cell.matching);
				free(cell.matching_action);
			} else {
				*MC_PUSH(&ret->r, &ret->n, &ret->cap) = cell;
			}
		}
		size_t row_len = ret->n - row_start;
		bool same_row = i > 0 && row_len == row_len_prev;
		for (size_t k = 0; same_row && k < row_len; k++) {
			const struct mc_result *x = &ret->r[row_start_prev + k], *y = &ret->r[row_start + k];
			same_row = same_outcome(x, y) && x->remote_lo == y->remote_lo && x->remote_hi == y->remote_hi;
		}
		if (same_row) {
			for (size_t k = 0; k < row_len; k++) {
				ret->r[row_start_prev + k].local_hi = b;
				free(ret->r[row_start + k].matching);
				free(ret->r[row_start + k].matching_action);
			}
			ret->n = row_start;
		} else {
			row_start_prev = row_start;
			row_len_prev = row_len;
		}
	}
	free(cand);
	free(m);
	free(cl.v);
	free(cr.v);
	return 0;
}

void mc_results_free(struct mc_results *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->r[i].matching);
		free(r->r[i].matching_action);
	}
	free(r->r);
	memset(r, 0, sizeof(*r));
}
