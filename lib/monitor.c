/* SPDX-License-Identifier: MIT */
/* mcpsecd's logic: events and counters to records, rate limit, totals (see monitor.h). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "compile.h"
#include "drops.h"
#include "eval.h"
#include "monitor.h"
#include "kobj.h"
#include "plan.h"
#include "util.h"

/* ---- /proc/net/xfrm_stat ---- */

void mc_stats_parse(const char *text, struct mc_stats *ret)
{
	memset(ret, 0, sizeof(*ret));
	for (const char *s = text; *s;) {
		const char *eol = strchr(s, '\n');
		size_t n = eol ? (size_t)(eol - s) : strlen(s);
		char name[40];
		unsigned long long v;
		char line[128];

		if (n < sizeof(line)) {
			memcpy(line, s, n);
			line[n] = '\0';
			if (sscanf(line, "%39s %llu", name, &v) == 2) {
				struct mc_stat *st = MC_PUSH(&ret->v, &ret->n, &ret->cap);
				snprintf(st->name, sizeof(st->name), "%s", name);
				st->value = v;
			}
		}
		s = eol ? eol + 1 : s + n;
	}
}

uint64_t mc_stats_get(const struct mc_stats *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->v[i].name, name))
			return s->v[i].value;
	return 0;
}

void mc_stats_free(struct mc_stats *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

void mc_records_free(struct mc_records *r)
{
	free(r->r);
	memset(r, 0, sizeof(*r));
}

/* ---- monitor state ---- */

struct flow_seen {
	struct mc_sel flow;
	int64_t when;
};

/* Failure counters of one SA at the previous snapshot. */
struct sa_fail {
	struct mc_addr daddr;
	uint32_t spi;
	uint8_t proto;
	uint64_t integrity, replay;
};

void mc_mon_init(struct mc_monitor *m, int64_t now)
{
	memset(m, 0, sizeof(*m));
	m->acquire_interval = 60;
	m->rate = 20;
	m->burst = 200;
	m->tokens = m->burst;
	m->last_refill = now;
	m->started = now;
	m->out_hook_idle = MC_OUT_HOOK_IDLE;
}

void mc_mon_configure(struct mc_monitor *m, const struct mc_mon_config *c)
{
	m->rate = c->rate;
	m->burst = c->burst;
	m->tokens = c->burst;
	m->namer = c->namer;
	m->reqid_namer = c->reqid_namer;
	m->namer_ctx = c->namer_ctx;
	m->own_portid = c->own_portid;
	m->out_hook_idle = c->out_hook_idle ? c->out_hook_idle : MC_OUT_HOOK_IDLE;
}

void mc_mon_count(struct mc_monitor *m, enum mc_mon_tally t)
{
	switch (t) {
	case MC_MON_CHECK:
		m->checks++;
		break;
	case MC_MON_DRIFT:
		m->drifts++;
		break;
	case MC_MON_REPAIR:
		m->repairs++;
		break;
	case MC_MON_OVERRUN:
		m->overruns++;
		m->resyncs++;
		break;
	}
}

void mc_mon_hooks_loaded(struct mc_monitor *m, bool in, bool out, int64_t now)
{
	m->hook_in = in;
	m->hook_out = m->hook_out_available = out;
	m->out_last_block = now;
}

enum mc_hook_step mc_mon_pace_out(struct mc_monitor *m, int64_t now, const struct mc_stats *st, bool attached)
{
	uint64_t blocked = mc_stats_get(st, "XfrmOutPolBlock");
	bool moved = blocked != m->out_blocked;

	m->out_blocked = blocked;
	if (!m->hook_out_available)
		return MC_HOOK_STAY;
	if (moved)
		m->out_last_block = now;
	if (attached && now - m->out_last_block >= m->out_hook_idle)
		return MC_HOOK_DETACH;
	return !attached && moved ? MC_HOOK_ATTACH : MC_HOOK_STAY;
}

bool mc_mon_sa_expired(const struct mc_monitor *m, const struct mc_xsa *sa)
{
	for (size_t i = 0; i < m->nexpired; i++)
		if (m->expired[i].spi == sa->spi && m->expired[i].proto == sa->proto &&
		    mc_addr_eq(&m->expired[i].daddr, &sa->daddr))
			return true;
	return false;
}

void mc_mon_forget_expired(struct mc_monitor *m)
{
	m->nexpired = 0;
}

static int cmp_kind_name(const void *a, const void *b)
{
	const struct mc_op_group *x = a, *y = b;
	int c = (int)x->kind - (int)y->kind;

	if (!c)
		c = strcmp(x->name, y->name);
	return c ? c : x->first < y->first ? -1 : x->first > y->first;
}

static int cmp_first(const void *a, const void *b)
{
	const struct mc_op_group *x = a, *y = b;
	return x->first < y->first ? -1 : x->first > y->first;
}

size_t mc_drift_groups(const struct mc_diff *diff, const char *(*name)(const struct mc_op *o, const void *ctx),
		       const void *ctx, struct mc_op_group **ret)
{
	struct mc_op_group *g = mc_calloc(diff->n + 1, sizeof(*g));
	size_t ng = 0;

	for (size_t i = 0; i < diff->n; i++)
		g[i] = (struct mc_op_group){ i, 1, diff->ops[i].kind, name(&diff->ops[i], ctx) };
	qsort(g, diff->n, sizeof(*g), cmp_kind_name);
	for (size_t i = 0; i < diff->n; i++) {
		if (ng && g[i].kind == g[ng - 1].kind && !strcmp(g[i].name, g[ng - 1].name))
			g[ng - 1].count++; /* sorted: the group's first operation came first */
		else
			g[ng++] = g[i];
	}
	qsort(g, ng, sizeof(*g), cmp_first);
	*ret = g;
	return ng;
}

void mc_mon_free(struct mc_monitor *m)
{
	free(m->seen);
	free(m->slots);
	mc_stats_free(&m->prev);
	free(m->sa_prev);
	free(m->by_reason);
	free(m->by_policy);
	free(m->by_policy_reason);
	free(m->top);
	memset(m, 0, sizeof(*m));
}

static void tally(struct mc_tally **v, size_t *n, size_t *cap, const char *key, uint64_t count)
{
	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*v)[i].key, key)) {
			(*v)[i].count += count;
			return;
		}
	struct mc_tally *t = MC_PUSH(v, n, cap);
	snprintf(t->key, sizeof(t->key), "%s", key);
	t->count = count;
}

