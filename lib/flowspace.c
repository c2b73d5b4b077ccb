/* SPDX-License-Identifier: MIT */
/* Boxes over selector fields, box difference, and first-match partitions (see flowspace.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "flowspace.h"
#include "plan.h"
#include "util.h"

static mc_u128 family_max(int family)
{
	unsigned bits = mc_family_bits(family);
	return bits == 128 ? ~(mc_u128)0 : (((mc_u128)1 << bits) - 1);
}

struct mc_box mc_box_all(int family)
{
	struct mc_box b = { .family = (uint8_t)family };

	b.hi[MC_D_SRC] = b.hi[MC_D_DST] = family_max(family);
	b.hi[MC_D_PROTO] = 255;
	b.hi[MC_D_SPORT] = b.hi[MC_D_DPORT] = 65535;
	return b;
}

static void prefix_bounds(const struct mc_addr *a, unsigned plen, int family, mc_u128 *lo, mc_u128 *hi)
{
	unsigned bits = mc_family_bits(family);
	mc_u128 host = plen >= bits ? 0 : (plen == 0 ? family_max(family) : family_max(family) >> plen);

	*lo = mc_addr_to_u128(a) & ~host;
	*hi = *lo | host;
}

/* Our selectors' masks are prefix-shaped (mc_port_blocks), so each is one range. */
static void mask_bounds(uint16_t value, uint16_t mask, mc_u128 *lo, mc_u128 *hi)
{
	*lo = value & mask;
	*hi = (uint16_t)(*lo | (uint16_t)~mask);
}

struct mc_box mc_box_from_sel(const struct mc_sel *s)
{
	struct mc_box b = mc_box_all(s->family);

	prefix_bounds(&s->saddr, s->plen_s, s->family, &b.lo[MC_D_SRC], &b.hi[MC_D_SRC]);
	prefix_bounds(&s->daddr, s->plen_d, s->family, &b.lo[MC_D_DST], &b.hi[MC_D_DST]);
	if (s->proto)
		b.lo[MC_D_PROTO] = b.hi[MC_D_PROTO] = s->proto;
	mask_bounds(s->sport, s->sport_mask, &b.lo[MC_D_SPORT], &b.hi[MC_D_SPORT]);
	mask_bounds(s->dport, s->dport_mask, &b.lo[MC_D_DPORT], &b.hi[MC_D_DPORT]);
	return b;
}

bool mc_box_intersect(const struct mc_box *a, const struct mc_box *b, struct mc_box *ret)
{
	if (a->family != b->family)
		return false;
	for (int d = 0; d < MC_NDIM; d++)
		if (a->lo[d] > b->hi[d] || b->lo[d] > a->hi[d])
			return false;
	if (ret) {
		ret->family = a->family;
		for (int d = 0; d < MC_NDIM; d++) {
			ret->lo[d] = a->lo[d] > b->lo[d] ? a->lo[d] : b->lo[d];
			ret->hi[d] = a->hi[d] < b->hi[d] ? a->hi[d] : b->hi[d];
		}
	}
	return true;
}

void mc_boxes_push(struct mc_boxes *s, const struct mc_box *b)
{
	*MC_PUSH(&s->b, &s->n, &s->cap) = *b;
}

void mc_boxes_free(struct mc_boxes *s)
{
	free(s->b);
	*s = (struct mc_boxes){ 0 };
}

/* Peels off, dimension by dimension, the slabs of a below and above b; what is left of a
 * after the last dimension is a ∩ b. */
void mc_box_subtract(const struct mc_box *a, const struct mc_box *b, struct mc_boxes *out)
{
	struct mc_box rest = *a;

	if (!mc_box_intersect(a, b, NULL)) {
		mc_boxes_push(out, a);
		return;
	}
	for (int d = 0; d < MC_NDIM; d++) {
		if (rest.lo[d] < b->lo[d]) {
			struct mc_box slab = rest;
			slab.hi[d] = b->lo[d] - 1;
			mc_boxes_push(out, &slab);
			rest.lo[d] = b->lo[d];
		}
		if (rest.hi[d] > b->hi[d]) {
			struct mc_box slab = rest;
			slab.lo[d] = b->hi[d] + 1;
			mc_boxes_push(out, &slab);
			rest.hi[d] = b->hi[d];
		}
	}
}

