/* SPDX-License-Identifier: MIT */
/* Reconcile: sort-and-merge of desired and actual objects by kernel identity. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algo.h"
#include "compile.h"
#include "diag.h"
#include "plan.h"
#include "reconcile.h"
#include "util.h"

static struct mc_op *push_op(struct mc_diff *d, enum mc_op_kind kind, const char *name)
{
	struct mc_op *op = MC_PUSH(&d->ops, &d->n, &d->cap);

	memset(op, 0, sizeof(*op));
	op->kind = kind;
	op->name = name;
	return op;
}

/* Open-addressing index of kernel policies by identity. */
struct kindex {
	size_t *slot; /* index + 1 */
	size_t cap;
	const struct mc_kstate *k;
};

static void kindex_build(struct kindex *ix, const struct mc_kstate *k)
{
	ix->k = k;
	ix->cap = 64;
	while (ix->cap < k->npols * 2 + 2)
		ix->cap *= 2;
	ix->slot = mc_calloc(ix->cap, sizeof(size_t));
	for (size_t i = 0; i < k->npols; i++) {
		size_t h = mc_sel_hash(k->pols[i].x.dir, &k->pols[i].x.sel) & (ix->cap - 1);
		while (ix->slot[h])
			h = (h + 1) & (ix->cap - 1);
		ix->slot[h] = i + 1;
	}
}

static size_t kindex_find(const struct kindex *ix, enum mc_dir dir, const struct mc_sel *sel)
{
	for (size_t h = mc_sel_hash(dir, sel) & (ix->cap - 1); ix->slot[h]; h = (h + 1) & (ix->cap - 1)) {
		const struct mc_kpolicy *p = &ix->k->pols[ix->slot[h] - 1];
		if (p->x.dir == dir && mc_sel_eq(&p->x.sel, sel))
			return ix->slot[h] - 1;
	}
	return SIZE_MAX;
}

static bool same_policy(const struct mc_xpolicy *a, const struct mc_xpolicy *b)
{
	if (a->priority != b->priority || a->action != b->action)
		return false;
	if (a->action != MC_PROTECT)
		return true;
	return a->tmpl_proto == b->tmpl_proto && a->tmpl_spi == b->tmpl_spi && a->tmpl_reqid == b->tmpl_reqid &&
	       a->tmpl_optional == b->tmpl_optional;
}

static bool same_lifetime(const struct mc_xsa *a, const struct mc_xsa *b)
{
	return !memcmp(&a->lft, &b->lft, sizeof(a->lft));
}

/* Everything but the lifetimes, which UPDSA changes in place. */
static bool same_sa(const struct mc_xsa *a, const struct mc_xsa *b)
{
	return mc_addr_eq(&a->saddr, &b->saddr) && a->reqid == b->reqid && a->oseq_may_wrap == b->oseq_may_wrap &&
	       a->integrity == b->integrity && a->confidentiality == b->confidentiality &&
	       a->ikey_len == b->ikey_len && !memcmp(a->ikey, b->ikey, a->ikey_len) &&
	       a->ekey_len == b->ekey_len && !memcmp(a->ekey, b->ekey, a->ekey_len);
}

static bool sa_id_eq(const struct mc_xsa *a, const struct mc_xsa *b)
{
	return a->family == b->family && a->spi == b->spi && a->proto == b->proto &&
	       mc_addr_eq(&a->daddr, &b->daddr);
}

int mc_reconcile(const struct mc_plan *want, const struct mc_kstate *have, bool with_policies,
		 struct mc_diags *ds, struct mc_diff *ret)
{
	struct mc_diff *d = ret;
	struct kindex ix;
	bool *pol_seen = mc_calloc(have->npols + 1, sizeof(bool));
	bool *sa_seen = mc_calloc(have->nsas + 1, sizeof(bool));
	size_t errors_before = ds->errors;
	char buf[64];

	memset(d, 0, sizeof(*d));
	kindex_build(&ix, have);

