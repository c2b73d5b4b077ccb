/* SPDX-License-Identifier: MIT */
/* The compiler: ordered policies → kernel policies with first-match priorities, and SAs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "algo.h"
#include "compile.h"
#include "diag.h"
#include "model.h"
#include "plan.h"
#include "util.h"

/* ---- priorities ---- */

void mc_assign_priorities(const uint32_t *prev, size_t n, uint32_t *ret)
{
	/* Longest strictly increasing subsequence of the usable previous priorities. */
	size_t *tail = mc_calloc(n + 1, sizeof(size_t)), *parent = mc_calloc(n + 1, sizeof(size_t));
	bool *keep = mc_calloc(n + 1, sizeof(bool));
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		if (prev[i] < MC_PRIO_USER_LO || prev[i] > MC_PRIO_USER_HI)
			continue;
		size_t lo = 0, hi = len;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (prev[tail[mid]] < prev[i])
				lo = mid + 1;
			else
				hi = mid;
		}
		parent[i] = lo ? tail[lo - 1] : SIZE_MAX;
		tail[lo] = i;
		if (lo == len)
			len++;
	}
	for (size_t i = len ? tail[len - 1] : SIZE_MAX; i != SIZE_MAX; i = parent[i])
		keep[i] = true;

	bool ok = true;
	size_t i = 0;
	uint32_t before = MC_PRIO_USER_LO;
	while (i < n && ok) {
		if (keep[i]) {
			ret[i] = prev[i];
			before = prev[i];
			i++;
			continue;
		}
		size_t j = i;
		while (j < n && !keep[j])
			j++;
		size_t k = j - i;
		if (j < n) {
			uint64_t step = ((uint64_t)prev[j] - before) / (k + 1);
			if (step == 0) {
				ok = false;
				break;
			}
			for (size_t m = 0; m < k; m++)
				ret[i + m] = (uint32_t)(before + step * (m + 1));
		} else {
			for (size_t m = 0; m < k; m++) {
				uint64_t v = (uint64_t)before + (uint64_t)MC_PRIO_STRIDE * (m + 1);
				if (v > MC_PRIO_USER_HI) {
					ok = false;
					break;
				}
				ret[i + m] = (uint32_t)v;
			}
		}
		i = j;
	}
	if (!ok)
		for (i = 0; i < n; i++)
			ret[i] = MC_PRIO_USER_LO + MC_PRIO_STRIDE * (uint32_t)(i + 1);
	free(tail);
	free(parent);
	free(keep);
}

/* ---- selector identity set (the kernel refuses two policies with one identity) ---- */

struct idset {
	size_t *slot; /* index into plan->pols + 1; 0 = empty */
	size_t cap;
	const struct mc_plan *plan;
};

static void idset_grow(struct idset *set);

/* Returns the existing policy index with this identity, or adds it (returns SIZE_MAX). */
static size_t idset_put(struct idset *set, size_t idx)
{
	const struct mc_xpolicy *x = &set->plan->pols[idx];

	if (set->cap == 0 || (idx + 1) * 2 > set->cap)
		idset_grow(set);
	for (size_t h = mc_sel_hash(x->dir, &x->sel) & (set->cap - 1);; h = (h + 1) & (set->cap - 1)) {
		if (!set->slot[h]) {
			set->slot[h] = idx + 1;
			return SIZE_MAX;
		}
		const struct mc_xpolicy *y = &set->plan->pols[set->slot[h] - 1];
		if (y->dir == x->dir && mc_sel_eq(&y->sel, &x->sel))
			return set->slot[h] - 1;
	}
}

static void idset_grow(struct idset *set)
{
	size_t old = set->cap;
	size_t *oslot = set->slot;

	set->cap = set->cap ? set->cap * 2 : 1024;
	set->slot = mc_calloc(set->cap, sizeof(size_t));
	for (size_t i = 0; i < old; i++) {
		if (!oslot[i])
			continue;
		const struct mc_xpolicy *x = &set->plan->pols[oslot[i] - 1];
		size_t h = mc_sel_hash(x->dir, &x->sel) & (set->cap - 1);
		while (set->slot[h])
			h = (h + 1) & (set->cap - 1);
		set->slot[h] = oslot[i];
	}
	free(oslot);
}