void mc_record_init(struct mc_record *r, int64_t now, const char *event, const char *reason, int dir)
{
	memset(r, 0, sizeof(*r));
	r->time = now;
	snprintf(r->event, sizeof(r->event), "%s", event);
	snprintf(r->reason, sizeof(r->reason), "%s", reason);
	if (dir >= 0)
		snprintf(r->dir, sizeof(r->dir), "%s", dir == MC_DIR_IN ? "in" : "out");
	r->count = 1;
	r->sport = r->dport = r->icmp_type = r->icmp_code = -1;
}

static const char *name_of(const struct mc_monitor *m, uint32_t prio, enum mc_dir dir, int family)
{
	return m->namer ? m->namer(m->namer_ctx, prio, dir, family) : NULL;
}

/* ---- text ---- */

void mc_flow_str(const struct mc_sel *f, char *buf, size_t len)
{
	char s[64], d[64], pb[16];
	bool icmp = mc_proto_is_icmp(f->proto), ports = mc_proto_has_ports(f->proto);

	mc_addr_str(&f->saddr, s, sizeof(s));
	mc_addr_str(&f->daddr, d, sizeof(d));
	const char *p = f->proto ? mc_proto_str(f->proto, pb, sizeof(pb)) : "any";
	if (ports)
		snprintf(buf, len, "%s %s port %u -> %s port %u", p, s, f->sport, d, f->dport);
	else if (icmp)
		snprintf(buf, len, "%s %s -> %s type %u code %u", p, s, d, f->sport, f->dport);
	else
		snprintf(buf, len, "%s %s -> %s", p, s, d);
}

void mc_record_set_flow(struct mc_record *r, const struct mc_sel *f)
{
	char pb[16];

	mc_flow_str(f, r->flow, sizeof(r->flow));
	snprintf(r->proto, sizeof(r->proto), "%s", f->proto ? mc_proto_str(f->proto, pb, sizeof(pb)) : "any");
	mc_addr_str(&f->saddr, r->src, sizeof(r->src));
	mc_addr_str(&f->daddr, r->dst, sizeof(r->dst));
	r->sport = r->dport = r->icmp_type = r->icmp_code = -1;
	if (mc_proto_has_ports(f->proto)) {
		r->sport = f->sport;
		r->dport = f->dport;
	} else if (mc_proto_is_icmp(f->proto)) {
		r->icmp_type = f->sport;
		r->icmp_code = f->dport;
	}
}

static const char *ipsec_proto(uint8_t p)
{
	return p == MC_PROTO_AH || p == MC_PROTO_ESP ? mc_ipsec_proto_str(p) : "ipsec";
}

/* ---- events ---- */

/* Flows reported in the last acquire_interval: an array, and an open-addressing index over it
 * (a burst of 10,000 distinct flows must not cost 10,000² comparisons). Expired entries are
 * dropped and the index rebuilt at most once a second. */
#define SEEN_MAX 65536
#define SLOT_EMPTY UINT32_MAX

static void seen_rebuild(struct mc_monitor *m, size_t nslots)
{
	free(m->slots);
	m->nslots = nslots;
	m->slots = mc_malloc(nslots * sizeof(*m->slots));
	for (size_t i = 0; i < nslots; i++)
		m->slots[i] = SLOT_EMPTY;
	for (size_t i = 0; i < m->nseen; i++) {
		size_t h = (size_t)mc_sel_hash(MC_DIR_OUT, &m->seen[i].flow) & (nslots - 1);
		while (m->slots[h] != SLOT_EMPTY)
			h = (h + 1) & (nslots - 1);
		m->slots[h] = (uint32_t)i;
	}
}

static bool acquire_seen(struct mc_monitor *m, const struct mc_sel *flow, int64_t now)
{
	if (!m->nslots || now != m->seen_expired) {
		size_t keep = 0;
		for (size_t i = 0; i < m->nseen; i++)
			if (now - m->seen[i].when < (int64_t)m->acquire_interval)
				m->seen[keep++] = m->seen[i];
		m->nseen = keep;
		m->seen_expired = now;
		size_t want = 1024;
		while (want < 2 * (m->nseen + 1))
			want *= 2;
		seen_rebuild(m, want);
	}
	size_t h = (size_t)mc_sel_hash(MC_DIR_OUT, flow) & (m->nslots - 1);
	for (; m->slots[h] != SLOT_EMPTY; h = (h + 1) & (m->nslots - 1))
		if (!memcmp(&m->seen[m->slots[h]].flow, flow, sizeof(*flow)))
			return true;
	if (m->nseen >= SEEN_MAX)
		return false; /* remembered no more; the rate limit still bounds the log */
	*MC_PUSH(&m->seen, &m->nseen, &m->capseen) = (struct flow_seen){ *flow, now };
	if (2 * m->nseen > m->nslots)
		seen_rebuild(m, m->nslots * 2);
	else
		m->slots[h] = (uint32_t)(m->nseen - 1);
	return false;
}

static bool owned_event(const struct mc_event *ev)
{
	switch (ev->kind) {
	case MC_EV_POL_NEW:
	case MC_EV_POL_UPD:
	case MC_EV_POL_DEL:
		return mc_prio_owned(ev->priority);
	case MC_EV_SA_NEW:
	case MC_EV_SA_UPD:
	case MC_EV_SA_DEL:
		return mc_reqid_owned(ev->reqid);
	case MC_EV_SA_FLUSH:
	case MC_EV_POL_FLUSH:
		return true;
	default:
		return false;
	}
}

