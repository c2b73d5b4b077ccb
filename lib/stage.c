/* SPDX-License-Identifier: MIT */
/* A staged list's flows, decided by both plans (see stage.h). Pure. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "eval.h"
#include "monitor.h"
#include "stage.h"
#include "util.h"

#define NONE UINT32_MAX

static const char *const change_names[MC_CHANGE_N] = {
	[MC_CHANGE_NONE] = "unchanged",		[MC_CHANGE_POLICY] = "other-policy",
	[MC_CHANGE_SA] = "other-sa",		[MC_CHANGE_DISCARD] = "would-discard",
	[MC_CHANGE_PROTECT] = "would-protect",	[MC_CHANGE_BYPASS] = "would-bypass",
};

const char *mc_change_str(enum mc_change c)
{
	return (unsigned)c < MC_CHANGE_N ? change_names[c] : "?";
}

/* The SA of rule r: the one its template names (the one it sends with, during a rollover too),
 * else its SA (an inbound template may leave the SPI open; a rule has one direction). */
static void rule_sa(const struct mc_plan *plan, size_t r, struct mc_decision *d)
{
	for (size_t i = 0; i < plan->npols; i++)
		if (plan->pols[i].rule == r && plan->pols[i].action == MC_PROTECT && plan->pols[i].tmpl_spi) {
			d->sa_proto = plan->pols[i].tmpl_proto;
			d->spi = plan->pols[i].tmpl_spi;
			return;
		}
	for (size_t i = 0; i < plan->nsas; i++)
		if (plan->sas[i].rule == r) {
			d->sa_proto = plan->sas[i].proto;
			d->spi = plan->sas[i].spi;
			return;
		}
}

/* An ESP or AH packet: the policy of the plan's SA with its SPI (the flow's ports hold it:
 * drops.bpf.c) and destination. */
static void decide_sa(const struct mc_plan *plan, const struct mc_sel *f, struct mc_decision *d)
{
	uint32_t spi = (uint32_t)f->sport << 16 | f->dport;

	d->action = MC_DISCARD;
	for (size_t i = 0; i < plan->nsas; i++) {
		const struct mc_xsa *sa = &plan->sas[i];
		if (sa->spi != spi || sa->proto != f->proto || !mc_addr_eq(&sa->daddr, &f->daddr))
			continue;
		d->action = MC_PROTECT;
		d->sa_proto = sa->proto;
		d->spi = spi;
		if (sa->rule < plan->nrules)
			snprintf(d->policy, sizeof(d->policy), "%s", plan->rules[sa->rule].name);
		return;
	}
}

void mc_stage_decide(const struct mc_plan *plan, enum mc_dir dir, const struct mc_sel *flow, struct mc_decision *ret)
{
	struct mc_query q;
	struct mc_results res;

	memset(ret, 0, sizeof(*ret));
	if (flow->proto == MC_PROTO_ESP || flow->proto == MC_PROTO_AH) {
		decide_sa(plan, flow, ret);
		return;
	}
	mc_query_of_flow(flow, dir, &q);
	mc_eval(plan, &q, &res);
	ret->action = res.n ? res.r[0].result : MC_DISCARD;
	if (res.n && res.r[0].first) {
		snprintf(ret->policy, sizeof(ret->policy), "%s", res.r[0].first);
		for (size_t i = 0; ret->action == MC_PROTECT && i < plan->nrules; i++)
			if (plan->rules[i].name == res.r[0].first) {
				rule_sa(plan, i, ret);
				break;
			}
	}
	mc_results_free(&res);
}

void mc_stage_decide_both(const struct mc_plan *enforced, const struct mc_plan *staged, enum mc_dir dir,
			  const struct mc_sel *flow, struct mc_decision *e, struct mc_decision *s)
{
	mc_stage_decide(enforced, dir, flow, e);
	mc_stage_decide(staged, dir, flow, s);
	/* Protected traffic the staged list has no SA for: its inner flows are not seen, so what
	 * becomes of them is the staged list's policy of the same name (another SA, or another
	 * action), or, without one, unknown: never "discarded" on a guess. */
	bool ipsec = flow->proto == MC_PROTO_ESP || flow->proto == MC_PROTO_AH;
	if (!ipsec || e->action != MC_PROTECT || s->action == MC_PROTECT)
		return;
	memset(s, 0, sizeof(*s));
	s->action = MC_PROTECT; /* compared as a change of SA */
	s->sa_proto = 0;
	for (size_t i = 0; i < staged->nrules; i++)
		if (!strcmp(staged->rules[i].name, e->policy) && staged->rules[i].dir == dir) {
			snprintf(s->policy, sizeof(s->policy), "%s", staged->rules[i].name);
			s->action = staged->rules[i].action;
			if (s->action == MC_PROTECT)
				rule_sa(staged, i, s);
			return;
		}
}