/* ---- fragment generation ---- */

struct field16 {
	struct mc_portmask v[64];
	size_t n;
};

static void field_any(struct field16 *f)
{
	f->v[0] = (struct mc_portmask){ 0, 0 };
	f->n = 1;
}

static void field_ranges(struct field16 *f, const struct mc_portset *ps)
{
	if (ps->any) {
		field_any(f);
		return;
	}
	f->n = 0;
	for (size_t i = 0; i < ps->n; i++) {
		struct mc_portmask tmp[32];
		size_t k = mc_port_blocks(ps->r[i].lo, ps->r[i].hi, tmp, 32);
		for (size_t j = 0; j < k && f->n < MC_ARRAY_SIZE(f->v); j++)
			f->v[f->n++] = tmp[j];
	}
}

static void field_range(struct field16 *f, unsigned lo, unsigned hi, unsigned max)
{
	if (lo == 0 && hi == max) {
		field_any(f);
		return;
	}
	f->n = mc_port_blocks(lo, hi, f->v, MC_ARRAY_SIZE(f->v));
}

struct rule_builder {
	struct mc_plan *plan;
	struct idset *ids;
	struct mc_diags *ds;
	size_t rule;
	unsigned eph_lo, eph_hi; /* the ephemeral port range (mc_ports_take_zero) */
};

/* An outbound TCP policy's local ports, with port 0 (an unbound client's connect, decided
 * before its port is chosen) counted as the selector's exactly when it covers every port the
 * kernel may choose (model.h, mc_ports_take_zero). */
static void field_local_tcp(struct field16 *f, const struct mc_portset *ps, const struct rule_builder *b)
{
	bool zero = mc_ports_take_zero(ps, b->eph_lo, b->eph_hi);

	if (ps->any) {
		field_any(f);
		return;
	}
	f->n = 0;
	if (zero && ps->r[0].lo != 0)
		f->v[f->n++] = (struct mc_portmask){ 0, 0xffff };
	for (size_t i = 0; i < ps->n; i++) {
		struct mc_portmask tmp[32];
		unsigned lo = ps->r[i].lo;
		if (lo == 0 && !zero && ps->r[i].hi == 0)
			continue;
		if (lo == 0 && !zero)
			lo = 1;
		size_t k = mc_port_blocks(lo, ps->r[i].hi, tmp, 32);
		for (size_t j = 0; j < k && f->n < MC_ARRAY_SIZE(f->v); j++)
			f->v[f->n++] = tmp[j];
	}
}

static void add_xpolicy(struct rule_builder *b, enum mc_dir dir, const struct mc_sel *sel,
			const struct mc_xpolicy *proto)
{
	struct mc_plan *plan = b->plan;
	struct mc_rule *r = &plan->rules[b->rule];
	struct mc_xpolicy *x = MC_PUSH(&plan->pols, &plan->npols, &plan->cappols);

	*x = *proto;
	x->dir = dir;
	x->sel = *sel;
	x->rule = b->rule;
	size_t dup = idset_put(b->ids, plan->npols - 1);
	if (dup != SIZE_MAX) {
		/* An earlier rule has this exact selector: this fragment can never match first, and
		 * the kernel would refuse it (EEXIST). */
		plan->npols--;
		*MC_PUSH(&plan->shadow, &plan->nshadow, &plan->capshadow) = plan->pols[plan->npols];
		if (!r->nshadowed++)
			r->shadowed_by = mc_strdup(plan->rules[plan->pols[dup].rule].name);
		return;
	}
	r->nfrag++;
}

static void prefix_list(const struct mc_addrset *a, int family, struct mc_prefix **v, size_t *n,
			size_t *cap)
{
	*n = 0;
	if (a->any) {
		struct mc_prefix *p = MC_PUSH(v, n, cap);
		memset(p, 0, sizeof(*p));
		p->addr.family = (uint8_t)family;
		return;
	}
	mc_ranges_to_prefixes(a->r, a->n, family, v, n, cap);
}

