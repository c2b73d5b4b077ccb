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

/* The address span [lo, hi] of the prefix of address v (as mc_addr_to_u128 gives it). */
static void span_of(mc_u128 v, unsigned plen, int family, mc_u128 *lo, mc_u128 *hi)
{
	unsigned bits = mc_family_bits(family), shift = bits - plen;
	mc_u128 host = shift >= 128 ? ~(mc_u128)0 : ((mc_u128)1 << shift) - 1;

	*lo = v & ~host;
	*hi = *lo | host;
}

static void prefix_span(const struct mc_addr *p, unsigned plen, int family, mc_u128 *lo, mc_u128 *hi)
{
	span_of(mc_addr_to_u128(p), plen, family, lo, hi);
}

/* One side of the query as a span: the address, or the range to its `last`. */
static void query_span(const struct mc_addr *a, const struct mc_addr *last, mc_u128 *lo, mc_u128 *hi)
{
	*lo = mc_addr_to_u128(a);
	*hi = last->family ? mc_addr_to_u128(last) : *lo;
}

/* A kernel policy the query can meet, with its address spans in query terms (local, remote). */
struct cand {
	const struct mc_xpolicy *x;
	bool shadow; /* left out of the kernel: listed, never first */
	mc_u128 l_lo, l_hi, r_lo, r_hi;
};

/* The query's address spans, computed once: [0] local, [1] remote. */
struct qspan {
	mc_u128 lo[2], hi[2];
};

static bool cand_of(const struct mc_xpolicy *x, const struct mc_query *q, const struct qspan *qs, bool shadow,
		    struct cand *ret)
{
	int fam = q->local.family;
	bool out = q->dir == MC_DIR_OUT;
	mc_u128 s_lo, s_hi, d_lo, d_hi;

	if (x->dir != q->dir || x->sel.family != fam || (x->sel.proto != 0 && x->sel.proto != q->proto))
		return false;
	prefix_span(&x->sel.saddr, x->sel.plen_s, fam, &s_lo, &s_hi);
	prefix_span(&x->sel.daddr, x->sel.plen_d, fam, &d_lo, &d_hi);
	*ret = (struct cand){ x, shadow, out ? s_lo : d_lo, out ? s_hi : d_hi, out ? d_lo : s_lo, out ? d_hi : s_hi };
	return ret->l_lo <= qs->hi[0] && ret->l_hi >= qs->lo[0] && ret->r_lo <= qs->hi[1] && ret->r_hi >= qs->lo[1];
}

/* ---- the index by remote address (eval.h) ---- */

/* A remote prefix: its address masked to its length. */
struct ekey {
	mc_u128 addr;
	uint8_t dir, family, plen;
};

struct eslot {
	struct ekey k;
	size_t start, n; /* its policies: items[start .. start + n) */
	bool used;
};

struct mc_evalindex {
	/* what it was made for: made again when these change */
	const struct mc_xpolicy *pols, *shadow;
	size_t npols, nshadow;
	size_t *items; /* policy numbers (pols, then shadow), grouped by address */
	struct eslot *slots;
	size_t nslots;
	size_t *rest, nrest; /* the policies whose remote side is any address */
	uint8_t plens[129];  /* the remote prefix lengths there are, each once */
	size_t nplens;
};

void mc_evalindex_free(struct mc_evalindex *x)
{
	if (!x)
		return;
	free(x->items);
	free(x->slots);
	free(x->rest);
	free(x);
}

static const struct mc_xpolicy *policy_at(const struct mc_plan *p, size_t i)
{
	return i < p->npols ? &p->pols[i] : &p->shadow[i - p->npols];
}

/* The key of an address of family under plen bits of prefix. */
static void ekey_of(mc_u128 addr, enum mc_dir dir, int family, unsigned plen, struct ekey *k)
{
	mc_u128 lo, hi;

	span_of(addr, plen, family, &lo, &hi);
	memset(k, 0, sizeof(*k));
	k->addr = lo;
	k->dir = (uint8_t)dir;
	k->family = (uint8_t)family;
	k->plen = (uint8_t)plen;
}

/* The remote prefix of a kernel policy (the destination of an outbound one, else the source);
 * false for any address. */