enum mc_change mc_stage_compare(const struct mc_decision *e, const struct mc_decision *s)
{
	if (e->action != s->action)
		return s->action == MC_DISCARD ? MC_CHANGE_DISCARD : s->action == MC_PROTECT ? MC_CHANGE_PROTECT
											: MC_CHANGE_BYPASS;
	if (e->action == MC_PROTECT && (e->spi != s->spi || e->sa_proto != s->sa_proto))
		return MC_CHANGE_SA;
	return strcmp(e->policy, s->policy) ? MC_CHANGE_POLICY : MC_CHANGE_NONE;
}

/* ---- the table ---- */

void mc_stage_init(struct mc_stage *t, size_t max, int64_t now)
{
	memset(t, 0, sizeof(*t));
	t->max = max ? max : MC_STAGE_FLOWS;
	t->nbuckets = 1;
	while (t->nbuckets < t->max)
		t->nbuckets <<= 1;
	t->buckets = mc_malloc(t->nbuckets * sizeof(*t->buckets));
	for (size_t i = 0; i < t->nbuckets; i++)
		t->buckets[i] = NONE;
	t->newest = t->oldest = NONE;
	t->since = now;
	t->last_summary = now;
}

void mc_stage_free(struct mc_stage *t)
{
	free(t->v);
	free(t->buckets);
	memset(t, 0, sizeof(*t));
}

static size_t bucket(const struct mc_stage *t, enum mc_dir dir, const struct mc_sel *f)
{
	return (size_t)mc_sel_hash(dir, f) & (t->nbuckets - 1);
}

static void lru_unlink(struct mc_stage *t, uint32_t i)
{
	struct mc_sflow *e = &t->v[i];
	if (e->newer != NONE)
		t->v[e->newer].older = e->older;
	else
		t->newest = e->older;
	if (e->older != NONE)
		t->v[e->older].newer = e->newer;
	else
		t->oldest = e->newer;
}

static void lru_push(struct mc_stage *t, uint32_t i)
{
	struct mc_sflow *e = &t->v[i];
	e->newer = NONE;
	e->older = t->newest;
	if (t->newest != NONE)
		t->v[t->newest].newer = i;
	t->newest = i;
	if (t->oldest == NONE)
		t->oldest = i;
}

static uint32_t find(const struct mc_stage *t, enum mc_dir dir, const struct mc_sel *f)
{
	for (uint32_t i = t->buckets[bucket(t, dir, f)]; i != NONE; i = t->v[i].hnext)
		if (t->v[i].s.dir == dir && mc_sel_eq(&t->v[i].s.flow, f))
			return i;
	return NONE;
}

/* The oldest flow's slot, emptied (the table is full). */
static uint32_t evict(struct mc_stage *t)
{
	uint32_t i = t->oldest;
	struct mc_sflow *e = &t->v[i];
	uint32_t *p = &t->buckets[bucket(t, e->s.dir, &e->s.flow)];

	while (*p != i)
		p = &t->v[*p].hnext;
	*p = e->hnext;
	lru_unlink(t, i);
	t->evicted++;
	return i;
}

/* A new flow's entry, the newest, holding s (the oldest makes room when the table is full). */
static struct mc_sflow *slot_new(struct mc_stage *t, const struct mc_seen_flow *s)
{
	uint32_t i;

	if (t->n < t->max) {
		if (t->n == 0)
			t->v = mc_calloc(t->max, sizeof(*t->v));
		i = (uint32_t)t->n++;
	} else {
		i = evict(t);
	}
	struct mc_sflow *e = &t->v[i];
	memset(e, 0, sizeof(*e));
	e->s = *s;
	size_t b = bucket(t, s->dir, &s->flow);
	e->hnext = t->buckets[b];
	t->buckets[b] = i;
	lru_push(t, i);
	return e;
}

bool mc_stage_put(struct mc_stage *t, const struct mc_sflow *f)
{
	if (find(t, f->s.dir, &f->s.flow) != NONE)
		return false;
	struct mc_sflow *e = slot_new(t, &f->s);
	e->enforced = f->enforced;
	e->staged = f->staged;
	e->change = mc_stage_compare(&e->enforced, &e->staged);
	return true;
}