/* Emits local × remote × local-field × remote-field for one family. */
static void emit_family(struct rule_builder *b, const struct mc_policy *p, int family,
			const struct mc_xpolicy *proto)
{
	struct mc_prefix *lp = NULL, *rp = NULL;
	size_t nl = 0, capl = 0, nr = 0, capr = 0;
	struct field16 f1, f2; /* sport-side and dport-side values */
	bool icmp = mc_proto_is_icmp(p->proto);

	prefix_list(&p->local, family, &lp, &nl, &capl);
	prefix_list(&p->remote, family, &rp, &nr, &capr);
	if (icmp && !p->icmp.any) {
		/* The kernel matches ICMP type in sport and code in dport, in both directions. */
		field_range(&f1, p->icmp.type_lo, p->icmp.type_hi, 255);
		field_range(&f2, p->icmp.code_lo, p->icmp.code_hi, 255);
	} else if (p->dir == MC_DIR_OUT && p->proto == MC_PROTO_TCP) {
		field_local_tcp(&f1, &p->local_ports, b);
		field_ranges(&f2, &p->remote_ports);
	} else if (p->dir == MC_DIR_OUT) {
		field_ranges(&f1, &p->local_ports);
		field_ranges(&f2, &p->remote_ports);
	} else {
		field_ranges(&f1, &p->remote_ports);
		field_ranges(&f2, &p->local_ports);
	}
	for (size_t i = 0; i < nl; i++)
		for (size_t j = 0; j < nr; j++)
			for (size_t s = 0; s < f1.n; s++)
				for (size_t d = 0; d < f2.n; d++) {
					struct mc_sel sel;
					const struct mc_prefix *src = p->dir == MC_DIR_OUT ? &lp[i] : &rp[j];
					const struct mc_prefix *dst = p->dir == MC_DIR_OUT ? &rp[j] : &lp[i];
					memset(&sel, 0, sizeof(sel));
					sel.family = (uint8_t)family;
					sel.saddr = src->addr;
					sel.daddr = dst->addr;
					sel.plen_s = src->plen;
					sel.plen_d = dst->plen;
					sel.proto = (uint8_t)p->proto;
					sel.sport = f1.v[s].value & f1.v[s].mask;
					sel.sport_mask = f1.v[s].mask;
					sel.dport = f2.v[d].value & f2.v[d].mask;
					sel.dport_mask = f2.v[d].mask;
					add_xpolicy(b, p->dir, &sel, proto);
				}
	free(lp);
	free(rp);
}

static bool has_family(const struct mc_addrset *a, int family)
{
	if (a->any)
		return true;
	for (size_t i = 0; i < a->n; i++)
		if (a->r[i].family == family)
			return true;
	return false;
}

static size_t add_rule(struct mc_plan *plan, const char *name, enum mc_rule_kind kind, enum mc_dir dir,
		       enum mc_action action, uint32_t prio, const struct mc_policy *src)
{
	struct mc_rule *r = MC_PUSH(&plan->rules, &plan->nrules, &plan->caprules);

	memset(r, 0, sizeof(*r));
	r->name = mc_strdup(name);
	r->kind = kind;
	r->dir = dir;
	r->action = action;
	r->priority = prio;
	r->src = src;
	return plan->nrules - 1;
}

/* A built-in or default rule from a synthetic policy. */
static void add_synthetic(struct rule_builder *b, const char *name, enum mc_rule_kind kind,
			  enum mc_dir dir, enum mc_action action, uint32_t prio, struct mc_policy *p,
			  int family)
{
	struct mc_xpolicy proto = { .priority = prio, .action = action };

	p->dir = dir;
	p->action = action;
	b->rule = add_rule(b->plan, name, kind, dir, action, prio, NULL);
	emit_family(b, p, family, &proto);
}

static struct mc_range host_range(const struct mc_addr *a)
{
	mc_u128 v = mc_addr_to_u128(a);
	return (struct mc_range){ a->family, v, v };
}

/* The names of the rules mcpsec adds itself, by reserved priority: the only place they are
 * spelled. [i][0] inbound, [i][1] outbound. */