bool mc_event_changes_sas(const struct mc_event *ev)
{
	switch (ev->kind) {
	case MC_EV_SA_NEW:
	case MC_EV_SA_DEL:
	case MC_EV_SA_FLUSH:
		return true;
	case MC_EV_SA_EXPIRE:
		return ev->hard && ev->spi; /* a soft one changes nothing; spi 0: ACQUIRE's larval state */
	default:
		return false;
	}
}

bool mc_mon_event(struct mc_monitor *m, const struct mc_event *ev, int64_t now, struct mc_records *out)
{
	struct mc_record r;
	char a[64], b[64];

	m->events++;
	if (ev->kind == MC_EV_ACQUIRE) {
		struct mc_sel key = ev->flow;
		if (acquire_seen(m, &key, now))
			return false;
		mc_record_init(&r, now, "acquire", "no-sa", MC_DIR_OUT);
		const char *name = name_of(m, ev->priority, MC_DIR_OUT, ev->family);
		if (name)
			snprintf(r.policy, sizeof(r.policy), "%s", name);
		mc_record_set_flow(&r, &ev->flow);
		mc_addr_str(&ev->saddr, a, sizeof(a));
		mc_addr_str(&ev->daddr, b, sizeof(b));
		if (ev->spi)
			snprintf(r.detail, sizeof(r.detail), "no usable SA: %s spi %u (0x%x) %s -> %s%s; the packet was "
				 "dropped", ipsec_proto(ev->proto), ev->spi, ev->spi, a, b,
				 name ? "" : " (a policy mcpsec does not own)");
		else
			snprintf(r.detail, sizeof(r.detail), "no usable %s SA %s -> %s; the packet was dropped%s",
				 ipsec_proto(ev->proto), a, b, name ? "" : " (a policy mcpsec does not own)");
		*MC_PUSH(&out->r, &out->n, &out->cap) = r;
		return false;
	}
	if (ev->kind == MC_EV_SA_EXPIRE) {
		if (!ev->spi)
			return false; /* the larval state of an ACQUIRE timing out */
		if (ev->hard && mc_reqid_owned(ev->reqid) && m->nexpired < MC_ARRAY_SIZE(m->expired))
			m->expired[m->nexpired++] = (struct mc_expired_sa){ ev->daddr, ev->spi, ev->proto };
		/* Soft: time to roll the key over (rekey-due); hard: the kernel removed the SA. */
		mc_record_init(&r, now, ev->hard ? "sa-expire" : "rekey-due", ev->hard ? "hard-lifetime" : "soft-lifetime", -1);
		const char *name = mc_reqid_owned(ev->reqid) && m->reqid_namer ? m->reqid_namer(m->namer_ctx, ev->reqid) : NULL;
		if (name)
			snprintf(r.policy, sizeof(r.policy), "%s", name);
		mc_addr_str(&ev->saddr, a, sizeof(a));
		mc_addr_str(&ev->daddr, b, sizeof(b));
		/* The SA first, then what it means, cut to fit: addresses can be long. */
		int at = snprintf(r.detail, sizeof(r.detail), "%s spi %u (0x%x) %s -> %s", ipsec_proto(ev->proto),
				  ev->spi, ev->spi, a, b);
		size_t used = at > 0 && (size_t)at < sizeof(r.detail) ? (size_t)at : sizeof(r.detail) - 1;
		const char *what = ev->hard ? ": hard lifetime reached, SA removed; its traffic is dropped until the key "
					      "is rolled over and applied (mcpsecd does not put it back)"
					    : ": soft lifetime reached; roll the key over (mcpsec rekey)";
		size_t room = sizeof(r.detail) - 1 - used, n = strlen(what) < room ? strlen(what) : room;
		memcpy(r.detail + used, what, n);
		r.detail[used + n] = '\0';
		*MC_PUSH(&out->r, &out->n, &out->cap) = r;
		return false;
	}
	return owned_event(ev) && ev->portid != m->own_portid;
}

/* ---- counters ---- */

enum how { BY_NONE, BY_BLOCK, BY_TEMPLATE, BY_SA_ICV, BY_SA_REPLAY };

static const struct {
	const char *counter, *reason;
	int dir;
	enum how how;
} counters[] = {
	{ "XfrmOutPolBlock", "policy-block", MC_DIR_OUT, BY_BLOCK },
	{ "XfrmInPolBlock", "policy-block", MC_DIR_IN, BY_BLOCK },
	{ "XfrmInTmplMismatch", "plaintext-for-protect", MC_DIR_IN, BY_TEMPLATE },
	{ "XfrmInStateProtoError", "icv-failure", MC_DIR_IN, BY_SA_ICV },
	{ "XfrmInStateSeqError", "replay", MC_DIR_IN, BY_SA_REPLAY },
	{ "XfrmOutNoStates", "no-sa", MC_DIR_OUT, BY_NONE },
	{ "XfrmInNoStates", "unknown-sa", MC_DIR_IN, BY_NONE },
	{ "XfrmInNoPols", "no-policy", MC_DIR_IN, BY_NONE },
	{ "XfrmInStateExpired", "sa-expired", MC_DIR_IN, BY_NONE },
	{ "XfrmOutStateExpired", "sa-expired", MC_DIR_OUT, BY_NONE },
	{ "XfrmInStateMismatch", "sa-selector-mismatch", MC_DIR_IN, BY_NONE },
	{ "XfrmInStateInvalid", "sa-invalid", MC_DIR_IN, BY_NONE },
	{ "XfrmOutStateInvalid", "sa-invalid", MC_DIR_OUT, BY_NONE },
	{ "XfrmInStateModeError", "sa-mode-error", MC_DIR_IN, BY_NONE },
	{ "XfrmOutStateModeError", "sa-mode-error", MC_DIR_OUT, BY_NONE },
	{ "XfrmOutStateProtoError", "sa-proto-error", MC_DIR_OUT, BY_NONE },
	{ "XfrmOutStateSeqError", "sequence-overflow", MC_DIR_OUT, BY_NONE },
	{ "XfrmAcquireError", "acquire-error", MC_DIR_IN, BY_NONE },
};

