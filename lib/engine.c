/* SPDX-License-Identifier: MIT */
/* The apply transaction (see engine.h). The kernel edge is nlx.c; the state directory's
 * crash-consistent commit is state.c; this file puts them in the one safe order. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compile.h"
#include "conf.h"
#include "diag.h"
#include "engine.h"
#include "model.h"
#include "nlx.h"
#include "state.h"
#include "util.h"
#include "validate.h"

static const struct mc_loc NOWHERE = { NULL, 0, 0 };

struct mc_site *mc_engine_load_site(const char *path, const char *keys_override, bool strict_perms,
				    struct mc_diags *ds)
{
	struct mc_conf_opts o = { .keys_path = keys_override, .strict_key_perms = strict_perms };
	struct mc_site *s = NULL;
	size_t errors = ds->errors;

	mc_conf_load(path, &o, ds, &s);
	if (s)
		mc_site_validate(s, ds);
	if (ds->errors > errors) {
		mc_site_free(s);
		return NULL;
	}
	return s;
}

int mc_engine_load_committed(const char *dir, struct mc_state *st, struct mc_diags *ds, struct mc_site **ret)
{
	int r;

	*ret = NULL;
	if ((r = mc_state_load(dir, st)) < 0) {
		mc_err(ds, mc_loc_file(dir), "cannot read the state directory: %s", strerror(-r));
		return -EINVAL;
	}
	if (!st->committed)
		return -ENOENT;
	char *site = mc_state_site_path(st), *keys = mc_state_keys_path(st);
	bool have_keys = access(keys, F_OK) == 0;
	*ret = mc_engine_load_site(site, have_keys ? keys : NULL, true, ds);
	free(site);
	free(keys);
	return *ret ? 0 : -EINVAL;
}

static int route_src(void *ctx, const struct mc_addr *remote, struct mc_addr *ret)
{
	return mc_nl_route_src(ctx, remote, ret);
}

int mc_engine_compile(struct mc_nl *nl, const struct mc_site *s, struct mc_state *st, struct mc_diags *ds,
		      struct mc_plan *plan)
{
	struct mc_addr *own6 = NULL;
	size_t nown6 = 0;
	int r;

	memset(plan, 0, sizeof(*plan));
	if ((r = mc_nl_own_addrs6(nl, &own6, &nown6)) < 0) {
		mc_err(ds, NOWHERE, "listing the host's addresses: %s", strerror(-r));
		return r;
	}
	struct mc_host host = { route_src, nl, own6, nown6, mc_state_prev_priority, st };
	r = mc_compile(s, &host, ds, plan);
	free(own6);
	if (r < 0) {
		mc_plan_free(plan);
		memset(plan, 0, sizeof(*plan));
		return -EINVAL;
	}
	return 0;
}

const char *mc_op_name(const struct mc_op *o, const struct mc_state *st)
{
	const char *n = NULL;

	if (strcmp(o->name, "(stale)"))
		return o->name;
	if (o->kind == MC_OP_POL_DEL)
		n = mc_state_rule_name(st, o->pol.priority, o->pol.dir, o->pol.sel.family);
	return n ? n : "(stale)";
}

void mc_op_describe(const struct mc_op *o, const struct mc_state *st, struct mc_buf *b)
{
	char a1[64], a2[64];

	switch (o->kind) {
	case MC_OP_SA_ADD:
	case MC_OP_SA_DEL:
		mc_buf_printf(b, "%s SA of '%s' (spi %u/0x%08x %s %s -> %s)",
			      o->kind == MC_OP_SA_ADD ? "adding" : "deleting", mc_op_name(o, st), o->sa.spi,
			      o->sa.spi, o->sa.proto == 51 ? "ah" : "esp", mc_addr_str(&o->sa.saddr, a1, sizeof(a1)),
			      mc_addr_str(&o->sa.daddr, a2, sizeof(a2)));
		break;
	default:
		mc_buf_printf(b, "%s policy '%s' (dir %s, priority %u, ",
			      o->kind == MC_OP_POL_ADD ? "adding" : o->kind == MC_OP_POL_UPD ? "updating" : "deleting",
			      mc_op_name(o, st), mc_dir_str(o->pol.dir), o->pol.priority);
		mc_sel_str(&o->pol.sel, o->pol.dir, b);
		mc_buf_puts(b, ")");
	}
}

enum mc_engine_status mc_engine_diff(struct mc_nl *nl, const struct mc_plan *plan, bool with_policies,
				     const struct mc_state *st, struct mc_diags *ds, struct mc_diff *ret)
{
	struct mc_kstate have;
	int r;

	memset(ret, 0, sizeof(*ret));
	if ((r = mc_nl_dump(nl, &have)) < 0) {
		mc_err(ds, NOWHERE, "reading the kernel's XFRM policies and SAs: %s", strerror(-r));
		return MC_ENGINE_LOCAL;
	}
	r = mc_reconcile(plan, &have, with_policies, ds, ret);
	mc_kstate_free(&have);
	if (r < 0)
		return MC_ENGINE_CONFLICT;
	for (size_t i = 0; i < ret->n; i++)
		ret->ops[i].name = mc_op_name(&ret->ops[i], st);
	return MC_ENGINE_OK;
}

/* Names the refused operations (the first five) with the kernel's reason. */
static void report_refusals(const struct mc_diff *diff, const struct mc_state *st, struct mc_diags *ds)
{
	struct mc_buf b = { 0 };
	size_t failed = 0;

	for (size_t i = 0; i < diff->n; i++) {
		const struct mc_op *o = &diff->ops[i];
		if (!o->err || o->err == -ECANCELED) /* ECANCELED: not sent, an SA before it failed */
			continue;
		if (failed++ >= 5)
			continue;
		b.len = 0;
		if (b.s)
			b.s[0] = '\0';
		mc_op_describe(o, st, &b);
		mc_err(ds, NOWHERE, "%s: %s%s%s%s", mc_buf_str(&b), strerror(-o->err), o->errmsg[0] ? " (kernel: " : "",
		       o->errmsg, o->errmsg[0] ? ")" : "");
	}
	if (failed > 5)
		mc_err(ds, NOWHERE, "... and %zu more failed operations", failed - 5);
	mc_buf_free(&b);
}