static const char *const builtin_names[][2] = {
	{ "BUILTIN-LOOPBACK-IN", "BUILTIN-LOOPBACK-OUT" }, /* MC_PRIO_BASE */
	{ "BUILTIN-OWN-ADDR-IN", "BUILTIN-OWN-ADDR-OUT" }, /* + MC_PRIO_BUILTIN_STEP */
	{ "BUILTIN-ND-IN", "BUILTIN-ND-OUT" },		   /* + 2 steps */
	{ "BUILTIN-MLD-IN", "BUILTIN-MLD-OUT" },	   /* + 3 steps */
};
static const char *const default_names[2][2] = { { "DEFAULT-DISCARD-IN6", "DEFAULT-DISCARD-OUT6" },
						 { "DEFAULT-DISCARD-IN4", "DEFAULT-DISCARD-OUT4" } };
static const char *const pass4_names[2] = { "DEFAULT-BYPASS-IN4", "DEFAULT-BYPASS-OUT4" };

const char *mc_reserved_rule_name(uint32_t priority, enum mc_dir dir, int family)
{
	int d = dir == MC_DIR_OUT;

	if (priority == MC_PRIO_DEFAULT_BYPASS && family == AF_INET)
		return pass4_names[d];
	if (priority == MC_PRIO_DEFAULT)
		return default_names[family == AF_INET][d];
	if (priority >= MC_PRIO_BASE && priority < MC_PRIO_BASE + 4 * MC_PRIO_BUILTIN_STEP &&
	    (priority - MC_PRIO_BASE) % MC_PRIO_BUILTIN_STEP == 0 && dir <= MC_DIR_OUT)
		return builtin_names[(priority - MC_PRIO_BASE) / MC_PRIO_BUILTIN_STEP][d];
	return NULL;
}

bool mc_rule_is_own_addr(const char *name)
{
	return name && (!strcmp(name, builtin_names[1][0]) || !strcmp(name, builtin_names[1][1]));
}

char *mc_unknown_rule_name(uint32_t priority, char *buf, size_t len)
{
	snprintf(buf, len, "UNKNOWN-PRIORITY-%u", priority);
	return buf;
}

static void add_builtins(struct rule_builder *b, const struct mc_host *host)
{
	const char *const (*names)[2] = builtin_names;
	struct mc_addr lo6;

	mc_addr_parse("::1", &lo6);
	for (int d = 0; d < 2; d++) {
		enum mc_dir dir = d ? MC_DIR_OUT : MC_DIR_IN;
		struct mc_range r;
		struct mc_policy p;

		/* ::1 ↔ ::1: a v6 catch-all block would otherwise drop loopback (doc/kernel-notes.md §5). */
		memset(&p, 0, sizeof(p));
		r = host_range(&lo6);
		p.local = (struct mc_addrset){ .r = &r, .n = 1 };
		p.remote = p.local;
		p.local_ports.any = p.remote_ports.any = p.icmp.any = true;
		add_synthetic(b, names[0][d], MC_RULE_BUILTIN, dir, MC_BYPASS, MC_PRIO_BASE, &p, AF_INET6);

		/* Own address ↔ itself: traffic to the host's own IPv6 addresses. */
		if (host && host->nown6) {
			b->rule = add_rule(b->plan, names[1][d], MC_RULE_BUILTIN, dir, MC_BYPASS,
					   MC_PRIO_BASE + MC_PRIO_BUILTIN_STEP, NULL);
			for (size_t i = 0; i < host->nown6; i++) {
				struct mc_xpolicy proto = { .priority = MC_PRIO_BASE + MC_PRIO_BUILTIN_STEP,
							    .action = MC_BYPASS };
				memset(&p, 0, sizeof(p));
				r = host_range(&host->own6[i]);
				p.local = (struct mc_addrset){ .r = &r, .n = 1 };
				p.remote = p.local;
				p.local_ports.any = p.remote_ports.any = p.icmp.any = true;
				p.dir = dir;
				emit_family(b, &p, AF_INET6, &proto);
			}
		}

		/* ND and RS/RA: 133-137. MLD: 130-132 and 143. Any address, both directions. */
		memset(&p, 0, sizeof(p));
		p.local.any = p.remote.any = p.local_ports.any = p.remote_ports.any = true;
		p.proto = MC_PROTO_ICMPV6;
		p.icmp = (struct mc_icmpspec){ false, 133, 137, 0, 255, { 0 } };
		add_synthetic(b, names[2][d], MC_RULE_BUILTIN, dir, MC_BYPASS,
			      MC_PRIO_BASE + 2 * MC_PRIO_BUILTIN_STEP, &p, AF_INET6);
		p.icmp = (struct mc_icmpspec){ false, 130, 132, 0, 255, { 0 } };
		add_synthetic(b, names[3][d], MC_RULE_BUILTIN, dir, MC_BYPASS,
			      MC_PRIO_BASE + 3 * MC_PRIO_BUILTIN_STEP, &p, AF_INET6);
		p.icmp = (struct mc_icmpspec){ false, 143, 143, 0, 255, { 0 } };
		emit_family(b, &p, AF_INET6, &(struct mc_xpolicy){ .priority = MC_PRIO_BASE + 3 * MC_PRIO_BUILTIN_STEP,
								  .action = MC_BYPASS });
	}
}