bool mc_mon_needs_dump(const struct mc_monitor *m, const struct mc_stats *now)
{
	if (!m->have_prev)
		return true; /* the SA baseline */
	for (size_t i = 0; i < MC_ARRAY_SIZE(counters); i++)
		if (counters[i].how != BY_NONE &&
		    mc_stats_get(now, counters[i].counter) != mc_stats_get(&m->prev, counters[i].counter))
			return true;
	return false;
}

/* Names of mcpsec's policies of dir whose last use is at or after since, of the kind asked. */
static size_t moved_policies(const struct mc_monitor *m, const struct mc_kstate *k, enum mc_dir dir, bool protect,
			     int64_t since, char *names, size_t len)
{
	size_t count = 0;

	names[0] = '\0';
	for (size_t i = 0; k && i < k->npols; i++) {
		const struct mc_kpolicy *p = &k->pols[i];
		if (p->x.dir != dir || !mc_prio_owned(p->x.priority) || (int64_t)p->use_time < since)
			continue;
		if (protect ? p->ntmpl == 0 : p->x.action != MC_DISCARD)
			continue;
		const char *name = name_of(m, p->x.priority, dir, p->x.sel.family);
		if (!name)
			continue;
		/* fragments of one rule share its name */
		bool dup = false;
		for (const char *s = names; *s && !dup;) {
			size_t l = strcspn(s, ",");
			dup = l == strlen(name) && !strncmp(s, name, l);
			s += l + (s[l] == ',');
		}
		if (dup)
			continue;
		size_t used = strlen(names);
		snprintf(names + used, len - used, "%s%s", used ? "," : "", name);
		count++;
	}
	return count;
}

static const char *sa_policy_name(const struct mc_monitor *m, const struct mc_kstate *k, const struct mc_ksa *sa)
{
	for (size_t i = 0; i < k->npols; i++) {
		const struct mc_kpolicy *p = &k->pols[i];
		if (p->ntmpl && p->x.tmpl_reqid == sa->x.reqid && mc_reqid_owned(sa->x.reqid) && mc_prio_owned(p->x.priority))
			return name_of(m, p->x.priority, p->x.dir, p->x.sel.family);
	}
	return NULL;
}

static uint64_t sa_prev_value(const struct mc_monitor *m, const struct mc_ksa *sa, bool icv)
{
	for (size_t i = 0; i < m->nsa_prev; i++) {
		const struct sa_fail *f = &m->sa_prev[i];
		if (f->spi == sa->x.spi && f->proto == sa->x.proto && mc_addr_eq(&f->daddr, &sa->x.daddr))
			return icv ? f->integrity : f->replay;
	}
	return 0; /* a new SA starts from zero */
}

/* ICV or replay failures, per SA whose own counter moved; returns how many were attributed. */
static uint64_t attribute_sas(struct mc_monitor *m, const struct mc_kstate *k, bool icv, const char *reason,
			      int64_t now, struct mc_records *out)
{
	uint64_t attributed = 0;

	for (size_t i = 0; k && i < k->nsas; i++) {
		const struct mc_ksa *sa = &k->sas[i];
		uint64_t v = icv ? sa->integrity_fail : sa->replay_fail, before = sa_prev_value(m, sa, icv);
		if (v <= before)
			continue;
		struct mc_record r;
		char a[64], b[64];
		const char *name = sa_policy_name(m, k, sa);
		mc_record_init(&r, now, "drop", reason, MC_DIR_IN);
		r.count = v - before;
		if (name)
			snprintf(r.policy, sizeof(r.policy), "%s", name);
		mc_addr_str(&sa->x.saddr, a, sizeof(a));
		mc_addr_str(&sa->x.daddr, b, sizeof(b));
		snprintf(r.detail, sizeof(r.detail), "%s spi %u (0x%x) %s -> %s: %s", ipsec_proto(sa->x.proto), sa->x.spi,
			 sa->x.spi, a, b, icv ? "integrity check failed (the two hosts' keys differ?)" : "replayed packets");
		*MC_PUSH(&out->r, &out->n, &out->cap) = r;
		attributed += r.count;
	}
	return attributed;
}

static void remember_sas(struct mc_monitor *m, const struct mc_kstate *k)
{
	m->nsa_prev = 0;
	for (size_t i = 0; k && i < k->nsas; i++)
		*MC_PUSH(&m->sa_prev, &m->nsa_prev, &m->capsa_prev) =
			(struct sa_fail){ k->sas[i].x.daddr, k->sas[i].x.spi, k->sas[i].x.proto, k->sas[i].integrity_fail,
					  k->sas[i].replay_fail };
}

static int known_counter(const char *name)
{
	for (size_t i = 0; i < MC_ARRAY_SIZE(counters); i++)
		if (!strcmp(counters[i].counter, name))
			return (int)i;
	return -1;
}

/* Which hook counter a kernel counter is, when a hook covers it now; -1 otherwise. */
static int hooked_counter(const struct mc_monitor *m, const char *name)
{
	if (m->hook_in && !strcmp(name, "XfrmInPolBlock"))
		return MC_HC_IN_BLOCK;
	if (m->hook_in && !strcmp(name, "XfrmInTmplMismatch"))
		return MC_HC_IN_TMPL;
	if (m->hook_out && !strcmp(name, "XfrmOutPolBlock"))
		return MC_HC_OUT_BLOCK;
	return -1;
}

static const char *const hc_counter[MC_HC_N] = { "XfrmInPolBlock", "XfrmInTmplMismatch", "XfrmOutPolBlock" };
static const char *const hc_reason[MC_HC_N] = { "policy-block", "plaintext-for-protect", "policy-block" };