static int icmp_proto(int family)
{
	return family == AF_INET ? MC_PROTO_ICMP : MC_PROTO_ICMPV6;
}

struct mc_box mc_box_reverse(const struct mc_box *a)
{
	struct mc_box r = *a;
	bool icmp = a->lo[MC_D_PROTO] == a->hi[MC_D_PROTO] && a->lo[MC_D_PROTO] == (mc_u128)icmp_proto(a->family);

	r.lo[MC_D_SRC] = a->lo[MC_D_DST];
	r.hi[MC_D_SRC] = a->hi[MC_D_DST];
	r.lo[MC_D_DST] = a->lo[MC_D_SRC];
	r.hi[MC_D_DST] = a->hi[MC_D_SRC];
	if (!icmp) {
		r.lo[MC_D_SPORT] = a->lo[MC_D_DPORT];
		r.hi[MC_D_SPORT] = a->hi[MC_D_DPORT];
		r.lo[MC_D_DPORT] = a->lo[MC_D_SPORT];
		r.hi[MC_D_DPORT] = a->hi[MC_D_SPORT];
	}
	return r;
}

static void push_clipped(const struct mc_box *a, unsigned plo, unsigned phi, unsigned flo, unsigned fhi,
			 struct mc_boxes *out)
{
	struct mc_box want = mc_box_all(a->family), x;

	want.lo[MC_D_PROTO] = plo;
	want.hi[MC_D_PROTO] = phi;
	want.lo[MC_D_SPORT] = want.lo[MC_D_DPORT] = flo;
	want.hi[MC_D_SPORT] = want.hi[MC_D_DPORT] = fhi;
	if (mc_box_intersect(a, &want, &x))
		mc_boxes_push(out, &x);
}

void mc_box_realizable(const struct mc_box *a, struct mc_boxes *out)
{
	unsigned icmp = (unsigned)icmp_proto(a->family), next = 0;

	for (unsigned p = 0; p <= 255; p++) {
		bool ports = mc_proto_has_ports((int)p);
		if (!ports && p != icmp)
			continue;
		if (next < p)
			push_clipped(a, next, p - 1, 0, 0, out); /* protocols without ports */
		if (ports)
			push_clipped(a, p, p, 1, 65535, out);
		else
			push_clipped(a, p, p, 0, 255, out); /* ICMP type and code */
		next = p + 1;
	}
	if (next <= 255)
		push_clipped(a, next, 255, 0, 0, out);
}

void mc_pieces_free(struct mc_pieces *p)
{
	free(p->p);
	*p = (struct mc_pieces){ 0 };
}

static const struct mc_plan *g_sort_plan;

static int cmp_prio(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	uint32_t px = g_sort_plan->pols[x].priority, py = g_sort_plan->pols[y].priority;

	if (px != py)
		return px < py ? -1 : 1;
	return x < y ? -1 : x > y;
}

static const struct mc_box *g_sort_boxes;
static int g_sort_dim;

static int cmp_lo(const void *a, const void *b)
{
	mc_u128 x = g_sort_boxes[*(const size_t *)a].lo[g_sort_dim], y = g_sort_boxes[*(const size_t *)b].lo[g_sort_dim];
	return x < y ? -1 : x > y;
}

static void ivindex_build(const struct mc_box *boxes, size_t n, int dim, struct mc_ivindex *ix)
{
	memset(ix, 0, sizeof(*ix));
	ix->n = n;
	ix->size = 1;
	while (ix->size < n)
		ix->size *= 2;
	ix->pos = mc_calloc(n + 1, sizeof(*ix->pos));
	ix->lo = mc_calloc(n + 1, sizeof(*ix->lo));
	ix->maxhi = mc_calloc(2 * ix->size, sizeof(*ix->maxhi));
	for (size_t i = 0; i < n; i++)
		ix->pos[i] = i;
	g_sort_boxes = boxes;
	g_sort_dim = dim;
	qsort(ix->pos, n, sizeof(*ix->pos), cmp_lo);
	for (size_t i = 0; i < n; i++) {
		ix->lo[i] = boxes[ix->pos[i]].lo[dim];
		ix->maxhi[ix->size + i] = boxes[ix->pos[i]].hi[dim];
	}
	for (size_t i = ix->size - 1; i >= 1; i--)
		ix->maxhi[i] = ix->maxhi[2 * i] > ix->maxhi[2 * i + 1] ? ix->maxhi[2 * i] : ix->maxhi[2 * i + 1];
}