static void add_defaults(struct rule_builder *b, enum mc_default def)
{
	const char *const (*names)[2] = default_names;
	const char *const *pass4 = pass4_names;
	struct mc_policy p;

	for (int fam = 0; fam < 2; fam++) {
		/* Unmatched IPv4 passes (ipv6-only: IPv4 is outside IPsec; bypass): by an explicit
		 * catch-all, because the kernel's own default blocks while mcpsec enforces. */
		bool pass = fam == 1 && (def == MC_DEF_IPV6_ONLY || def == MC_DEF_BYPASS);
		for (int d = 0; d < 2; d++) {
			memset(&p, 0, sizeof(p));
			p.local.any = p.remote.any = p.local_ports.any = p.remote_ports.any = p.icmp.any = true;
			add_synthetic(b, pass ? pass4[d] : names[fam][d], MC_RULE_DEFAULT, d ? MC_DIR_OUT : MC_DIR_IN,
				      pass ? MC_BYPASS : MC_DISCARD, pass ? MC_PRIO_DEFAULT_BYPASS : MC_PRIO_DEFAULT, &p,
				      fam ? AF_INET : AF_INET6);
		}
	}
}

/* ---- SAs ---- */

static void copy_key(const struct mc_site *s, const char *name, uint8_t *dst, size_t cap, size_t *len)
{
	const struct mc_key *k = name ? mc_site_key(s, name) : NULL;

	*len = 0;
	if (k && k->len <= cap) {
		memcpy(dst, k->bytes, k->len);
		*len = k->len;
	}
}

/* The SAs of a PROTECT policy: the current one and, during a rollover, the next one. */
static int derive_sas(struct mc_plan *plan, size_t rule, const struct mc_site *s,
		      const struct mc_host *host, struct mc_diags *ds)
{
	const struct mc_policy *p = plan->rules[rule].src;
	struct mc_addr remote, local;
	bool unresolved = false;
	char a1[64];

	mc_addr_from_u128(p->remote.r[0].family, p->remote.r[0].lo, &remote);
	if (!p->local.any) {
		mc_addr_from_u128(p->local.r[0].family, p->local.r[0].lo, &local);
	} else if (host && host->route_src) {
		int r = host->route_src(host->ctx, &remote, &local);
		if (r < 0) {
			mc_err(ds, p->loc, "policy '%s': cannot choose a local address to reach %s (%s); "
			       "set 'local' to this host's address", p->name,
			       mc_addr_str(&remote, a1, sizeof(a1)), strerror(-r));
			return -EINVAL;
		}
		plan->rules[rule].local_note = mc_asprintf("local any resolved to %s (route to %s)",
							   mc_addr_str(&local, a1, sizeof(a1)),
							   mc_addr_str(&remote, (char[64]){ 0 }, 64));
	} else {
		memset(&local, 0, sizeof(local));
		local.family = remote.family;
		unresolved = true;
	}
	for (int k = 0; k < 1 + p->next.given; k++) {
		struct mc_xsa *sa = MC_PUSH(&plan->sas, &plan->nsas, &plan->capsas);
		memset(sa, 0, sizeof(*sa));
		sa->family = remote.family;
		sa->saddr = p->dir == MC_DIR_OUT ? local : remote;
		sa->daddr = p->dir == MC_DIR_OUT ? remote : local;
		sa->spi = k ? p->next.spi : p->spi;
		sa->proto = (uint8_t)p->ipsec_proto;
		sa->reqid = plan->rules[rule].reqid;
		sa->integrity = p->integrity;
		sa->confidentiality = p->confidentiality;
		sa->rule = rule;
		sa->local_unresolved = unresolved;
		sa->oseq_may_wrap = p->dir == MC_DIR_OUT; /* RFC 4303 §3.3.3: no anti-replay, so it may cycle */
		sa->lft = p->lifetime;
		copy_key(s, k ? p->next.integrity_key : p->integrity_key, sa->ikey, sizeof(sa->ikey), &sa->ikey_len);
		copy_key(s, k ? p->next.confidentiality_key : p->confidentiality_key, sa->ekey, sizeof(sa->ekey),
			 &sa->ekey_len);
	}
	return 0;
}