static void flow_record(const struct mc_sflow *e, int64_t now, struct mc_record *r)
{
	mc_record_init(r, now, "staged", mc_change_str(e->change), e->s.dir);
	mc_record_set_flow(r, &e->s.flow);
	if (e->s.flow.proto == MC_PROTO_ESP || e->s.flow.proto == MC_PROTO_AH) {
		size_t l = strlen(r->flow);
		snprintf(r->flow + l, sizeof(r->flow) - l, " spi %#x", (unsigned)e->s.flow.sport << 16 | e->s.flow.dport);
	}
	r->count = e->s.packets;
	snprintf(r->policy, sizeof(r->policy), "%s", e->staged.policy);
	bool sa_gone = e->enforced.action == MC_PROTECT && e->change == MC_CHANGE_SA && !e->staged.spi;
	char d[512];
	snprintf(d, sizeof(d), "%senforced: %s (%s); staged: %s (%s)%s",
		 e->s.inner ? "inside IPsec (its clear-text flow); " : "",
		 e->enforced.policy[0] ? e->enforced.policy : "no policy", mc_action_str(e->enforced.action),
		 e->staged.policy[0] ? e->staged.policy : sa_gone ? "its SA is gone" : "no policy",
		 sa_gone ? "the staged list's policies decide its inner flows" : mc_action_str(e->staged.action),
		 e->change == MC_CHANGE_PROTECT || e->change == MC_CHANGE_SA ? "; the peer must be ready for it too" : "");
	snprintf(r->detail, sizeof(r->detail), "%.255s", d);
}

void mc_stage_add(struct mc_stage *t, const struct mc_seen_flows *f, const struct mc_plan *enforced,
		  const struct mc_plan *staged, int64_t now, struct mc_records *out)
{
	uint64_t packets = 0, bytes = 0;

	for (size_t k = 0; k < f->n; k++) {
		const struct mc_seen_flow *s = &f->f[k];
		uint32_t i = find(t, s->dir, &s->flow);
		packets += s->packets;
		bytes += s->bytes;
		if (i != NONE) {
			struct mc_sflow *e = &t->v[i];
			e->s.packets += s->packets;
			e->s.bytes += s->bytes;
			if (s->last > e->s.last)
				e->s.last = s->last;
			t->packets[e->change] += s->packets;
			t->bytes[e->change] += s->bytes;
			lru_unlink(t, i);
			lru_push(t, i);
			continue;
		}
		struct mc_sflow *e = slot_new(t, s);
		mc_stage_decide_both(enforced, staged, s->dir, &s->flow, &e->enforced, &e->staged);
		e->change = mc_stage_compare(&e->enforced, &e->staged);
		t->flows[e->change]++;
		t->packets[e->change] += s->packets;
		t->bytes[e->change] += s->bytes;
		if (out && e->change != MC_CHANGE_NONE && e->change != MC_CHANGE_POLICY)
			flow_record(e, now, MC_PUSH(&out->r, &out->n, &out->cap));
	}
	/* What the observer counted beyond its flows (not IP, or its own table made room before a
	 * drain): a balance, never clamped, so that it is exact whenever traffic pauses. */
	for (int d = 0; d < MC_SEEN_DIRS; d++) {
		t->unattributed_packets += (int64_t)f->packets[d];
		t->unattributed_bytes += (int64_t)f->bytes[d];
	}
	t->unattributed_packets -= (int64_t)packets;
	t->unattributed_bytes -= (int64_t)bytes;
}

/* ---- inner flows (the counting sets) ---- */

void mc_innerprev_free(struct mc_innerprev *p)
{
	free(p->v);
	memset(p, 0, sizeof(*p));
}

/* By direction, then flow: the decoder zeroes each element first, so the whole selector compares. */
static int by_flow(const void *a, const void *b)
{
	const struct mc_setflow *x = a, *y = b;
	if (x->dir != y->dir)
		return x->dir < y->dir ? -1 : 1;
	return memcmp(&x->flow, &y->flow, sizeof(x->flow));
}

static uint64_t since(uint64_t now, uint64_t before)
{
	return now >= before ? now - before : now;
}