	/* SAs first: replaced ones out, then new ones in. Disabled: SAs are left as they are. */
	for (int pass = 0; pass < 2 && with_policies; pass++) {
		for (size_t i = 0; i < want->nsas; i++) {
			const struct mc_xsa *w = &want->sas[i];
			const char *name = want->rules[w->rule].name;
			size_t found = SIZE_MAX;

			for (size_t j = 0; j < have->nsas && found == SIZE_MAX; j++)
				if (sa_id_eq(&have->sas[j].x, w))
					found = j;
			if (found != SIZE_MAX && !mc_reqid_owned(have->sas[found].x.reqid)) {
				if (pass == 0)
					mc_err(ds, mc_loc_file(NULL),
					       "policy '%s': an SA with spi %u (0x%x) to %s already exists and is "
					       "not mcpsec's (reqid %u); remove it or pick another SPI", name, w->spi,
					       w->spi, mc_addr_str(&w->daddr, buf, sizeof(buf)),
					       have->sas[found].x.reqid);
				continue;
			}
			if (found != SIZE_MAX)
				sa_seen[found] = true;
			bool same = found != SIZE_MAX && same_sa(&have->sas[found].x, w);
			if (same && same_lifetime(&have->sas[found].x, w)) {
				d->sa_same += pass == 0;
				continue;
			}
			if (same) {
				if (pass == 1) {
					struct mc_op *op = push_op(d, MC_OP_SA_UPD, name);
					op->sa = *w;
					op->old_sa = have->sas[found].x;
					op->old_sa.oseq = 0;
					d->sa_upd++;
				}
				continue;
			}
			if (pass == 0 && found != SIZE_MAX) {
				/* Keys, algorithms and flags cannot be updated in place (UPDSA ignores them). */
				push_op(d, MC_OP_SA_DEL, name)->sa = have->sas[found].x;
				d->sa_replace++;
			} else if (pass == 1) {
				struct mc_op *op = push_op(d, MC_OP_SA_ADD, name);
				op->sa = *w;
				if (found == SIZE_MAX)
					d->sa_add++;
				else if (have->sas[found].x.oseq)
					/* The replacement continues the send counter a little ahead of where
					 * the dump saw it (packets go out until the delete): never a reset. */
					op->sa.oseq = have->sas[found].x.oseq + MC_OSEQ_CARRY_AHEAD;
			}
		}
	}

	if (with_policies) {
		for (size_t i = 0; i < want->npols; i++) {
			const struct mc_xpolicy *w = &want->pols[i];
			const char *name = want->rules[w->rule].name;
			size_t found = kindex_find(&ix, w->dir, &w->sel);

			if (found == SIZE_MAX) {
				push_op(d, MC_OP_POL_ADD, name)->pol = *w;
				d->pol_add++;
				continue;
			}
			const struct mc_kpolicy *k = &have->pols[found];
			pol_seen[found] = true;
			if (!mc_prio_owned(k->x.priority)) {
				struct mc_buf b = { 0 };
				mc_sel_str(&w->sel, w->dir, &b);
				mc_err(ds, mc_loc_file(NULL),
				       "policy '%s': the kernel already has a policy that mcpsec does not own "
				       "with the same selector (%s, dir %s, priority %u); remove it or change "
				       "the policy", name, mc_buf_str(&b), mc_dir_str(w->dir), k->x.priority);
				mc_buf_free(&b);
				continue;
			}
			if (same_policy(&k->x, w)) {
				d->pol_same++;
				continue;
			}
			struct mc_op *op = push_op(d, MC_OP_POL_UPD, name);
			op->pol = *w;
			op->old_pol = k->x;
			d->pol_upd++;
		}
	}
	for (size_t j = 0; j < have->npols; j++) {
		if (pol_seen[j] || !mc_prio_owned(have->pols[j].x.priority))
			continue;
		push_op(d, MC_OP_POL_DEL, "(stale)")->pol = have->pols[j].x;
		d->pol_del++;
	}
	for (size_t j = 0; j < have->nsas && with_policies; j++) {
		if (sa_seen[j] || !mc_reqid_owned(have->sas[j].x.reqid))
			continue;
		push_op(d, MC_OP_SA_DEL, "(stale)")->sa = have->sas[j].x;
		d->sa_del++;
	}
	free(ix.slot);
	free(pol_seen);
	free(sa_seen);
	return ds->errors > errors_before ? -EINVAL : 0;
}

void mc_diff_inverse(const struct mc_op *ops, size_t n, struct mc_diff *ret)
{
	memset(ret, 0, sizeof(*ret));
	for (size_t i = n; i-- > 0;) {
		const struct mc_op *o = &ops[i];
		struct mc_op *inv;

		if (o->err)
			continue;
		switch (o->kind) {
		case MC_OP_SA_ADD:
			push_op(ret, MC_OP_SA_DEL, o->name)->sa = o->sa;
			break;
		case MC_OP_SA_DEL:
			push_op(ret, MC_OP_SA_ADD, o->name)->sa = o->sa;
			break;
		case MC_OP_SA_UPD:
			inv = push_op(ret, MC_OP_SA_UPD, o->name);
			inv->sa = o->old_sa;
			inv->old_sa = o->sa;
			break;
		case MC_OP_POL_ADD:
			push_op(ret, MC_OP_POL_DEL, o->name)->pol = o->pol;
			break;
		case MC_OP_POL_DEL:
			push_op(ret, MC_OP_POL_ADD, o->name)->pol = o->pol;
			break;
		case MC_OP_POL_UPD:
			inv = push_op(ret, MC_OP_POL_UPD, o->name);
			inv->pol = o->old_pol;
			inv->old_pol = o->pol;
			break;
		}
	}
}