/*
 * The hooks and the counters must agree: every packet the kernel counted as blocked was seen as
 * a flow. A packet is counted a moment before it is freed, so a difference is reported only when
 * it lasts a second tick unchanged; then the records make up for it and the two start level.
 */
static void compare_hooks(struct mc_monitor *m, int64_t now, const struct mc_stats *st, struct mc_records *out)
{
	for (int c = 0; c < MC_HC_N; c++) {
		if (!(c == MC_HC_OUT_BLOCK ? m->hook_out : m->hook_in))
			continue;
		uint64_t counted = mc_stats_get(st, hc_counter[c]);
		if (!m->have_counted) {
			m->counted[c] = counted;
			continue;
		}
		int64_t gap = (int64_t)(counted - m->counted[c]) - (int64_t)m->hooked[c];
		if (gap == 0 || (uint64_t)gap != m->gap_prev[c]) {
			m->gap_prev[c] = (uint64_t)gap;
			continue;
		}
		struct mc_record r;
		mc_record_init(&r, now, gap > 0 ? "drop" : "daemon", gap > 0 ? hc_reason[c] : "hook-mismatch",
			    c == MC_HC_OUT_BLOCK ? MC_DIR_OUT : MC_DIR_IN);
		r.count = (uint64_t)(gap > 0 ? gap : -gap);
		if (gap > 0)
			snprintf(r.detail, sizeof(r.detail), "%s counted %llu packets the per-flow hook did not see: "
				 "their flows are unknown", hc_counter[c], (unsigned long long)r.count);
		else
			snprintf(r.detail, sizeof(r.detail), "the per-flow hook saw %llu packets more than %s counted",
				 (unsigned long long)r.count, hc_counter[c]);
		*MC_PUSH(&out->r, &out->n, &out->cap) = r;
		m->hooked[c] = counted - m->counted[c];
		m->gap_prev[c] = 0;
	}
	m->have_counted = true;
}

void mc_mon_counters(struct mc_monitor *m, int64_t now, const struct mc_stats *st, const struct mc_kstate *k,
		     struct mc_records *out)
{
	compare_hooks(m, now, st, out);
	if (!m->have_prev)
		goto remember;
	for (size_t i = 0; i < st->n; i++) {
		uint64_t before = mc_stats_get(&m->prev, st->v[i].name);
		if (st->v[i].value <= before)
			continue;
		uint64_t delta = st->v[i].value - before;
		int c = known_counter(st->v[i].name);
		if (hooked_counter(m, st->v[i].name) >= 0)
			continue; /* the per-flow records say it, flow by flow (mc_mon_flows) */
		struct mc_record r;
		char lower[40];
		size_t j;

		if (c < 0) {
			for (j = 0; st->v[i].name[j] && j + 1 < sizeof(lower); j++)
				lower[j] = (char)tolower((unsigned char)st->v[i].name[j]);
			lower[j] = '\0';
			mc_record_init(&r, now, "drop", lower, -1);
		} else {
			mc_record_init(&r, now, "drop", counters[c].reason, counters[c].dir);
		}
		r.count = delta;
		if (c >= 0 && (counters[c].how == BY_SA_ICV || counters[c].how == BY_SA_REPLAY)) {
			uint64_t done = attribute_sas(m, k, counters[c].how == BY_SA_ICV, counters[c].reason, now, out);
			if (done >= delta)
				continue;
			r.count = delta - done;
			snprintf(r.detail, sizeof(r.detail), "%s: not attributable to an mcpsec SA", st->v[i].name);
		} else if (c >= 0 && (counters[c].how == BY_BLOCK || counters[c].how == BY_TEMPLATE)) {
			char names[sizeof(r.detail) - 32];
			size_t n = moved_policies(m, k, (enum mc_dir)counters[c].dir, counters[c].how == BY_TEMPLATE,
						  m->prev_time, names, sizeof(names));
			if (n == 1)
				snprintf(r.policy, sizeof(r.policy), "%.*s", (int)sizeof(r.policy) - 1, names);
			else if (n > 1)
				snprintf(r.detail, sizeof(r.detail), "one of: %s", names);
			else
				snprintf(r.detail, sizeof(r.detail), "%s: no mcpsec policy was used (a foreign policy?)",
					 st->v[i].name);
		} else {
			snprintf(r.detail, sizeof(r.detail), "%s", st->v[i].name);
		}
		*MC_PUSH(&out->r, &out->n, &out->cap) = r;
	}
remember:
	mc_stats_free(&m->prev);
	for (size_t i = 0; i < st->n; i++)
		*MC_PUSH(&m->prev.v, &m->prev.n, &m->prev.cap) = st->v[i];
	if (k)
		remember_sas(m, k);
	m->have_prev = true;
	m->prev_time = now;
}

/* ---- flows from the per-flow hooks ---- */

void mc_mon_hook_out(struct mc_monitor *m, bool on, const struct mc_stats *st)
{
	m->hook_out = on;
	m->counted[MC_HC_OUT_BLOCK] = mc_stats_get(st, hc_counter[MC_HC_OUT_BLOCK]);
	m->hooked[MC_HC_OUT_BLOCK] = 0;
	m->gap_prev[MC_HC_OUT_BLOCK] = 0;
}

#define TOP_FLOWS_MAX 512

/* The bounded table of discarded flows by policy that status shows: when full, the smallest
 * count makes room. */
static void top_add(struct mc_monitor *m, const struct mc_record *r)
{
	for (size_t i = 0; i < m->ntop; i++)
		if (!strcmp(m->top[i].flow, r->flow) && !strcmp(m->top[i].policy, r->policy) &&
		    !strcmp(m->top[i].dir, r->dir)) {
			m->top[i].count += r->count;
			return;
		}
	struct mc_top_flow *t;
	if (m->ntop < TOP_FLOWS_MAX) {
		t = MC_PUSH(&m->top, &m->ntop, &m->captop);
	} else {
		t = &m->top[0];
		for (size_t i = 1; i < m->ntop; i++)
			if (m->top[i].count < t->count)
				t = &m->top[i];
		if (t->count >= r->count)
			return;
	}
	snprintf(t->policy, sizeof(t->policy), "%s", r->policy);
	snprintf(t->dir, sizeof(t->dir), "%s", r->dir);
	snprintf(t->flow, sizeof(t->flow), "%s", r->flow);
	t->count = r->count;
}