static bool remote_prefix(const struct mc_xpolicy *x, struct ekey *k)
{
	const struct mc_addr *a = x->dir == MC_DIR_OUT ? &x->sel.daddr : &x->sel.saddr;
	unsigned plen = x->dir == MC_DIR_OUT ? x->sel.plen_d : x->sel.plen_s;

	if (!x->sel.family || !plen || plen > mc_family_bits(x->sel.family))
		return false;
	ekey_of(mc_addr_to_u128(a), x->dir, x->sel.family, plen, k);
	return true;
}

static size_t ekey_hash(const struct ekey *k, size_t nslots)
{
	uint64_t h = (uint64_t)k->addr ^ (uint64_t)(k->addr >> 64) * 0x9e3779b97f4a7c15ull;
	h ^= (uint64_t)k->plen << 16 | (uint64_t)k->dir << 8 | k->family;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return (size_t)h & (nslots - 1);
}

static bool ekey_eq(const struct ekey *a, const struct ekey *b)
{
	return a->addr == b->addr && a->dir == b->dir && a->family == b->family && a->plen == b->plen;
}

struct keyed {
	struct ekey k;
	size_t i;
};

static int cmp_keyed(const void *a, const void *b)
{
	const struct keyed *x = a, *y = b;
	if (x->k.addr != y->k.addr)
		return x->k.addr < y->k.addr ? -1 : 1;
	if (x->k.dir != y->k.dir)
		return x->k.dir < y->k.dir ? -1 : 1;
	if (x->k.family != y->k.family)
		return x->k.family < y->k.family ? -1 : 1;
	if (x->k.plen != y->k.plen)
		return x->k.plen < y->k.plen ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

static struct mc_evalindex *index_make(const struct mc_plan *p)
{
	size_t n = p->npols + p->nshadow, nk = 0;
	struct mc_evalindex *x = mc_calloc(1, sizeof(*x));
	struct keyed *kv = mc_calloc(n + 1, sizeof(*kv));

	x->pols = p->pols;
	x->shadow = p->shadow;
	x->npols = p->npols;
	x->nshadow = p->nshadow;
	x->rest = mc_calloc(n + 1, sizeof(*x->rest));
	x->items = mc_calloc(n + 1, sizeof(*x->items));
	bool have[129] = { false };
	for (size_t i = 0; i < n; i++) {
		if (remote_prefix(policy_at(p, i), &kv[nk].k)) {
			have[kv[nk].k.plen] = true;
			kv[nk++].i = i;
		} else {
			x->rest[x->nrest++] = i;
		}
	}
	for (unsigned l = 0; l <= 128; l++)
		if (have[l])
			x->plens[x->nplens++] = (uint8_t)l;
	if (nk > 1)
		qsort(kv, nk, sizeof(*kv), cmp_keyed);
	x->nslots = 16;
	while (x->nslots < 2 * nk)
		x->nslots *= 2;
	x->slots = mc_calloc(x->nslots, sizeof(*x->slots));
	for (size_t i = 0; i < nk; i++) {
		x->items[i] = kv[i].i;
		if (i && ekey_eq(&kv[i].k, &kv[i - 1].k))
			continue;
		size_t h = ekey_hash(&kv[i].k, x->nslots);
		while (x->slots[h].used)
			h = (h + 1) & (x->nslots - 1);
		size_t end = i;
		while (end < nk && ekey_eq(&kv[end].k, &kv[i].k))
			end++;
		x->slots[h] = (struct eslot){ kv[i].k, i, end - i, true };
	}
	free(kv);
	return x;
}

/* The index of p, made (or made again) when needed: the plan is otherwise read only. */
static const struct mc_evalindex *index_of(const struct mc_plan *p)
{
	struct mc_evalindex *x = p->eval_index;
	if (x && x->pols == p->pols && x->shadow == p->shadow && x->npols == p->npols && x->nshadow == p->nshadow)
		return x;
	mc_evalindex_free(x);
	return ((struct mc_plan *)p)->eval_index = index_make(p);
}

/* The policies of the remote address k's slot, or none. */
static const struct eslot *index_find(const struct mc_evalindex *x, const struct ekey *k)
{
	for (size_t h = ekey_hash(k, x->nslots); x->slots[h].used; h = (h + 1) & (x->nslots - 1))
		if (ekey_eq(&x->slots[h].k, k))
			return &x->slots[h];
	return NULL;
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
	mc_u128 *v;
	size_t n, cap;
};

/* Cuts where the span [start, end] begins and where it ends, inside [lo, hi]. */
static void add_span_cuts(struct cuts *c, mc_u128 start, mc_u128 end, mc_u128 lo, mc_u128 hi)
{
	if (start > lo && start <= hi)
		*MC_PUSH(&c->v, &c->n, &c->cap) = start;
	if (end < hi && end + 1 > lo)
		*MC_PUSH(&c->v, &c->n, &c->cap) = end + 1;
}

static void add_block_cuts(struct cuts *c, uint16_t v, uint16_t mask, unsigned lo, unsigned hi)
{
	add_span_cuts(c, v & mask, (unsigned)(v | (uint16_t)~mask), lo, hi);
}

static int cmp_u128(const void *a, const void *b)
{
	mc_u128 x = *(const mc_u128 *)a, y = *(const mc_u128 *)b;
	return x < y ? -1 : x > y;
}

static void finish_cuts(struct cuts *c, mc_u128 lo)
{
	*MC_PUSH(&c->v, &c->n, &c->cap) = lo;
	qsort(c->v, c->n, sizeof(*c->v), cmp_u128);
	size_t out = 0;
	for (size_t i = 0; i < c->n; i++)
		if (!out || c->v[i] != c->v[out - 1])
			c->v[out++] = c->v[i];
	c->n = out;
}

/* The last value of elementary interval i. */
static mc_u128 cut_end(const struct cuts *c, size_t i, mc_u128 hi)
{
	return i + 1 < c->n ? c->v[i + 1] - 1 : hi;
}

/* Kernel order: priority, then installed before left-out, then plan order. */
static int cmp_cand(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	if (x->x->priority != y->x->priority)
		return x->x->priority < y->x->priority ? -1 : 1;
	if (x->shadow != y->shadow)
		return x->shadow ? 1 : -1;
	return x->x < y->x ? -1 : x->x > y->x;
}

/* Outcome of one point; writes matching rule indexes (first-match order) into m. */
static size_t eval_point(const struct mc_plan *p, const struct mc_xpolicy *const *cand, size_t ncand,
			 unsigned sport, unsigned dport, size_t *m)
{
	size_t n = 0;

	for (size_t i = 0; i < ncand; i++) {
		const struct mc_xpolicy *x = cand[i];
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
	if (a->result != b->result || a->nmatching != b->nmatching || a->first != b->first ||
	    a->why_none != b->why_none)
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
	r->matching_never_first = mc_calloc(nm + 1, sizeof(*r->matching_never_first));
	r->nmatching = nm;
	for (size_t i = 0; i < nm; i++) {
		r->matching[i] = p->rules[m[i]].name;
		r->matching_action[i] = p->rules[m[i]].action;
		r->matching_never_first[i] = !p->rules[m[i]].nfrag;
	}
	if (nm) {
		r->first = p->rules[m[0]].name;
		r->result = p->rules[m[0]].action;
		r->clear_passes = p->rules[m[0]].clear_passes;
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

static void result_drop(struct mc_result *r)
{
	free(r->matching);
	free(r->matching_action);
	free(r->matching_never_first);
}

/* Drops results [from, ret->n). */
static void results_truncate(struct mc_results *ret, size_t from)
{
	for (size_t k = from; k < ret->n; k++)
		result_drop(&ret->r[k]);
	ret->n = from;
}

/* Whether groups a[0..n) and b[0..n) decide alike over the same sub-ranges; `upto` says how far
 * the ranges are compared: 0 ports only, 1 ports and the remote address. */
static bool same_group(const struct mc_result *a, const struct mc_result *b, size_t n, int upto)
{
	for (size_t k = 0; k < n; k++) {
		const struct mc_result *x = &a[k], *y = &b[k];
		if (!same_outcome(x, y) || x->local_lo != y->local_lo || x->local_hi != y->local_hi ||
		    x->remote_lo != y->remote_lo || x->remote_hi != y->remote_hi)
			return false;
		if (upto >= 1 && (!mc_addr_eq(&x->remote_addr_lo, &y->remote_addr_lo) ||
				  !mc_addr_eq(&x->remote_addr_hi, &y->remote_addr_hi)))
			return false;
	}
	return true;
}

/*
 * The row just built, ret->r[row_start..n), merged into the row before it when both decide alike
 * over the same inner sub-ranges; otherwise it becomes the row to compare the next one with.
 * Rows of local values (addr false) extend local_hi to hi; rows of local address cells (addr
 * true) extend local_addr_hi to hi_addr.
 */
static void merge_row(struct mc_results *ret, size_t *prev, size_t *prev_len, size_t row_start, bool first,
		      bool addr, unsigned hi, const struct mc_addr *hi_addr)
{
	size_t len = ret->n - row_start;
	bool same = !first && len == *prev_len;

	for (size_t k = 0; same && k < len && !addr; k++) {
		const struct mc_result *x = &ret->r[*prev + k], *y = &ret->r[row_start + k];
		same = same_outcome(x, y) && x->remote_lo == y->remote_lo && x->remote_hi == y->remote_hi;
	}
	if (same && addr)
		same = same_group(&ret->r[*prev], &ret->r[row_start], len, 1);
	if (!same) {
		*prev = row_start;
		*prev_len = len;
		return;
	}
	for (size_t k = 0; k < len; k++) {
		if (addr)
			ret->r[*prev + k].local_addr_hi = *hi_addr;
		else
			ret->r[*prev + k].local_hi = hi;
	}
	results_truncate(ret, row_start);
}

/* Appends the port/type grid of one address cell (whose candidates all cover it entirely). */
static void eval_ports(const struct mc_plan *p, const struct mc_query *q, const struct mc_xpolicy *const *cand,
		       size_t ncand, const struct mc_result *cell_proto, size_t *m, struct mc_results *ret)
{
	struct cuts cl = { 0 }, cr = { 0 };
	/* Which selector field each query dimension lands in. */
	bool l_is_s = mc_proto_is_icmp(q->proto) || q->dir == MC_DIR_OUT;
	bool ports = mc_proto_is_icmp(q->proto) || mc_proto_has_ports(q->proto);
	unsigned llo = ports ? q->local_lo : 0, lhi = ports ? q->local_hi : 0;
	unsigned rlo = ports ? q->remote_lo : 0, rhi = ports ? q->remote_hi : 0;

	for (size_t i = 0; i < ncand && ports; i++) {
		const struct mc_xpolicy *x = cand[i];
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
		unsigned a = (unsigned)cl.v[i], b = (unsigned)cut_end(&cl, i, lhi);
		size_t row_start = ret->n;
		for (size_t j = 0; j < cr.n; j++) {
			unsigned c = (unsigned)cr.v[j], d = (unsigned)cut_end(&cr, j, rhi);
			unsigned sport, dport;
			struct mc_result cell = *cell_proto;

			cell.local_lo = a;
			cell.local_hi = b;
			cell.remote_lo = c;
			cell.remote_hi = d;
			fields(q, a, c, &sport, &dport);
			size_t nm = eval_point(p, cand, ncand, sport, dport, m);
			fill(p, q, m, nm, &cell);
			struct mc_result *last = ret->n > row_start ? &ret->r[ret->n - 1] : NULL;
			if (last && same_outcome(last, &cell)) {
				last->remote_hi = d;
				result_drop(&cell);
			} else {
				*MC_PUSH(&ret->r, &ret->n, &ret->cap) = cell;
			}
		}
		merge_row(ret, &row_start_prev, &row_len_prev, row_start, i == 0, false, b, NULL);
	}
	free(cl.v);
	free(cr.v);
}

/*
 * Why the kernel consults no policy at all for IPv4 whose remote end is c, or NULL: such
 * traffic goes through lo, whose disable_xfrm skips the outbound lookup (xfrm_lookup on a
 * DST_NOXFRM route) and whose disable_policy skips the inbound check (IPSKB_NOPOLICY).
 */
static const char *lo4_exempt(const struct mc_plan *p, const struct mc_query *q, mc_u128 c)
{
	/* Under ipv6-only all IPv4 is outside IPsec already: the same answer, said once. */
	if (q->local.family != AF_INET || p->def == MC_DEF_IPV6_ONLY ||
	    (q->dir == MC_DIR_OUT ? p->lo4_xfrm_out : p->lo4_policy_in))
		return NULL;
	for (size_t i = 0; i < p->nlo4; i++)
		if (p->lo4[i].lo <= c && c <= p->lo4[i].hi)
			return q->dir == MC_DIR_OUT ?
				"IPv4 to this host itself goes through lo, where Linux applies no IPsec: "
				"net.ipv4.conf.lo.disable_xfrm" :
				"IPv4 from this host itself arrives on lo, where Linux applies no IPsec: "
				"net.ipv4.conf.lo.disable_policy";
	return NULL;
}

/* The one result of an address cell the kernel exempts: every port, no policy. */
static void push_exempt(const struct mc_query *q, const struct mc_result *cell_proto, const char *why,
			struct mc_results *ret)
{
	bool ports = mc_proto_is_icmp(q->proto) || mc_proto_has_ports(q->proto);
	struct mc_result r = *cell_proto;

	r.local_lo = ports ? q->local_lo : 0;
	r.local_hi = ports ? q->local_hi : 0;
	r.remote_lo = ports ? q->remote_lo : 0;
	r.remote_hi = ports ? q->remote_hi : 0;
	r.result = MC_BYPASS;
	r.first = NULL;
	r.why_none = why;
	r.nmatching = 0;
	r.matching = mc_calloc(1, sizeof(*r.matching));
	r.matching_action = mc_calloc(1, sizeof(*r.matching_action));
	r.matching_never_first = mc_calloc(1, sizeof(*r.matching_never_first));
	*MC_PUSH(&ret->r, &ret->n, &ret->cap) = r;
}

int mc_eval(const struct mc_plan *p, const struct mc_query *q, struct mc_results *ret)
{
	struct cuts al = { 0 }, ar = { 0 };
	int fam = q->local.family;

	memset(ret, 0, sizeof(*ret));
	struct qspan qs;
	query_span(&q->local, &q->local_last, &qs.lo[0], &qs.hi[0]);
	query_span(&q->remote, &q->remote_last, &qs.lo[1], &qs.hi[1]);
	/* The policies to try: for one remote address, those whose remote prefix holds it (one
	 * lookup a prefix length) and those of any remote address (the index); else every one.
	 * cmp_cand orders them, whatever the order here. */
	size_t ntry = p->npols + p->nshadow, *try = NULL;
	if (qs.lo[1] == qs.hi[1]) {
		const struct mc_evalindex *x = index_of(p);
		const struct eslot *sl[129];
		size_t nsl = 0;
		ntry = x->nrest;
		for (size_t l = 0; l < x->nplens; l++) {
			struct ekey k;
			if (x->plens[l] > mc_family_bits(fam))
				continue;
			ekey_of(qs.lo[1], q->dir, fam, x->plens[l], &k);
			if ((sl[nsl] = index_find(x, &k)))
				ntry += sl[nsl++]->n;
		}
		try = mc_calloc(ntry + 1, sizeof(*try));
		memcpy(try, x->rest, x->nrest * sizeof(*try));
		for (size_t j = 0, at = x->nrest; j < nsl; at += sl[j]->n, j++)
			memcpy(try + at, x->items + sl[j]->start, sl[j]->n * sizeof(*try));
	}
	struct cand *all = mc_calloc(ntry + 1, sizeof(*all));
	/* The candidates covering one address cell, in kernel order: pointers, as the inner loop
	 * runs over them once per port cell. */
	const struct mc_xpolicy **cell = mc_calloc(ntry + 1, sizeof(*cell));
	/* the rules matching a point, at most one per candidate */
	size_t nall = 0, *m = mc_calloc(ntry + 1, sizeof(size_t));
	for (size_t t = 0; t < ntry; t++) {
		size_t i = try ? try[t] : t;
		bool shadow = i >= p->npols;
		/* A default discard that a "bypass all" covers is no policy of the user's to list. */
		if (shadow && p->rules[p->shadow[i - p->npols].rule].kind != MC_RULE_USER)
			continue;
		if (cand_of(policy_at(p, i), q, &qs, shadow, &all[nall]))
			nall++;
	}
	if (nall > 1)
		qsort(all, nall, sizeof(*all), cmp_cand);

	/* Address cells: the query's spans cut where any candidate's prefix begins or ends, so
	 * that every candidate covers a cell entirely or not at all. */
	mc_u128 ql_lo = qs.lo[0], ql_hi = qs.hi[0], qr_lo = qs.lo[1], qr_hi = qs.hi[1];
	for (size_t i = 0; i < nall; i++) {
		add_span_cuts(&al, all[i].l_lo, all[i].l_hi, ql_lo, ql_hi);
		add_span_cuts(&ar, all[i].r_lo, all[i].r_hi, qr_lo, qr_hi);
	}
	for (size_t i = 0; fam == AF_INET && p->def != MC_DEF_IPV6_ONLY && i < p->nlo4; i++)
		add_span_cuts(&ar, p->lo4[i].lo, p->lo4[i].hi, qr_lo, qr_hi);
	finish_cuts(&al, ql_lo);
	finish_cuts(&ar, qr_lo);

	/* As eval_ports does for ports, one level up: within a local-address row, merge adjacent
	 * remote cells that decide alike; then merge identical rows. */
	size_t row_start_prev = 0, row_len_prev = 0;
	for (size_t i = 0; i < al.n; i++) {
		mc_u128 a = al.v[i], b = cut_end(&al, i, ql_hi);
		size_t row_start = ret->n, prev_group = SIZE_MAX, prev_len = 0;
		for (size_t j = 0; j < ar.n; j++) {
			mc_u128 c = ar.v[j], d = cut_end(&ar, j, qr_hi);
			struct mc_result proto = { 0 };
			size_t ncell = 0, group = ret->n;

			mc_addr_from_u128(fam, a, &proto.local_addr_lo);
			mc_addr_from_u128(fam, b, &proto.local_addr_hi);
			mc_addr_from_u128(fam, c, &proto.remote_addr_lo);
			mc_addr_from_u128(fam, d, &proto.remote_addr_hi);
			const char *exempt = lo4_exempt(p, q, c);
			for (size_t k = 0; k < nall && !exempt; k++)
				if (all[k].l_lo <= a && a <= all[k].l_hi && all[k].r_lo <= c && c <= all[k].r_hi)
					cell[ncell++] = all[k].x;
			if (exempt)
				push_exempt(q, &proto, exempt, ret);
			else
				eval_ports(p, q, cell, ncell, &proto, m, ret);
			size_t len = ret->n - group;
			if (prev_group != SIZE_MAX && len == prev_len &&
			    same_group(&ret->r[prev_group], &ret->r[group], len, 0)) {
				for (size_t k = 0; k < len; k++)
					ret->r[prev_group + k].remote_addr_hi = proto.remote_addr_hi;
				results_truncate(ret, group);
			} else {
				prev_group = group;
				prev_len = len;
			}
		}
		struct mc_addr hi;
		mc_addr_from_u128(fam, b, &hi);
		merge_row(ret, &row_start_prev, &row_len_prev, row_start, i == 0, true, 0, &hi);
	}
	free(all);
	free(try);
	free(cell);
	free(m);
	free(al.v);
	free(ar.v);
	return 0;
}

void mc_results_free(struct mc_results *r)
{
	for (size_t i = 0; i < r->n; i++)
		result_drop(&r->r[i]);
	free(r->r);
	memset(r, 0, sizeof(*r));
}

void mc_query_of_flow(const struct mc_sel *f, enum mc_dir dir, struct mc_query *q)
{
	bool out = dir == MC_DIR_OUT;

	memset(q, 0, sizeof(*q));
	q->proto = f->proto;
	q->dir = dir;
	q->local = out ? f->saddr : f->daddr;
	q->remote = out ? f->daddr : f->saddr;
	if (mc_proto_is_icmp(f->proto)) {
		q->local_lo = q->local_hi = f->sport; /* type */
		q->remote_lo = q->remote_hi = f->dport; /* code */
	} else if (mc_proto_has_ports(f->proto)) {
		q->local_lo = q->local_hi = out ? f->sport : f->dport;
		q->remote_lo = q->remote_hi = out ? f->dport : f->sport;
	}
}