void mc_stage_inner(struct mc_innerprev *prev, struct mc_setflow *v, size_t n, const uint64_t packets[MC_SEEN_DIRS],
		    const uint64_t bytes[MC_SEEN_DIRS], int64_t now, struct mc_seen_flows *out)
{
	if (n)
		qsort(v, n, sizeof(*v), by_flow);
	for (size_t i = 0; i < n; i++) {
		const struct mc_setflow *c = &v[i];
		const struct mc_setflow *p = prev->n ? bsearch(c, prev->v, prev->n, sizeof(*c), by_flow) : NULL;
		uint64_t np = c->packets, nb = c->bytes;
		if (p && np >= p->packets && nb >= p->bytes) {
			np -= p->packets;
			nb -= p->bytes;
		}
		if (np)
			*MC_PUSH(&out->f, &out->n, &out->cap) = (struct mc_seen_flow){ c->dir, c->flow, np, nb, now, now, true };
	}
	for (int d = 0; d < MC_SEEN_DIRS; d++) {
		out->packets[d] += since(packets[d], prev->packets[d]);
		out->bytes[d] += since(bytes[d], prev->bytes[d]);
		prev->packets[d] = packets[d];
		prev->bytes[d] = bytes[d];
	}
	free(prev->v);
	prev->v = v;
	prev->n = n;
}

static uint64_t sum(const uint64_t *v)
{
	uint64_t n = 0;
	for (int c = 0; c < MC_CHANGE_N; c++)
		n += v[c];
	return n;
}

bool mc_stage_summary(struct mc_stage *t, int64_t now, int64_t interval, struct mc_record *r)
{
	uint64_t flows = sum(t->flows);

	if (now - t->last_summary < interval || flows == t->flows_at_summary)
		return false;
	t->last_summary = now;
	t->flows_at_summary = flows;
	mc_record_init(r, now, "staged", "summary", -1);
	r->count = flows;
	snprintf(r->detail, sizeof(r->detail),
		 "%" PRIu64 " flows seen since staging: %" PRIu64 " would-discard, %" PRIu64 " would-protect, %" PRIu64
		 " would-bypass, %" PRIu64 " other-sa, %" PRIu64 " other-policy, %" PRIu64 " unchanged",
		 flows, t->flows[MC_CHANGE_DISCARD], t->flows[MC_CHANGE_PROTECT], t->flows[MC_CHANGE_BYPASS],
		 t->flows[MC_CHANGE_SA], t->flows[MC_CHANGE_POLICY], t->flows[MC_CHANGE_NONE]);
	return true;
}

/* ---- output ---- */

static void json_time(struct mc_buf *b, int64_t t)
{
	char when[40];
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	mc_buf_json_str(b, when);
}

static void json_int_or_null(struct mc_buf *b, const char *key, int32_t v)
{
	mc_buf_printf(b, ",\"%s\":", key);
	if (v < 0)
		mc_buf_puts(b, "null");
	else
		mc_buf_printf(b, "%d", v);
}

static void json_flow(const struct mc_sflow *e, struct mc_buf *b)
{
	struct mc_record r;

	mc_record_init(&r, 0, "staged", "", e->s.dir);
	mc_record_set_flow(&r, &e->s.flow);
	mc_buf_puts(b, "{\"change\":");
	mc_buf_json_str(b, mc_change_str(e->change));
	mc_buf_printf(b, ",\"direction\":\"%s\",\"protocol\":", mc_dir_str(e->s.dir));
	mc_buf_json_str(b, r.proto);
	mc_buf_puts(b, ",\"src\":");
	mc_buf_json_str(b, r.src);
	json_int_or_null(b, "src_port", r.sport);
	mc_buf_puts(b, ",\"dst\":");
	mc_buf_json_str(b, r.dst);
	json_int_or_null(b, "dst_port", r.dport);
	json_int_or_null(b, "icmp_type", r.icmp_type);
	json_int_or_null(b, "icmp_code", r.icmp_code);
	if (e->s.flow.proto == MC_PROTO_ESP || e->s.flow.proto == MC_PROTO_AH)
		mc_buf_printf(b, ",\"spi\":%" PRIu32, (uint32_t)e->s.flow.sport << 16 | e->s.flow.dport);
	mc_buf_printf(b, ",\"inner\":%s", e->s.inner ? "true" : "false");
	mc_buf_printf(b, ",\"packets\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"first_seen\":", e->s.packets, e->s.bytes);
	json_time(b, e->s.first);
	mc_buf_puts(b, ",\"last_seen\":");
	json_time(b, e->s.last);
	const struct mc_decision *d[2] = { &e->enforced, &e->staged };
	const char *which[2] = { "enforced", "staged" };
	for (int k = 0; k < 2; k++) {
		mc_buf_printf(b, ",\"%s_action\":\"%s\",\"%s_policy\":", which[k], mc_action_str(d[k]->action), which[k]);
		if (d[k]->policy[0])
			mc_buf_json_str(b, d[k]->policy);
		else
			mc_buf_puts(b, "null");
		if (d[k]->action == MC_PROTECT)
			mc_buf_printf(b, ",\"%s_spi\":%" PRIu32, which[k], d[k]->spi);
	}
	mc_buf_puts(b, "}");
}