void mc_mon_flows(struct mc_monitor *m, int64_t now, const struct mc_drop_flows *f, const struct mc_plan *plan,
		  struct mc_records *out)
{
	for (size_t i = 0; i < f->n; i++) {
		const struct mc_drop_flow *d = &f->f[i];
		enum mc_dir dir = d->hook == MC_DROP_OUT_EPERM ? MC_DIR_OUT : MC_DIR_IN;
		const char *first = NULL;
		enum mc_action action = MC_DISCARD;
		struct mc_record r;

		if (plan) {
			struct mc_query q;
			struct mc_results res;
			mc_query_of_flow(&d->flow, dir, &q);
			mc_eval(plan, &q, &res);
			if (res.n) {
				first = res.r[0].first;
				action = res.r[0].result;
			}
			/* first points into the plan, which outlives this call */
			mc_results_free(&res);
		}
		/* A closed port the plan lets through: the kernel answered it, IPsec dropped nothing. */
		if (d->hook == MC_DROP_IN_NOSOCK && (action == MC_BYPASS || !plan))
			continue;
		bool plaintext = dir == MC_DIR_IN && action == MC_PROTECT;
		mc_record_init(&r, now, "drop", plaintext ? "plaintext-for-protect" : "policy-block", dir);
		r.count = d->count;
		mc_record_set_flow(&r, &d->flow);
		if (!plan)
			snprintf(r.detail, sizeof(r.detail), "no committed policies to name the policy with");
		else if (action == MC_BYPASS || !first)
			snprintf(r.detail, sizeof(r.detail), "refused by a policy mcpsec does not own: mcpsec's own "
				 "first match lets this flow pass");
		else
			snprintf(r.policy, sizeof(r.policy), "%s", first);
		if (plaintext)
			snprintf(r.detail, sizeof(r.detail), "arrived in clear; the policy requires IPsec");
		m->hooked[dir == MC_DIR_OUT ? MC_HC_OUT_BLOCK : plaintext ? MC_HC_IN_TMPL : MC_HC_IN_BLOCK] += d->count;
		if (r.policy[0])
			top_add(m, &r);
		*MC_PUSH(&out->r, &out->n, &out->cap) = r;
	}
}

/* ---- rate limit and totals ---- */

static void refill(struct mc_monitor *m, int64_t now)
{
	if (now > m->last_refill) {
		m->tokens += (double)(now - m->last_refill) * m->rate;
		if (m->tokens > m->burst)
			m->tokens = m->burst;
		m->last_refill = now;
	}
}

static void tally_policy_reason(struct mc_monitor *m, const struct mc_record *r)
{
	for (size_t i = 0; i < m->npoldrop; i++) {
		struct mc_policy_drops *t = &m->by_policy_reason[i];
		if (!strcmp(t->policy, r->policy) && !strcmp(t->dir, r->dir) && !strcmp(t->reason, r->reason)) {
			t->count += r->count;
			return;
		}
	}
	struct mc_policy_drops *t = MC_PUSH(&m->by_policy_reason, &m->npoldrop, &m->cappoldrop);
	snprintf(t->policy, sizeof(t->policy), "%s", r->policy);
	snprintf(t->dir, sizeof(t->dir), "%s", r->dir);
	snprintf(t->reason, sizeof(t->reason), "%s", r->reason);
	t->count = r->count;
}

bool mc_mon_admit(struct mc_monitor *m, const struct mc_record *r, int64_t now)
{
	m->records++;
	if (!strcmp(r->event, "drop"))
		tally(&m->by_reason, &m->nreason, &m->capreason, r->reason, r->count);
	if (r->policy[0] && (!strcmp(r->event, "drop") || !strcmp(r->event, "acquire"))) {
		tally(&m->by_policy, &m->npolicy, &m->cappolicy, r->policy, r->count);
		tally_policy_reason(m, r);
	}
	refill(m, now);
	if (m->tokens >= 1) {
		m->tokens -= 1;
		m->written++;
		return true;
	}
	m->suppressed++;
	m->suppressed_pending++;
	return false;
}

bool mc_mon_suppressed_record(struct mc_monitor *m, int64_t now, struct mc_record *ret)
{
	if (!m->suppressed_pending)
		return false;
	refill(m, now);
	if (m->tokens < 1)
		return false;
	m->tokens -= 1;
	m->written++;
	mc_record_init(ret, now, "suppressed", "rate-limit", -1);
	ret->count = m->suppressed_pending;
	snprintf(ret->detail, sizeof(ret->detail), "%llu records not written (limit %.0f per second, burst %.0f); "
		 "status keeps their totals", (unsigned long long)m->suppressed_pending, m->rate, m->burst);
	m->suppressed_pending = 0;
	return true;
}

static void tallies_json(const struct mc_tally *v, size_t n, struct mc_buf *out)
{
	mc_buf_puts(out, "{");
	for (size_t i = 0; i < n; i++) {
		mc_buf_printf(out, "%s", i ? "," : "");
		mc_buf_json_str(out, v[i].key);
		mc_buf_printf(out, ":%llu", (unsigned long long)v[i].count);
	}
	mc_buf_puts(out, "}");
}

static const struct mc_top_flow *g_top; /* for qsort */

static int cmp_top(const void *a, const void *b)
{
	const struct mc_top_flow *x = &g_top[*(const size_t *)a], *y = &g_top[*(const size_t *)b];
	int c = strcmp(x->policy, y->policy);
	if (c)
		return c;
	return x->count > y->count ? -1 : x->count < y->count;
}