/* Undoes what took effect of diff; MC_ENGINE_PARTIAL when that fails too. */
static enum mc_engine_status undo(struct mc_nl *nl, const struct mc_diff *diff, size_t done, struct mc_diags *ds,
				  const char *why)
{
	struct mc_diff inv;
	mc_diff_inverse(diff->ops, diff->n, &inv);
	int r = inv.n ? mc_nl_exec(nl, inv.ops, inv.n) : 0;
	mc_diff_free(&inv);
	if (r < 0) {
		mc_err(ds, NOWHERE, "%s, and undoing %zu operations failed too (%s): the kernel now holds a partial "
		       "configuration; run 'mcpsec status ipsec all'", why, done, strerror(-r));
		return MC_ENGINE_PARTIAL;
	}
	mc_err(ds, NOWHERE, "%s; the previous state was restored (%zu operations undone)", why, done);
	return MC_ENGINE_REFUSED;
}

enum mc_engine_status mc_engine_send(struct mc_nl *nl, struct mc_state *st, struct mc_diff *diff,
				     const struct mc_plan *plan, const struct mc_engine_commit *commit,
				     struct mc_diags *ds, size_t *done)
{
	struct mc_state next = { 0 };
	int r;

	*done = 0;
	/* The intent first: a process killed while the kernel changes leaves `pending`, never a
	 * kernel that no state names (the next apply, enable or mcpsecd takes it from there). */
	if (commit && (r = mc_state_prepare(st, commit->site_file, commit->keys_file, plan, commit->enabled, &next)) < 0) {
		mc_err(ds, mc_loc_file(st->dir), "writing the new configuration: %s; nothing was changed",
		       mc_state_dir_error(r));
		return MC_ENGINE_LOCAL;
	}
	if (diff->n && mc_nl_exec(nl, diff->ops, diff->n) < 0) {
		for (size_t i = 0; i < diff->n; i++)
			*done += diff->ops[i].err == 0;
		report_refusals(diff, st, ds);
		if (commit)
			mc_state_abandon(&next);
		return undo(nl, diff, *done, ds, "the kernel refused the change");
	}
	*done = diff->n;
	if (!commit)
		return MC_ENGINE_OK;
	if ((r = mc_state_switch(st, &next)) < 0) {
		mc_state_abandon(&next);
		mc_err(ds, mc_loc_file(st->dir), "committing the new configuration: %s", mc_state_dir_error(r));
		enum mc_engine_status u = undo(nl, diff, *done, ds, "the change could not be committed");
		return u == MC_ENGINE_PARTIAL ? u : MC_ENGINE_LOCAL;
	}
	return MC_ENGINE_OK;
}