void mc_stage_json(const struct mc_stage *t, struct mc_buf *b)
{
	mc_buf_puts(b, "{\"since\":");
	json_time(b, t->since);
	mc_buf_printf(b, ",\"totals\":{\"flows\":%" PRIu64 ",\"packets\":%" PRIu64 ",\"bytes\":%" PRIu64, sum(t->flows),
		      sum(t->packets), sum(t->bytes));
	for (int c = 0; c < MC_CHANGE_N; c++)
		mc_buf_printf(b, ",\"%s\":{\"flows\":%" PRIu64 ",\"packets\":%" PRIu64 ",\"bytes\":%" PRIu64 "}",
			      mc_change_str((enum mc_change)c), t->flows[c], t->packets[c], t->bytes[c]);
	mc_buf_printf(b, ",\"flows_kept\":%zu,\"flows_evicted\":%" PRIu64 ",\"unattributed_packets\":%" PRId64
		      ",\"unattributed_bytes\":%" PRId64 "},\"flows\":[", t->n, t->evicted,
		      t->unattributed_packets > 0 ? t->unattributed_packets : 0,
		      t->unattributed_bytes > 0 ? t->unattributed_bytes : 0);
	bool first = true;
	for (uint32_t i = t->newest; i != NONE; i = t->v[i].older) {
		if (!first)
			mc_buf_puts(b, ",");
		first = false;
		json_flow(&t->v[i], b);
	}
	mc_buf_puts(b, "]}");
}

static int by_packets(const void *a, const void *b)
{
	const struct mc_sflow *x = *(const struct mc_sflow *const *)a, *y = *(const struct mc_sflow *const *)b;
	return x->s.packets < y->s.packets ? 1 : x->s.packets > y->s.packets ? -1 : 0;
}

void mc_stage_text(const struct mc_stage *t, size_t top, struct mc_buf *b)
{
	static const enum mc_change order[] = { MC_CHANGE_DISCARD, MC_CHANGE_PROTECT, MC_CHANGE_BYPASS, MC_CHANGE_SA,
						MC_CHANGE_POLICY };
	const struct mc_sflow **v = mc_calloc(t->n ? t->n : 1, sizeof(*v));

	mc_buf_printf(b, "  flows seen:       %" PRIu64 " (%" PRIu64 " packets, %" PRIu64 " bytes)\n", sum(t->flows),
		      sum(t->packets), sum(t->bytes));
	if (t->unattributed_packets > 0)
		mc_buf_printf(b, "  without a flow:   %" PRId64 " packets, %" PRId64 " bytes (not IP, or the observer's "
			      "table made room first)\n", t->unattributed_packets,
			      t->unattributed_bytes > 0 ? t->unattributed_bytes : 0);
	mc_buf_printf(b, "  would-discard:    %" PRIu64 "\n  would-protect:    %" PRIu64 "\n  would-bypass:     %" PRIu64
		      "\n  other SA:         %" PRIu64 "\n  other policy:     %" PRIu64 " (same action)\n  unchanged:        %" PRIu64 "\n",
		      t->flows[MC_CHANGE_DISCARD], t->flows[MC_CHANGE_PROTECT], t->flows[MC_CHANGE_BYPASS],
		      t->flows[MC_CHANGE_SA], t->flows[MC_CHANGE_POLICY], t->flows[MC_CHANGE_NONE]);
	if (t->evicted)
		mc_buf_printf(b, "  (the table keeps %zu flows: %" PRIu64 " made room for later ones, counted above)\n",
			      t->max, t->evicted);
	for (size_t o = 0; o < MC_ARRAY_SIZE(order); o++) {
		size_t n = 0;
		for (size_t i = 0; i < t->n; i++)
			if (t->v[i].change == order[o])
				v[n++] = &t->v[i];
		if (!n)
			continue;
		qsort(v, n, sizeof(*v), by_packets);
		mc_buf_printf(b, "%s%s:\n", mc_change_str(order[o]),
			      order[o] == MC_CHANGE_PROTECT || order[o] == MC_CHANGE_SA ? " (the peer must be ready for it too)" : "");
		for (size_t i = 0; i < n && i < top; i++) {
			struct mc_record r;
			flow_record(v[i], 0, &r);
			mc_buf_printf(b, "  %-3s %s  %" PRIu64 " packets\n      %s\n", mc_dir_str(v[i]->s.dir), r.flow,
				      v[i]->s.packets, r.detail);
		}
		if (n > top)
			mc_buf_printf(b, "  ... and %zu more (--json lists them all)\n", n - top);
	}
	free(v);
}