/* The top flows by policy, then by count (most first). */
static size_t *top_order(const struct mc_monitor *m)
{
	size_t *order = mc_calloc(m->ntop + 1, sizeof(*order));
	for (size_t i = 0; i < m->ntop; i++)
		order[i] = i;
	g_top = m->top;
	if (m->ntop > 1)
		qsort(order, m->ntop, sizeof(*order), cmp_top);
	return order;
}

void mc_mon_totals_json(const struct mc_monitor *m, struct mc_buf *out)
{
	mc_buf_printf(out, "{\"since\":%lld,\"events\":%llu,\"records\":%llu,\"suppressed\":%llu,\"overruns\":%llu,"
			   "\"resyncs\":%llu,\"drifts\":%llu,\"repairs\":%llu,\"checks\":%llu,\"by_reason\":",
		      (long long)m->started, (unsigned long long)m->events, (unsigned long long)m->records,
		      (unsigned long long)m->suppressed, (unsigned long long)m->overruns,
		      (unsigned long long)m->resyncs, (unsigned long long)m->drifts, (unsigned long long)m->repairs,
		      (unsigned long long)m->checks);
	tallies_json(m->by_reason, m->nreason, out);
	mc_buf_puts(out, ",\"by_policy\":");
	tallies_json(m->by_policy, m->npolicy, out);
	mc_buf_printf(out, ",\"per_flow\":{\"inbound\":%s,\"outbound\":%s,\"outbound_available\":%s},\"top_flows\":[",
		      m->hook_in ? "true" : "false", m->hook_out ? "true" : "false",
		      m->hook_out_available ? "true" : "false");
	size_t *order = top_order(m);
	for (size_t i = 0; i < m->ntop; i++) {
		const struct mc_top_flow *t = &m->top[order[i]];
		mc_buf_puts(out, i ? ",{\"policy\":" : "{\"policy\":");
		mc_buf_json_str(out, t->policy);
		mc_buf_printf(out, ",\"direction\":\"%s\",\"flow\":", t->dir);
		mc_buf_json_str(out, t->flow);
		mc_buf_printf(out, ",\"count\":%llu}", (unsigned long long)t->count);
	}
	free(order);
	mc_buf_puts(out, "]}");
}

/* ---- records as JSON lines and text ---- */

static void iso_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;
	/* A time gmtime cannot represent (a damaged log line) must not format garbage. */
	if (!gmtime_r(&tt, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "invalid-time");
}

void mc_record_json(const struct mc_record *r, const char *netns, struct mc_buf *out)
{
	char when[32];

	iso_time(r->time, when, sizeof(when));
	mc_buf_printf(out, "{\"time\":\"%s\",\"ts\":%lld,\"netns\":", when, (long long)r->time);
	if (netns)
		mc_buf_json_str(out, netns);
	else
		mc_buf_puts(out, "null");
	const struct {
		const char *key, *value;
	} fields[] = { { "event", r->event }, { "reason", r->reason }, { "direction", r->dir },
		       { "policy", r->policy }, { "flow", r->flow }, { "detail", r->detail } };
	for (size_t i = 0; i < MC_ARRAY_SIZE(fields); i++) {
		mc_buf_printf(out, ",\"%s\":", fields[i].key);
		mc_buf_json_str(out, fields[i].value);
	}
	/* The flow as fields of their own, for tools and `mcpsec log`'s filters. */
	if (r->src[0]) {
		mc_buf_puts(out, ",\"protocol\":");
		mc_buf_json_str(out, r->proto);
		mc_buf_puts(out, ",\"src\":");
		mc_buf_json_str(out, r->src);
		mc_buf_puts(out, ",\"dst\":");
		mc_buf_json_str(out, r->dst);
		const struct {
			const char *key;
			int32_t v;
		} nums[] = { { "src_port", r->sport }, { "dst_port", r->dport }, { "icmp_type", r->icmp_type },
			     { "icmp_code", r->icmp_code } };
		for (size_t i = 0; i < MC_ARRAY_SIZE(nums); i++)
			if (nums[i].v >= 0)
				mc_buf_printf(out, ",\"%s\":%d", nums[i].key, (int)nums[i].v);
	}
	mc_buf_printf(out, ",\"count\":%llu}\n", (unsigned long long)r->count);
}

/* A JSON string at *s (after the opening quote) into buf; advances *s past the closing quote. */
static bool json_string(const char **s, char *buf, size_t len)
{
	size_t w = 0;
	const char *p = *s;

	while (*p && *p != '"') {
		char c = *p++;
		if (c == '\\') {
			c = *p++;
			switch (c) {
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'u': {
				unsigned v = 0;
				for (int i = 0; i < 4; i++, p++) {
					if (!isxdigit((unsigned char)*p))
						return false;
					v = v * 16 + (unsigned)(isdigit((unsigned char)*p) ? *p - '0' : (tolower((unsigned char)*p) - 'a' + 10));
				}
				c = v < 0x80 ? (char)v : '?';
				break;
			}
			case '\0': return false;
			default: break; /* \" \\ \/ */
			}
		}
		if (w + 1 < len)
			buf[w++] = c;
	}
	if (*p != '"')
		return false;
	buf[w] = '\0';
	*s = p + 1;
	return true;
}