/* Reqids (compile.h): the committed ones where they still are unique, then the lowest free. */
static void assign_reqids(const struct mc_site *s, const struct mc_host *host, uint32_t *ret, struct mc_diags *ds)
{
	uint8_t *used = mc_calloc(MC_REQID_COUNT / 8, 1);
	uint32_t next = 1;

#define USED(n) (used[(n) / 8] & (1u << ((n) % 8)))
#define USE(n) (used[(n) / 8] |= (uint8_t)(1u << ((n) % 8)))
	USE(0);
	USE(MC_REQID_LEGACY - MC_REQID_BASE);
	for (size_t i = 0; i < s->npol; i++) {
		const struct mc_policy *p = &s->pol[i];
		uint32_t prev = p->action == MC_PROTECT && host && host->prev_reqid ?
			host->prev_reqid(host->prev_ctx, p->name, p->dir) : 0;
		ret[i] = 0;
		if (mc_reqid_owned(prev) && !USED(prev - MC_REQID_BASE)) {
			ret[i] = prev;
			USE(prev - MC_REQID_BASE);
		}
	}
	for (size_t i = 0; i < s->npol; i++) {
		if (s->pol[i].action != MC_PROTECT || ret[i])
			continue;
		while (next < MC_REQID_COUNT && USED(next))
			next++;
		if (next == MC_REQID_COUNT) {
			mc_err(ds, s->pol[i].loc, "more than %u protect policies: mcpsec's reqid band is full",
			       MC_REQID_COUNT - 2);
			break;
		}
		USE(next);
		ret[i] = MC_REQID_BASE + next;
	}
#undef USED
#undef USE
	free(used);
}

void mc_plan_set_lo4(struct mc_plan *plan, const struct mc_host *host)
{
	struct mc_addr net;
	size_t cap = 0;

	free(plan->lo4);
	plan->lo4 = NULL;
	plan->nlo4 = 0;
	mc_addr_parse("127.0.0.0", &net);
	mc_u128 lo = mc_addr_to_u128(&net);
	*MC_PUSH(&plan->lo4, &plan->nlo4, &cap) = (struct mc_range){ AF_INET, lo, lo | 0xffffff };
	for (size_t i = 0; host && i < host->nown4; i++) {
		mc_u128 a = mc_addr_to_u128(&host->own4[i]);
		if (a < lo || a > (lo | 0xffffff))
			*MC_PUSH(&plan->lo4, &plan->nlo4, &cap) = (struct mc_range){ AF_INET, a, a };
	}
	plan->lo4_xfrm_out = host && host->lo4_xfrm_out;
	plan->lo4_policy_in = host && host->lo4_policy_in;
}

int mc_compile(const struct mc_site *s, const struct mc_host *host, struct mc_diags *ds,
	       struct mc_plan *ret)
{
	struct mc_plan *plan = ret;
	struct idset ids = { .plan = plan };
	struct rule_builder b = { plan, &ids, ds, 0, MC_EPHEMERAL_LO, MC_EPHEMERAL_HI };
	size_t errors_before = ds->errors;
	uint32_t *prev = mc_calloc(s->npol, sizeof(uint32_t)), *prio = mc_calloc(s->npol, sizeof(uint32_t));
	uint32_t *reqid = mc_calloc(s->npol + 1, sizeof(uint32_t));

