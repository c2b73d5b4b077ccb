/* SPDX-License-Identifier: MIT */
/* The kernel as mcpsec's rules (see kview.h). */
#include <stdlib.h>
#include <string.h>

#include "compile.h"
#include "kview.h"
#include "names.h"
#include "util.h"

const char *mc_rule_kind_str(enum mc_rule_kind kind)
{
	static const char *const words[] = { "user", "builtin", "default" };
	return kind < MC_ARRAY_SIZE(words) ? words[kind] : "?";
}

static int cmp_pol(const void *a, const void *b, void *ctx)
{
	const struct mc_kstate *k = ctx;
	const struct mc_kpolicy *x = &k->pols[*(const size_t *)a], *y = &k->pols[*(const size_t *)b];

	if (x->x.dir != y->x.dir)
		return x->x.dir > y->x.dir ? -1 : 1; /* out first, as the seed lists them */
	if (x->x.priority != y->x.priority)
		return x->x.priority < y->x.priority ? -1 : 1;
	if (x->x.sel.family != y->x.sel.family)
		return x->x.sel.family > y->x.sel.family ? -1 : 1; /* IPv6 first */
	/* Fragments of one rule in a stable order: by ports, then addresses. */
	if (x->x.sel.sport != y->x.sel.sport)
		return x->x.sel.sport < y->x.sel.sport ? -1 : 1;
	if (x->x.sel.dport != y->x.sel.dport)
		return x->x.sel.dport < y->x.sel.dport ? -1 : 1;
	int c = memcmp(x->x.sel.daddr.a, y->x.sel.daddr.a, 16);
	return c ? c : memcmp(x->x.sel.saddr.a, y->x.sel.saddr.a, 16);
}

/* Whether rule r's template takes SA s: the reqid and protocol, and the SPI when the template
 * names one (an outbound template of a per-policy reqid also takes the next SA of a rollover). */
static bool takes(const struct mc_kview_rule *r, const struct mc_ksa *s)
{
	if (r->clear_passes && r->dir == MC_DIR_OUT) /* phase accept, outbound: by reqid alone */
		return mc_reqid_owned(s->x.reqid) && s->x.reqid == r->tmpl_reqid;
	return mc_reqid_owned(s->x.reqid) && s->x.reqid == r->tmpl_reqid && s->x.proto == r->tmpl_proto &&
	       (!r->tmpl_spi || s->x.spi == r->tmpl_spi || (r->dir == MC_DIR_OUT && s->x.reqid != MC_REQID_LEGACY));
}

/* The SAs of k in reqid order (dump order within one reqid): each rule finds its own by binary
 * search, so 10,000 PROTECT rules do not each scan every SA. */
static int cmp_sa_reqid(const void *a, const void *b, void *ctx)
{
	const struct mc_kstate *k = ctx;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	uint32_t rx = k->sas[x].x.reqid, ry = k->sas[y].x.reqid;

	return rx != ry ? (rx < ry ? -1 : 1) : x < y ? -1 : x > y;
}

/* A PROTECT rule's SAs, the one it sends with (outbound) first. */
static void find_sas(const struct mc_kstate *k, const size_t *by_reqid, struct mc_kview_rule *r)
{
	size_t lo = 0, hi = k->nsas;

	while (lo < hi) { /* the first SA whose reqid is not below the template's */
		size_t mid = lo + (hi - lo) / 2;
		if (k->sas[by_reqid[mid]].x.reqid < r->tmpl_reqid)
			lo = mid + 1;
		else
			hi = mid;
	}
	r->nsas = 0;
	for (size_t i = lo; i < k->nsas && k->sas[by_reqid[i]].x.reqid == r->tmpl_reqid &&
			    r->nsas < MC_ARRAY_SIZE(r->sas); i++) {
		const struct mc_ksa *s = &k->sas[by_reqid[i]];
		if (!takes(r, s))
			continue;
		if (s->x.spi == r->tmpl_spi && r->nsas) {
			r->sas[r->nsas++] = r->sas[0];
			r->sas[0] = s;
		} else {
			r->sas[r->nsas++] = s;
		}
	}
	r->sa = r->nsas && (r->dir != MC_DIR_OUT || r->sas[0]->x.spi == r->tmpl_spi) ? r->sas[0] : NULL;
}

static struct mc_kview_rule *new_rule(struct mc_kview *v, const struct mc_kpolicy *p, const char *name,
				      const char *unknown)
{
	struct mc_kview_rule *r = MC_PUSH(&v->rules, &v->nrules, &v->caprules);

	memset(r, 0, sizeof(*r));
	r->name = name == unknown ? (r->unknown = mc_strdup(unknown)) : name;
	r->dir = p->x.dir;
	r->priority = p->x.priority;
	r->action = p->x.action;
	r->kind = p->x.priority >= MC_PRIO_DEFAULT ? MC_RULE_DEFAULT :
		  p->x.priority < MC_PRIO_USER_LO ? MC_RULE_BUILTIN : MC_RULE_USER;
	r->tmpl_proto = p->x.tmpl_proto;
	r->tmpl_spi = p->x.tmpl_spi;
	r->tmpl_reqid = p->x.tmpl_reqid;
	r->clear_passes = p->x.action == MC_PROTECT && p->x.tmpl_optional;
	return r;
}

/* An outbound user rule that allows without a template, but was committed as a PROTECT rule
 * (it has a reqid): a PROTECT in phase accept, whose SAs are installed and not yet sent with. */
static void phase_accept(struct mc_kview_rule *r, const struct mc_names *nm)
{
	uint32_t reqid;

	if (r->dir != MC_DIR_OUT || r->action != MC_BYPASS || r->kind != MC_RULE_USER || !nm ||
	    !(reqid = mc_names_prev_reqid((void *)nm, r->name, r->dir)))
		return;
	r->action = MC_PROTECT;
	r->clear_passes = true;
	r->tmpl_reqid = reqid;
}