static void ivindex_free(struct mc_ivindex *ix)
{
	free(ix->pos);
	free(ix->lo);
	free(ix->maxhi);
	memset(ix, 0, sizeof(*ix));
}

/* Appends the positions among sorted entries [0, m) whose hi >= qlo, below tree node `node`
 * (covering leaves [l, r)); false once more than cap were found (the caller then uses another
 * dimension or none). */
static bool ivindex_collect(const struct mc_ivindex *ix, size_t node, size_t l, size_t r, size_t m, mc_u128 qlo,
			    size_t cap, size_t **out, size_t *n, size_t *outcap)
{
	if (l >= m || ix->maxhi[node] < qlo)
		return true;
	if (r - l == 1) {
		if (*n >= cap)
			return false;
		*MC_PUSH(out, n, outcap) = ix->pos[l];
		return true;
	}
	size_t mid = (l + r) / 2;
	return ivindex_collect(ix, 2 * node, l, mid, m, qlo, cap, out, n, outcap) &&
	       ivindex_collect(ix, 2 * node + 1, mid, r, m, qlo, cap, out, n, outcap);
}

/* Positions of the boxes that meet [qlo, qhi]: at most cap of them, else false. Those with
 * lo <= qhi are a prefix of the lo order (a binary search); the tree then finds the ones among
 * them whose hi >= qlo. */
static bool ivindex_query(const struct mc_ivindex *ix, mc_u128 qlo, mc_u128 qhi, size_t cap, size_t **out, size_t *n,
			  size_t *outcap)
{
	size_t m = 0, hi = ix->n;

	*n = 0;
	while (m < hi) {
		size_t mid = (m + hi) / 2;
		if (ix->lo[mid] <= qhi)
			m = mid + 1;
		else
			hi = mid;
	}
	return m == 0 || ivindex_collect(ix, 1, 0, ix->size, m, qlo, cap, out, n, outcap);
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return x < y ? -1 : x > y;
}

/*
 * The boxes meeting b, found through whichever dimension's index names fewest (addresses for
 * policies to distinct hosts, ports for policies to one host): sorted positions in *best, or
 * false when every dimension names more than limit. Caps grow by 4 from 16, so a search costs
 * about what its answer does, never a walk over all boxes.
 */
static bool query_best(const struct mc_ivindex ix[MC_NDIM], const struct mc_box *b, size_t limit, size_t **best,
		       size_t *nbest, size_t *capbest, size_t **tmp, size_t *captmp)
{
	bool found = false;

	for (size_t cap = 16;; cap *= 4) {
		if (cap > limit)
			cap = limit;
		for (int d = 0; d < MC_NDIM; d++) {
			size_t n, *t, tc;
			if (!ivindex_query(&ix[d], b->lo[d], b->hi[d], found ? *nbest : cap, tmp, &n, captmp))
				continue;
			t = *best;
			tc = *capbest;
			*best = *tmp;
			*capbest = *captmp;
			*tmp = t;
			*captmp = tc;
			*nbest = n;
			found = true;
		}
		if (found || cap == limit)
			break;
	}
	if (found && *nbest)
		qsort(*best, *nbest, sizeof(**best), cmp_size);
	return found;
}