bool mc_record_parse(const char *line, struct mc_record *ret)
{
	const char *s = line;

	memset(ret, 0, sizeof(*ret));
	ret->sport = ret->dport = ret->icmp_type = ret->icmp_code = -1;
	while (isspace((unsigned char)*s))
		s++;
	if (*s++ != '{')
		return false;
	for (;;) {
		char key[32], sval[256];
		while (isspace((unsigned char)*s) || *s == ',')
			s++;
		if (*s == '}')
			return true;
		if (*s++ != '"' || !json_string(&s, key, sizeof(key)))
			return false;
		while (isspace((unsigned char)*s))
			s++;
		if (*s++ != ':')
			return false;
		while (isspace((unsigned char)*s))
			s++;
		if (*s == '"') {
			s++;
			if (!json_string(&s, sval, sizeof(sval)))
				return false;
			const struct {
				const char *key;
				char *dst;
				size_t len;
			} fields[] = { { "event", ret->event, sizeof(ret->event) }, { "reason", ret->reason, sizeof(ret->reason) },
				       { "direction", ret->dir, sizeof(ret->dir) }, { "policy", ret->policy, sizeof(ret->policy) },
				       { "flow", ret->flow, sizeof(ret->flow) }, { "detail", ret->detail, sizeof(ret->detail) },
				       { "protocol", ret->proto, sizeof(ret->proto) }, { "src", ret->src, sizeof(ret->src) },
				       { "dst", ret->dst, sizeof(ret->dst) } };
			for (size_t i = 0; i < MC_ARRAY_SIZE(fields); i++)
				if (!strcmp(key, fields[i].key))
					snprintf(fields[i].dst, fields[i].len, "%s", sval);
		} else if (!strncmp(s, "null", 4)) {
			s += 4;
		} else {
			char *end;
			errno = 0;
			long long v = strtoll(s, &end, 10);
			if (end == s || errno == ERANGE || v < 0)
				return false; /* times and counts are never negative or out of range */
			s = end;
			if (!strcmp(key, "ts"))
				ret->time = v;
			else if (!strcmp(key, "count"))
				ret->count = (uint64_t)v;
			else if (v <= 65535 && !strcmp(key, "src_port"))
				ret->sport = (int32_t)v;
			else if (v <= 65535 && !strcmp(key, "dst_port"))
				ret->dport = (int32_t)v;
			else if (v <= 255 && !strcmp(key, "icmp_type"))
				ret->icmp_type = (int32_t)v;
			else if (v <= 255 && !strcmp(key, "icmp_code"))
				ret->icmp_code = (int32_t)v;
		}
	}
}

void mc_record_text(const struct mc_record *r, struct mc_buf *out)
{
	char when[32];

	iso_time(r->time, when, sizeof(when));
	mc_buf_printf(out, "%s %s", when, r->event);
	if (r->reason[0])
		mc_buf_printf(out, " %s", r->reason);
	if (r->dir[0])
		mc_buf_printf(out, " %s", r->dir);
	if (r->policy[0])
		mc_buf_printf(out, " policy %s", r->policy);
	if (r->count > 1)
		mc_buf_printf(out, " x%llu", (unsigned long long)r->count);
	if (r->flow[0])
		mc_buf_printf(out, ": %s", r->flow);
	if (r->detail[0])
		mc_buf_printf(out, "%s%s", r->flow[0] ? " (" : ": ", r->detail);
	if (r->detail[0] && r->flow[0])
		mc_buf_puts(out, ")");
	mc_buf_puts(out, "\n");
}

static void tallies_text(const struct mc_tally *v, size_t n, struct mc_buf *out)
{
	if (!n)
		mc_buf_puts(out, " none");
	for (size_t i = 0; i < n; i++)
		mc_buf_printf(out, "%s %s %llu", i ? "," : "", v[i].key, (unsigned long long)v[i].count);
	mc_buf_puts(out, "\n");
}

void mc_mon_totals_text(const struct mc_monitor *m, struct mc_buf *out)
{
	char when[32];

	iso_time(m->started, when, sizeof(when));
	mc_buf_printf(out, "  since %s: %llu records (%llu held back by the rate limit), %llu drift checks found "
			   "changes, %llu repairs, %llu netlink overruns\n", when, (unsigned long long)m->records,
		      (unsigned long long)m->suppressed, (unsigned long long)m->drifts, (unsigned long long)m->repairs,
		      (unsigned long long)m->overruns);
	mc_buf_puts(out, "  dropped packets by reason:");
	tallies_text(m->by_reason, m->nreason, out);
	mc_buf_puts(out, "  dropped packets by policy:");
	tallies_text(m->by_policy, m->npolicy, out);
	if (!m->hook_in)
		mc_buf_puts(out, "  per-flow drop records: off (counter records only)\n");
	else if (!m->hook_out && m->hook_out_available)
		mc_buf_puts(out, "  per-flow drop records: inbound; the outbound hook is detached while no outbound "
				 "packet is blocked\n");
	else if (!m->hook_out)
		mc_buf_puts(out, "  per-flow drop records: inbound (outbound by counters only)\n");
	if (!m->ntop)
		return;
	/* The most discarded flows of each policy, three at most. */
	mc_buf_puts(out, "  top discarded flows by policy:\n");
	size_t *order = top_order(m);
	for (size_t i = 0, shown = 0; i < m->ntop; i++) {
		const struct mc_top_flow *t = &m->top[order[i]];
		shown = i && !strcmp(t->policy, m->top[order[i - 1]].policy) ? shown + 1 : 0;
		if (shown < 3)
			mc_buf_printf(out, "    %s %s: %s x%llu\n", t->policy, t->dir, t->flow, (unsigned long long)t->count);
	}
	free(order);
}

static bool in_range(const char *text, const struct mc_range *range)
{
	struct mc_addr a;

	if (!text[0] || !mc_addr_parse(text, &a))
		return false;
	(void)mc_addr_unmap(&a);
	mc_u128 v = mc_addr_to_u128(&a);
	return a.family == range->family && range->lo <= v && v <= range->hi;
}

bool mc_record_match(const struct mc_record *r, const struct mc_record_filter *f)
{
	if (r->time < f->since || f->staged != !strcmp(r->event, "staged"))
		return false;
	if (f->policy && strcasecmp(r->policy, f->policy))
		return false;
	if (f->has_range && !in_range(r->src, &f->range) && !in_range(r->dst, &f->range))
		return false;
	if (f->port >= 0 && r->sport != f->port && r->dport != f->port)
		return false;
	return true;
}

void mc_seen_flows_free(struct mc_seen_flows *f)
{
	free(f->f);
	memset(f, 0, sizeof(*f));
}

void mc_drop_flows_free(struct mc_drop_flows *f)
{
	free(f->f);
	memset(f, 0, sizeof(*f));
}