const struct mc_op_words *mc_op_words(enum mc_op_kind k)
{
	static const struct mc_op_words words[] = {
		[MC_OP_SA_ADD] = { "add", "add SA", "adding", "sa-missing" },
		[MC_OP_SA_DEL] = { "delete", "delete SA", "deleting", "sa-foreign-or-changed" },
		[MC_OP_SA_UPD] = { "update", "update SA", "updating", "sa-lifetime-changed" },
		[MC_OP_POL_ADD] = { "add", "add policy", "adding", "policy-missing" },
		[MC_OP_POL_UPD] = { "update", "update policy", "updating", "policy-changed" },
		[MC_OP_POL_DEL] = { "delete", "delete policy", "deleting", "policy-extra" },
	};
	static const struct mc_op_words unknown = { "?", "?", "?", "changed" };

	return (size_t)k < MC_ARRAY_SIZE(words) ? &words[k] : &unknown;
}

void mc_diff_render(const struct mc_diff *d, bool ip_cmds, struct mc_buf *out)
{
	char a[64], b[64];

	for (size_t i = 0; i < d->n; i++) {
		const struct mc_op *o = &d->ops[i];
		bool sa = mc_op_is_sa(o->kind);

		if (ip_cmds) {
			const char *verb = mc_op_words(o->kind)->verb;
			if (sa)
				mc_xsa_ip_cmd(&o->sa, verb, false, o->name, out);
			else
				mc_xpolicy_ip_cmd(&o->pol, verb, out);
			continue;
		}
		mc_buf_printf(out, "  %-14s %-24s ", mc_op_words(o->kind)->what, o->name);
		if (sa) {
			mc_buf_printf(out, "spi %u (0x%08x) ", o->sa.spi, o->sa.spi);
			mc_xsa_algs_str(&o->sa, out);
			mc_buf_printf(out, " %s -> %s\n", mc_addr_str(&o->sa.saddr, a, sizeof(a)),
				      mc_addr_str(&o->sa.daddr, b, sizeof(b)));
		} else {
			mc_buf_printf(out, "%s %s ", mc_dir_str(o->pol.dir), mc_action_str(o->pol.action));
			mc_sel_str(&o->pol.sel, o->pol.dir, out);
			if (o->kind == MC_OP_POL_UPD && o->old_pol.priority != o->pol.priority)
				mc_buf_printf(out, " priority %u -> %u", o->old_pol.priority, o->pol.priority);
			else
				mc_buf_printf(out, " priority %u", o->pol.priority);
			mc_buf_puts(out, "\n");
		}
	}
}

/* One JSON object per operation, by name: what apply --json reports (never key bytes: the
 * algorithms are named, their keys are not). */
void mc_diff_render_json(const struct mc_diff *d, struct mc_buf *out)
{
	char a[64], b[64];

	mc_buf_puts(out, "[");
	for (size_t i = 0; i < d->n; i++) {
		const struct mc_op *o = &d->ops[i];
		bool sa = mc_op_is_sa(o->kind);
		const char *verb = mc_op_words(o->kind)->verb;
		struct mc_buf t = { 0 };

		mc_buf_printf(out, "%s{\"op\":\"%s\",\"object\":\"%s\",\"name\":", i ? "," : "", verb,
			      sa ? "sa" : "policy");
		mc_buf_json_str(out, o->name);
		if (sa) {
			mc_xsa_algs_str(&o->sa, &t);
			mc_buf_printf(out, ",\"spi\":%u,\"src\":\"%s\",\"dst\":\"%s\",\"algorithms\":", o->sa.spi,
				      mc_addr_str(&o->sa.saddr, a, sizeof(a)), mc_addr_str(&o->sa.daddr, b, sizeof(b)));
		} else {
			mc_sel_str(&o->pol.sel, o->pol.dir, &t);
			mc_buf_printf(out, ",\"dir\":\"%s\",\"action\":\"%s\",\"priority\":%u,", mc_dir_str(o->pol.dir),
				      mc_action_str(o->pol.action), o->pol.priority);
			if (o->kind == MC_OP_POL_UPD)
				mc_buf_printf(out, "\"old_priority\":%u,", o->old_pol.priority);
			mc_buf_puts(out, "\"selector\":");
		}
		mc_buf_json_str(out, mc_buf_str(&t));
		mc_buf_puts(out, "}");
		mc_buf_free(&t);
	}
	mc_buf_puts(out, "]");
}

void mc_diff_own_name(struct mc_diff *d, struct mc_op *op, const char *name)
{
	char *copy = mc_strdup(name);

	*MC_PUSH(&d->names, &d->nnames, &d->capnames) = copy;
	op->name = copy;
}

void mc_diff_free(struct mc_diff *d)
{
	for (size_t i = 0; i < d->nnames; i++)
		free(d->names[i]);
	free(d->names);
	mc_wipe(d->ops, d->cap * sizeof(*d->ops));
	free(d->ops);
	memset(d, 0, sizeof(*d));
}