void mc_porder_build(const struct mc_plan *plan, struct mc_porder *ret)
{
	memset(ret, 0, sizeof(*ret));
	for (int d = 0; d < 2; d++) {
		ret->idx[d] = mc_calloc(plan->npols + 1, sizeof(size_t));
		for (size_t i = 0; i < plan->npols; i++)
			if ((int)plan->pols[i].dir == d)
				ret->idx[d][ret->n[d]++] = i;
		g_sort_plan = plan;
		qsort(ret->idx[d], ret->n[d], sizeof(size_t), cmp_prio);
		ret->box[d] = mc_calloc(ret->n[d] + 1, sizeof(struct mc_box));
		for (size_t k = 0; k < ret->n[d]; k++)
			ret->box[d][k] = mc_box_from_sel(&plan->pols[ret->idx[d][k]].sel);
		for (int dim = 0; dim < MC_NDIM; dim++)
			ivindex_build(ret->box[d], ret->n[d], dim, &ret->by_dim[d][dim]);
	}
}

void mc_porder_free(struct mc_porder *o)
{
	for (int d = 0; d < 2; d++) {
		free(o->idx[d]);
		free(o->box[d]);
		for (int dim = 0; dim < MC_NDIM; dim++)
			ivindex_free(&o->by_dim[d][dim]);
	}
	memset(o, 0, sizeof(*o));
}

int mc_partition(const struct mc_plan *plan, const struct mc_porder *o, enum mc_dir dir,
		 const struct mc_box *in, size_t nin, uint32_t below, size_t max_pieces,
		 struct mc_pieces *ret)
{
	struct mc_boxes cur = { 0 };
	size_t *cand = NULL, ncand = 0, capcand = 0, *alt = NULL, capalt = 0;
	bool all = true;
	int rc = 0;

	for (size_t i = 0; i < nin; i++)
		mc_boxes_push(&cur, &in[i]);
	/* Only policies that meet the input's bounding box can take any of it (the residue stays
	 * inside it). Find them by the dimension that names fewest (addresses for policies to
	 * distinct hosts, ports for policies to one host): 20,000 policies then cost n log n to
	 * lint, not n². */
	if (nin) {
		struct mc_box bb = in[0];
		for (size_t i = 1; i < nin; i++)
			for (int d = 0; d < MC_NDIM; d++) {
				if (in[i].lo[d] < bb.lo[d])
					bb.lo[d] = in[i].lo[d];
				if (in[i].hi[d] > bb.hi[d])
					bb.hi[d] = in[i].hi[d];
			}
		all = !query_best(o->by_dim[dir], &bb, o->n[dir] / 2, &cand, &ncand, &capcand, &alt, &capalt);
	}
	/*
	 * The residue can grow to thousands of boxes (a hole per policy in a wide input), and
	 * testing each policy against all of it would be n². So the residue's boxes [0, indexed)
	 * are indexed by every dimension, and a policy narrow in one of them tests only the
	 * indexed boxes it meets, plus the unindexed tail. The index is rebuilt when the
	 * tail has grown to about the square root of (r log r): n·sqrt(r log r) in all.
	 * Boxes die in place (family 0) and are compacted at a rebuild, so that the order of the
	 * boxes, and so of the pieces found, is the same as a full scan's.
	 */
	struct mc_ivindex rix[MC_NDIM];
	memset(rix, 0, sizeof(rix));
	size_t indexed = 0, alive = cur.n, *hits = NULL, nhits = 0, caphits = 0;
	for (size_t c = 0; c < (all ? o->n[dir] : ncand) && alive; c++) {
		size_t k = all ? c : cand[c];
		const struct mc_xpolicy *x = &plan->pols[o->idx[dir][k]];
		const struct mc_box *pb = &o->box[dir][k];
		size_t n0 = cur.n, from = 0;

		if (x->priority >= below)
			break;
		nhits = 0;
		if (indexed) {
			if (query_best(rix, pb, indexed / 4, &hits, &nhits, &caphits, &alt, &capalt))
				from = indexed;
			else
				nhits = 0; /* wide everywhere: scan everything */
		}
		/* In place: what a policy takes is recorded and its box marked dead; the rest of it
		 * is appended, past n0, and not tested against this policy again. */
		for (size_t h = 0, i; h < nhits + (n0 - from); h++) {
			struct mc_box hit, r;
			i = h < nhits ? hits[h] : from + (h - nhits);
			if (!mc_box_intersect(&cur.b[i], pb, &hit))
				continue;
			*MC_PUSH(&ret->p, &ret->n, &ret->cap) = (struct mc_piece){ hit, x->rule };
			r = cur.b[i];
			cur.b[i].family = 0;
			alive--;
			size_t before = cur.n;
			mc_box_subtract(&r, pb, &cur);
			alive += cur.n - before;
		}
		if (alive > max_pieces) {
			rc = -E2BIG;
			break;
		}
		size_t tail = cur.n - indexed, r = cur.n;
		if (tail > 64 && tail * tail > 16 * r * (size_t)(64 - __builtin_clzll((unsigned long long)r | 1))) {
			size_t w = 0;
			for (size_t i = 0; i < cur.n; i++)
				if (cur.b[i].family)
					cur.b[w++] = cur.b[i];
			cur.n = w;
			for (int d = 0; d < MC_NDIM; d++) {
				ivindex_free(&rix[d]);
				ivindex_build(cur.b, cur.n, d, &rix[d]);
			}
			indexed = cur.n;
		}
	}
	if (!rc)
		for (size_t i = 0; i < cur.n; i++)
			if (cur.b[i].family)
				*MC_PUSH(&ret->p, &ret->n, &ret->cap) = (struct mc_piece){ cur.b[i], SIZE_MAX };
	for (int d = 0; d < MC_NDIM; d++)
		ivindex_free(&rix[d]);
	mc_boxes_free(&cur);
	free(hits);
	free(cand);
	free(alt);
	return rc;
}