	memset(plan, 0, sizeof(*plan));
	if (host && host->eph_lo) {
		b.eph_lo = host->eph_lo;
		b.eph_hi = host->eph_hi;
	}
	plan->def = s->def;
	plan->enabled = s->enabled;
	plan->on_failure = s->on_failure;
	mc_plan_set_lo4(plan, host);

	if (s->def != MC_DEF_DENY_ALL)
		add_builtins(&b, host);

	for (size_t i = 0; i < s->npol; i++)
		prev[i] = host && host->prev_priority ?
			host->prev_priority(host->prev_ctx, s->pol[i].name, s->pol[i].dir) : 0;
	mc_assign_priorities(prev, s->npol, prio);
	assign_reqids(s, host, reqid, ds);

	for (size_t i = 0; i < s->npol; i++) {
		const struct mc_policy *p = &s->pol[i];
		struct mc_xpolicy proto = { .priority = prio[i], .action = p->action };

		if (p->action == MC_PROTECT && p->dir == MC_DIR_OUT && p->enforce == MC_ENFORCE_ACCEPT) {
			/* Phase accept: the SAs are installed, but nothing is sent with them yet. An
			 * optional outbound template would not do: it uses the SA once one exists. */
			proto.action = MC_BYPASS;
		} else if (p->action == MC_PROTECT) {
			proto.tmpl_proto = (uint8_t)p->ipsec_proto;
			/* Inbound: any SA of this policy's reqid; outbound: the one it sends with. */
			proto.tmpl_spi = p->dir == MC_DIR_OUT ? mc_policy_send_spi(p) : 0;
			proto.tmpl_reqid = reqid[i];
			/* Before phase require, inbound accepts clear as well ("level use"). */
			proto.tmpl_optional = mc_policy_clear_passes(p);
		}
		b.rule = add_rule(plan, p->name, MC_RULE_USER, p->dir, p->action, prio[i], p);
		plan->rules[b.rule].reqid = reqid[i];
		plan->rules[b.rule].clear_passes = mc_policy_clear_passes(p);
		for (int f = 0; f < 2; f++) {
			int family = f ? AF_INET : AF_INET6;
			if (family == AF_INET && s->def == MC_DEF_IPV6_ONLY)
				continue;
			if (p->proto == MC_PROTO_ICMP && family == AF_INET6)
				continue;
			if (p->proto == MC_PROTO_ICMPV6 && family == AF_INET)
				continue;
			if (has_family(&p->local, family) && has_family(&p->remote, family))
				emit_family(&b, p, family, &proto);
		}
		struct mc_rule *r = &plan->rules[b.rule];
		if (r->nfrag > MC_EXPANSION_WARN)
			mc_warnc(ds, p->loc, "expansion", "policy '%s' becomes %zu kernel policies (more than %d): "
				"lookups slow down when many policies share an address pair; "
				"consider wider ranges", p->name, r->nfrag, MC_EXPANSION_WARN);
		if (r->nshadowed && !r->nfrag)
			mc_warnc(ds, p->loc, "shadowed", "policy '%s' can never match first: every selector of it "
				"repeats '%s' exactly; it is left out of the kernel", p->name, r->shadowed_by);
		else if (r->nshadowed)
			mc_warnc(ds, p->loc, "shadowed-selectors", "policy '%s': %zu of its selectors repeat '%s' exactly and are "
				"left out (they could never match first)", p->name, r->nshadowed, r->shadowed_by);
		if (p->action == MC_PROTECT && p->remote.n == 1 && mc_range_is_host(&p->remote.r[0]))
			derive_sas(plan, b.rule, s, host, ds);
	}
	add_defaults(&b, s->def);
	free(ids.slot);
	free(prev);
	free(prio);
	free(reqid);
	return ds->errors > errors_before ? -EINVAL : 0;
}