/* Each SA's owner: the rule that takes it (its role there), else its reqid's committed owner. */
static void own_sas(struct mc_kview *v, const struct mc_names *nm)
{
	const struct mc_kstate *k = v->k;

	v->sas = mc_calloc(k->nsas + 1, sizeof(*v->sas));
	for (size_t i = 0; i < k->nsas; i++)
		v->sas[i] = (struct mc_kview_sa){ .rule = MC_KVIEW_NONE };
	for (size_t r = 0; r < v->nrules; r++) {
		const struct mc_kview_rule *rule = &v->rules[r];
		for (size_t j = 0; j < rule->nsas; j++) {
			struct mc_kview_sa *o = &v->sas[rule->sas[j] - k->sas];
			if (o->rule != MC_KVIEW_NONE)
				continue;
			*o = (struct mc_kview_sa){ r, rule->name, rule->dir,
						   rule->dir != MC_DIR_OUT ? "accepted" :
						   rule->sas[j] == rule->sa ? "sending" : "installed, not sending" };
		}
	}
	for (size_t i = 0; i < k->nsas; i++) {
		if (!mc_reqid_owned(k->sas[i].x.reqid)) {
			v->nforeign_sas++;
			continue;
		}
		const struct mc_state_name *owner = v->sas[i].name ? NULL : mc_names_reqid_owner(nm, k->sas[i].x.reqid);
		if (owner) {
			v->sas[i].name = owner->name;
			v->sas[i].dir = owner->dir;
		}
	}
}

void mc_kview_build(const struct mc_kstate *k, const struct mc_names *nm, struct mc_kview *ret)
{
	size_t *order = mc_calloc(k->npols + 1, sizeof(size_t)), no = 0;

	memset(ret, 0, sizeof(*ret));
	ret->k = k;
	for (size_t i = 0; i < k->npols; i++) {
		if (!mc_prio_owned(k->pols[i].x.priority))
			ret->nforeign_pols++;
		else if (k->pols[i].x.dir <= MC_DIR_OUT) /* mcpsec installs no forward policies */
			order[no++] = i;
	}
	qsort_r(order, no, sizeof(size_t), cmp_pol, (void *)k);
	size_t *by_reqid = mc_calloc(k->nsas + 1, sizeof(size_t));
	for (size_t i = 0; i < k->nsas; i++)
		by_reqid[i] = i;
	qsort_r(by_reqid, k->nsas, sizeof(size_t), cmp_sa_reqid, (void *)k);
	for (size_t i = 0; i < no; i++) {
		const struct mc_kpolicy *p = &k->pols[order[i]];
		char unknown[40];
		const char *name = mc_names_kernel(nm, p->x.priority, p->x.dir, p->x.sel.family, unknown, sizeof(unknown));
		struct mc_kview_rule *cur = ret->nrules ? &ret->rules[ret->nrules - 1] : NULL;
		if (!cur || cur->dir != p->x.dir || cur->priority != p->x.priority || strcmp(name, cur->name)) {
			cur = new_rule(ret, p, name, unknown);
			phase_accept(cur, nm);
			if (cur->action == MC_PROTECT)
				find_sas(k, by_reqid, cur);
			if (cur->clear_passes && cur->dir == MC_DIR_OUT && cur->nsas)
				cur->tmpl_proto = cur->sas[0]->x.proto;
		}
		*MC_PUSH(&cur->pols, &cur->npols, &cur->cappols) = order[i];
		if (p->use_time > cur->last_use)
			cur->last_use = p->use_time;
	}
	free(order);
	free(by_reqid);
	own_sas(ret, nm);
}

void mc_kview_free(struct mc_kview *v)
{
	for (size_t i = 0; i < v->nrules; i++) {
		free(v->rules[i].pols);
		free(v->rules[i].unknown);
	}
	free(v->rules);
	free(v->sas);
	memset(v, 0, sizeof(*v));
}

void mc_kview_plan(const struct mc_kview *v, enum mc_default def, bool enabled, struct mc_plan *plan)
{
	memset(plan, 0, sizeof(*plan));
	plan->def = def;
	plan->enabled = enabled;
	for (size_t r = 0; r < v->nrules; r++) {
		const struct mc_kview_rule *kr = &v->rules[r];
		struct mc_rule *nr = MC_PUSH(&plan->rules, &plan->nrules, &plan->caprules);
		memset(nr, 0, sizeof(*nr));
		nr->name = mc_strdup(kr->name);
		nr->kind = kr->kind;
		nr->dir = kr->dir;
		nr->action = kr->action;
		nr->priority = kr->priority;
		nr->reqid = kr->tmpl_reqid;
		nr->clear_passes = kr->clear_passes;
		nr->nfrag = kr->npols;
		for (size_t j = 0; j < kr->npols; j++) {
			struct mc_xpolicy *x = MC_PUSH(&plan->pols, &plan->npols, &plan->cappols);
			*x = v->k->pols[kr->pols[j]].x;
			x->rule = r;
		}
	}
	for (size_t i = 0; i < v->k->nsas; i++) {
		if (v->sas[i].rule == MC_KVIEW_NONE)
			continue;
		struct mc_xsa *x = MC_PUSH(&plan->sas, &plan->nsas, &plan->capsas);
		*x = v->k->sas[i].x;
		mc_wipe(x->ikey, sizeof(x->ikey)); /* the plan is for evaluating: no key bytes */
		mc_wipe(x->ekey, sizeof(x->ekey));
		x->ikey_len = x->ekey_len = 0;
		x->rule = v->sas[i].rule;
	}
}