/* ---- text ---- */

static void addr_range_str(int family, mc_u128 lo, mc_u128 hi, struct mc_buf *out)
{
	struct mc_range r = { (uint8_t)family, lo, hi };
	char text[112];

	if (lo == 0 && hi == family_max(family)) {
		mc_buf_puts(out, "any");
		return;
	}
	mc_range_str(&r, text, sizeof(text));
	mc_buf_puts(out, text);
}

static void field_str(mc_u128 lo, mc_u128 hi, unsigned full_lo, unsigned full_hi, struct mc_buf *out)
{
	if (lo <= full_lo && hi >= full_hi)
		mc_buf_puts(out, "any");
	else if (lo == hi)
		mc_buf_printf(out, "%u", (unsigned)lo);
	else
		mc_buf_printf(out, "%u-%u", (unsigned)lo, (unsigned)hi);
}

void mc_box_str(const struct mc_box *b, struct mc_buf *out)
{
	bool one = b->lo[MC_D_PROTO] == b->hi[MC_D_PROTO];
	unsigned p = (unsigned)b->lo[MC_D_PROTO];
	bool icmp = one && p == (unsigned)icmp_proto(b->family);
	bool ports = one && mc_proto_has_ports((int)p);
	char pb[16];

	if (one)
		mc_buf_printf(out, "%s ", mc_proto_str((int)p, pb, sizeof(pb)));
	else if (b->lo[MC_D_PROTO] == 0 && b->hi[MC_D_PROTO] == 255)
		mc_buf_printf(out, "%s ", b->family == AF_INET ? "ipv4" : "ipv6");
	else
		mc_buf_printf(out, "protocols %u-%u ", (unsigned)b->lo[MC_D_PROTO], (unsigned)b->hi[MC_D_PROTO]);
	addr_range_str(b->family, b->lo[MC_D_SRC], b->hi[MC_D_SRC], out);
	if (ports) {
		mc_buf_puts(out, " port ");
		field_str(b->lo[MC_D_SPORT], b->hi[MC_D_SPORT], 1, 65535, out);
	}
	mc_buf_puts(out, " -> ");
	addr_range_str(b->family, b->lo[MC_D_DST], b->hi[MC_D_DST], out);
	if (ports) {
		mc_buf_puts(out, " port ");
		field_str(b->lo[MC_D_DPORT], b->hi[MC_D_DPORT], 1, 65535, out);
	} else if (icmp) {
		mc_buf_puts(out, " type ");
		field_str(b->lo[MC_D_SPORT], b->hi[MC_D_SPORT], 0, 255, out);
		mc_buf_puts(out, " code ");
		field_str(b->lo[MC_D_DPORT], b->hi[MC_D_DPORT], 0, 255, out);
	}
}
