/* SPDX-License-Identifier: MIT */
/* The apply transaction (see engine.h). The kernel edge is nlx.c; the state directory's
 * crash-consistent commit is state.c; this file puts them in the one safe order. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "compile.h"
#include "conf.h"
#include "diag.h"
#include "engine.h"
#include "fileio.h"
#include "model.h"
#include "kernel.h"
#include "kview.h"
#include "proc.h"
#include "state.h"
#include "util.h"
#include "validate.h"

static const struct mc_loc NOWHERE = { NULL, 0, 0 };

/* Loads and validates a site with the given options; NULL when it has errors. */
static struct mc_site *load_site(const char *path, const struct mc_conf_opts *o, struct mc_diags *ds)
{
	struct mc_site *s = NULL;
	size_t errors = ds->errors;

	mc_conf_load(path, o, ds, &s);
	if (s)
		mc_site_validate(s, ds);
	if (ds->errors > errors) {
		mc_site_free(s);
		return NULL;
	}
	return s;
}

struct mc_site *mc_engine_load_site(const char *path, const char *keys_override, bool strict_perms,
				    struct mc_diags *ds)
{
	struct mc_conf_opts o = { .keys_path = keys_override, .strict_key_perms = strict_perms };

	return load_site(path, &o, ds);
}

struct mc_site *mc_engine_load_site_logic(const char *path, struct mc_diags *ds)
{
	struct mc_conf_opts o = { .keys_optional = true };

	return load_site(path, &o, ds);
}

int mc_engine_load_committed(const char *dir, bool skip_keys, struct mc_state *st, struct mc_diags *ds,
			     struct mc_site **ret)
{
	int r;

	*ret = NULL;
	if ((r = mc_state_load(dir, st)) < 0) {
		if (r == -EUCLEAN)
			mc_err(ds, mc_loc_file(dir), "the state directory is damaged: %s", st->damage);
		else
			mc_err(ds, mc_loc_file(dir), "cannot read the state directory: %s", mc_state_dir_error(r));
		return -EINVAL;
	}
	if (!st->committed)
		return -ENOENT;
	char *site = mc_state_site_path(st), *keys = mc_state_keys_path(st);

	struct mc_conf_opts o = { .keys_path = access(keys, F_OK) == 0 ? keys : NULL, .strict_key_perms = true,
				  .skip_keys = skip_keys };
	*ret = load_site(site, &o, ds);
	free(site);
	free(keys);
	return *ret ? 0 : -EINVAL;
}

int mc_engine_load_staged(const char *dir, struct mc_state *st, struct mc_diags *ds, struct mc_site **ret)
{
	int r = mc_state_staged(dir, st, NULL);

	*ret = NULL;
	if (r <= 0) {
		if (r < 0)
			mc_err(ds, mc_loc_file(dir), "the staged list is damaged: %s", mc_state_damage(st, r));
		return r < 0 ? -EINVAL : -ENOENT;
	}
	char *site = mc_state_site_path(st), *keys = mc_state_keys_path(st);
	struct mc_conf_opts o = { .keys_path = access(keys, F_OK) == 0 ? keys : NULL, .strict_key_perms = true };
	*ret = load_site(site, &o, ds);
	free(site);
	free(keys);
	return *ret ? 0 : -EINVAL;
}

static int route_src(void *ctx, const struct mc_addr *remote, struct mc_addr *ret)
{
	return mc_k_route_src(ctx, remote, ret);
}

int mc_engine_check_locals(struct mc_kernel *kern, const struct mc_site *s, struct mc_diags *ds)
{
	struct mc_host host;
	struct mc_diags quiet = { 0 }; /* a failure is the caller's to word: -errno */
	int r = mc_engine_host(kern, &host, &quiet); /* the host's addresses: the one place they are listed */

	mc_diags_free(&quiet);
	for (size_t i = 0; i < s->npol && !r; i++) {
		const struct mc_policy *p = &s->pol[i];
		bool mine = p->local.any;
		for (size_t k = 0; k < host.nown6 && !mine; k++)
			mine = mc_addrset_has(&p->local, &host.own6[k]);
		for (size_t k = 0; k < host.nown4 && !mine; k++)
			mine = mc_addrset_has(&p->local, &host.own4[k]);
		if (mine || !p->local.n)
			continue;
		char a[96];
		mc_range_str(&p->local.r[0], a, sizeof(a));
		mc_warnc(ds, p->local.loc, "not-local",
			 "policy '%s': local %s%s%s%s is not an address of this host: was the site written for another "
			 "host? Nothing this host sends or receives matches it%s. (A floating address that comes here "
			 "later is fine: then ignore this.)", p->name, p->local.name ? p->local.name : a,
			 p->local.name ? " (" : "", p->local.name ? a : "", p->local.name ? ")" : "",
			 p->action == MC_PROTECT ? ", and its SAs carry an address this host does not send from" : "");
	}
	mc_engine_host_free(&host);
	return r;
}

int mc_engine_host(struct mc_kernel *kern, struct mc_host *host, struct mc_diags *ds)
{
	struct mc_addr *own6 = NULL, *own4 = NULL;
	size_t nown6 = 0, nown4 = 0;
	int r;

	memset(host, 0, sizeof(*host));
	if ((r = mc_k_own_addrs(kern, AF_INET6, &own6, &nown6)) < 0 ||
	    (r = mc_k_own_addrs(kern, AF_INET, &own4, &nown4)) < 0) {
		free(own6);
		mc_err(ds, NOWHERE, "listing the host's addresses: %s", strerror(-r));
		return r;
	}
	host->own6 = own6;
	host->nown6 = nown6;
	host->own4 = own4;
	host->nown4 = nown4;
	mc_proc_ephemeral(&host->eph_lo, &host->eph_hi);
	/* The kernel ORs "all" with the device (IN_DEV_ORCONF): lo is exempt if either is set. */
	host->lo4_xfrm_out = !mc_proc_sysctl_on("/proc/sys/net/ipv4/conf/all/disable_xfrm", false) &&
			     !mc_proc_sysctl_on("/proc/sys/net/ipv4/conf/lo/disable_xfrm", true);
	host->lo4_policy_in = !mc_proc_sysctl_on("/proc/sys/net/ipv4/conf/all/disable_policy", false) &&
			      !mc_proc_sysctl_on("/proc/sys/net/ipv4/conf/lo/disable_policy", true);
	return 0;
}

void mc_engine_host_free(struct mc_host *host)
{
	free((void *)host->own6);
	free((void *)host->own4);
	memset(host, 0, sizeof(*host));
}

int mc_engine_compile(struct mc_kernel *kern, const struct mc_site *s, struct mc_state *st, struct mc_diags *ds,
		      struct mc_plan *plan)
{
	struct mc_host host;
	int r;

	memset(plan, 0, sizeof(*plan));
	if ((r = mc_engine_host(kern, &host, ds)) < 0)
		return r;
	host.route_src = route_src;
	host.ctx = kern;
	host.prev_priority = mc_names_prev_priority;
	host.prev_reqid = mc_names_prev_reqid;
	host.prev_ctx = st ? &st->names : NULL;
	r = mc_compile(s, &host, ds, plan);
	mc_engine_host_free(&host);
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
		n = mc_names_rule(st ? &st->names : NULL, o->pol.priority, o->pol.dir, o->pol.sel.family);
	return n ? n : "(stale)";
}

void mc_op_describe(const struct mc_op *o, const struct mc_state *st, struct mc_buf *b)
{
	char a1[64], a2[64];

	switch (o->kind) {
	case MC_OP_SA_ADD:
	case MC_OP_SA_DEL:
	case MC_OP_SA_UPD:
		mc_buf_printf(b, "%s SA of '%s' (spi %u/0x%08x %s %s -> %s)",
			      mc_op_words(o->kind)->gerund, mc_op_name(o, st), o->sa.spi,
			      o->sa.spi, mc_ipsec_proto_str(o->sa.proto), mc_addr_str(&o->sa.saddr, a1, sizeof(a1)),
			      mc_addr_str(&o->sa.daddr, a2, sizeof(a2)));
		break;
	default:
		mc_buf_printf(b, "%s policy '%s' (dir %s, priority %u, ",
			      mc_op_words(o->kind)->gerund, mc_op_name(o, st), mc_dir_str(o->pol.dir), o->pol.priority);
		mc_sel_str(&o->pol.sel, o->pol.dir, b);
		mc_buf_puts(b, ")");
	}
}

/* The operations that bring the kernel (dumped as have) to plan. Each operation is named by
 * its rule: a stale one by the committed state, as a copy the diff owns (a commit then
 * replaces the state). */
static enum mc_engine_status diff_kernel(const struct mc_kstate *have, const struct mc_plan *plan, bool with_policies,
					 const struct mc_state *st, struct mc_diags *ds, struct mc_diff *ret)
{
	int r = mc_reconcile(plan, have, with_policies, ds, ret);

	ret->with_policies = with_policies;
	if (r < 0)
		return MC_ENGINE_CONFLICT;
	for (size_t i = 0; i < ret->n; i++) {
		const char *name = mc_op_name(&ret->ops[i], st);
		if (name != ret->ops[i].name)
			mc_diff_own_name(ret, &ret->ops[i], name);
	}
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
static enum mc_engine_status undo(struct mc_kernel *kern, const struct mc_diff *diff, size_t done, struct mc_diags *ds,
				  const char *why)
{
	struct mc_diff inv;
	mc_diff_inverse(diff->ops, diff->n, &inv);
	int r = inv.n ? mc_k_exec(kern, inv.ops, inv.n) : 0;
	mc_diff_free(&inv);
	if (r < 0) {
		mc_err(ds, NOWHERE, "%s, and undoing %zu operations failed too (%s): the kernel now holds a partial "
		       "configuration; run 'mcpsec status ipsec all'", why, done, strerror(-r));
		return MC_ENGINE_PARTIAL;
	}
	mc_err(ds, NOWHERE, "%s; the previous state was restored (%zu operations undone)", why, done);
	return MC_ENGINE_REFUSED;
}

/*
 * The kernel's default for packets no policy matches: block, both ways, while mcpsec enforces,
 * so that a flush of its policies (`ip xfrm policy flush`) closes the host until they are back,
 * never opens it. Nothing changes while the policies are in: every plan ends in catch-alls
 * (DEFAULT-DISCARD-*, DEFAULT-BYPASS-*4) that decide all traffic first. Forwarding's own
 * default is never touched. Accept again when mcpsec enforces nothing (disable). Read first,
 * so that a daemon repairing it does not set it again and again.
 */
static void set_kernel_default(struct mc_kernel *kern, bool block, struct mc_diags *ds)
{
	bool in, out;
	int r = mc_k_get_default(kern, &in, &out);

	if (!r && in == block && out == block)
		return;
	if (!r)
		r = mc_k_set_default(kern, block, block);
	if (r < 0 && block)
		mc_warnc(ds, NOWHERE, "no-default-policy", "the kernel's default policy cannot be set (%s; "
			 "XFRM_MSG_SETDEFAULT needs Linux 5.15): a flush of the policies opens this host until "
			 "they are restored", strerror(-r));
}

/* Nothing to send and nothing new to record: a commit would write a generation equal to the
 * committed one (and no trial waits to be ended), so an idempotent apply writes nothing. */
bool mc_engine_unchanged(const struct mc_state *st, const struct mc_diff *diff, const struct mc_plan *plan,
			 const char *site_file, const char *keys_file, bool enabled)
{
	struct mc_trial tr;

	return !diff->n && mc_state_trial_get(st->dir, &tr) == 0 &&
	       mc_state_same(st, site_file, keys_file, plan, enabled);
}

/*
 * The signals that end a process by default, held back while a change is under way: an apply
 * interrupted from its terminal (SIGINT), stopped by a service manager (SIGTERM) or cut off with
 * its session (SIGHUP) finishes or undoes the change first, and dies of the signal afterwards.
 * Only SIGKILL can cut it short, and the next holder of the lock converges what it left.
 */
static void hold_signals(bool hold, sigset_t *saved)
{
	sigset_t set;

	if (!hold) {
		sigprocmask(SIG_SETMASK, saved, NULL);
		return;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGTSTP);
	sigprocmask(SIG_BLOCK, &set, saved);
}

static enum mc_engine_status send_held(struct mc_kernel *kern, struct mc_state *st, struct mc_diff *diff,
				       const struct mc_plan *plan, const struct mc_engine_commit *commit,
				       struct mc_diags *ds, size_t *done);

/*
 * Sends diff as one transaction. With commit, the new generation is written and recorded as
 * pending before the kernel changes, and made the committed one after; a refusal undoes every
 * operation that took effect and drops the pending generation; a failed commit undoes the
 * kernel change too. *done counts the operations that took effect (before any undo).
 */
static enum mc_engine_status send_change(struct mc_kernel *kern, struct mc_state *st, struct mc_diff *diff,
					 const struct mc_plan *plan, const struct mc_engine_commit *commit,
					 struct mc_diags *ds, size_t *done)
{
	sigset_t saved;

	*done = 0;
	if (commit && !commit->trial_seconds &&
	    mc_engine_unchanged(st, diff, plan, commit->site_file, commit->keys_file, commit->enabled)) {
		if (commit->unchanged)
			*commit->unchanged = true;
		return MC_ENGINE_OK;
	}
	hold_signals(true, &saved);
	enum mc_engine_status es = send_held(kern, st, diff, plan, commit, ds, done);
	hold_signals(false, &saved);
	return es;
}

static enum mc_engine_status send_held(struct mc_kernel *kern, struct mc_state *st, struct mc_diff *diff,
				       const struct mc_plan *plan, const struct mc_engine_commit *commit,
				       struct mc_diags *ds, size_t *done)
{
	struct mc_state next = { 0 };
	int r;

	/* The intent first: a process killed while the kernel changes leaves `pending` (and, for a
	 * trial, the trial's intent with its token), never a kernel that no state names: the next
	 * apply, enable, mcpsecd or the trial's timer takes it from there. */
	if (commit && (r = mc_state_prepare(st, commit->site_file, commit->keys_file, plan, commit->enabled, &next)) < 0) {
		mc_err(ds, mc_loc_file(st->dir), "writing the new configuration: %s; nothing was changed",
		       mc_state_dir_error(r));
		return MC_ENGINE_LOCAL;
	}
	if (commit && commit->trial_seconds &&
	    (r = mc_state_trial_begin(st, &next, commit->trial_seconds, commit->trial_token)) < 0) {
		mc_state_abandon(&next);
		mc_err(ds, mc_loc_file(st->dir), "recording the trial: %s; nothing was changed", mc_state_dir_error(r));
		return MC_ENGINE_LOCAL;
	}
	if (diff->n && (r = mc_k_exec(kern, diff->ops, diff->n)) < 0) {
		for (size_t i = 0; i < diff->n; i++)
			*done += diff->ops[i].err == 0;
		if (r == -EINTR && !commit)
			return MC_ENGINE_STOPPED; /* a repair left when asked: what it sent stays */
		report_refusals(diff, st, ds);
		if (commit)
			mc_state_abandon(&next);
		return undo(kern, diff, *done, ds, "the kernel refused the change");
	}
	*done = diff->n;
	if (!commit) {
		set_kernel_default(kern, diff->with_policies, ds);
		return MC_ENGINE_OK;
	}
	/* The window counts from here: a slow change does not eat into the time to confirm it. */
	if (commit->trial_seconds && (r = mc_state_trial_arm(st->dir, commit->trial_seconds)) < 0) {
		mc_state_abandon(&next);
		mc_err(ds, mc_loc_file(st->dir), "recording the trial: %s", mc_state_dir_error(r));
		enum mc_engine_status u = undo(kern, diff, *done, ds, "the change could not be committed");
		return u == MC_ENGINE_PARTIAL ? u : MC_ENGINE_LOCAL;
	}
	if ((r = mc_state_switch(st, &next)) < 0) {
		mc_state_abandon(&next);
		mc_err(ds, mc_loc_file(st->dir), "committing the new configuration: %s", mc_state_dir_error(r));
		enum mc_engine_status u = undo(kern, diff, *done, ds, "the change could not be committed");
		return u == MC_ENGINE_PARTIAL ? u : MC_ENGINE_LOCAL;
	}
	if (!commit->trial_seconds)
		(void)mc_state_trial_end(st->dir); /* a plain commit keeps what it committed */
	(void)mc_state_set_enforcement(st->dir, NULL);
	set_kernel_default(kern, diff->with_policies, ds); /* committed: no undo can follow */
	return MC_ENGINE_OK;
}

/* ---- enforcing, failing closed ---- */

/* Keeps the kernel's SAs as they are: a plan whose keys could not be read installs its
 * policies only (the templates then find no SA and the kernel drops, never sends in clear). */
/* Removes the operations drop() picks from d; returns how many. */
static size_t drop_ops(struct mc_diff *d, bool (*drop)(const struct mc_op *op, const struct mc_engine_change *c),
		       const struct mc_engine_change *o)
{
	size_t k = 0, n = d->n;

	for (size_t i = 0; i < n; i++)
		if (!drop(&d->ops[i], o))
			d->ops[k++] = d->ops[i];
	d->n = k;
	return n - k;
}

static bool is_sa_op(const struct mc_op *op, const struct mc_engine_change *o)
{
	(void)o;
	return mc_op_is_sa(op->kind);
}

static void drop_sa_ops(struct mc_diff *d)
{
	drop_ops(d, is_sa_op, NULL);
	d->sa_add = d->sa_del = d->sa_replace = d->sa_upd = d->sa_same = 0;
}

/* An addition of an SA o->keep_out names (one the kernel removed at its hard lifetime stays
 * removed: putting the same key back would void the limit). */
static bool kept_out(const struct mc_op *op, const struct mc_engine_change *c)
{
	return op->kind == MC_OP_SA_ADD && c->keep_out(c->ctx, &op->sa);
}

/* The first error of ds, for a one-line reason. */
/* Whether a refusal hit an SA (then the policies alone may still go in). */
static bool refused_sa(const struct mc_diff *d)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->ops[i].err && d->ops[i].err != -ECANCELED &&
		    mc_op_is_sa(d->ops[i].kind))
			return true;
	return false;
}

/* What the kernel enforces now, as the kernel view names it (NULL when mcpsec enforces
 * nothing there), with the host facts of plan: what a change is judged against. */
static const struct mc_plan *kernel_plan(const struct mc_kstate *k, const struct mc_state *st,
					 const struct mc_plan *plan, struct mc_plan *ret)
{
	struct mc_kview v;

	mc_kview_build(k, st ? &st->names : NULL, &v);
	bool any = v.nrules > 0;
	if (any)
		mc_kview_plan(&v, plan->def, true, ret);
	mc_kview_free(&v);
	if (!any)
		return NULL;
	ret->lo4 = plan->nlo4 ? mc_memdup(plan->lo4, plan->nlo4 * sizeof(*plan->lo4)) : NULL;
	ret->nlo4 = plan->nlo4;
	ret->lo4_xfrm_out = plan->lo4_xfrm_out;
	ret->lo4_policy_in = plan->lo4_policy_in;
	return ret;
}

static bool stop_now(const struct mc_engine_change *c)
{
	return c->stop && !c->commit && c->stop(c->ctx);
}

/* The kernel read, judged (the first time), diffed, reported and sent once. */
static enum mc_engine_status attempt(struct mc_kernel *kern, struct mc_state *st, const struct mc_plan *plan,
				     const struct mc_engine_change *c, bool judge, struct mc_diags *ds,
				     struct mc_enforcement *ret, bool *sa_refused)
{
	struct mc_kstate have;
	struct mc_diff diff = { 0 };
	size_t done = 0;
	int r;

	if (stop_now(c))
		return MC_ENGINE_STOPPED;
	if ((r = mc_k_dump(kern, &have)) < 0) {
		mc_err(ds, NOWHERE, "reading the kernel's XFRM policies and SAs: %s", strerror(-r));
		return MC_ENGINE_LOCAL;
	}
	if (judge && c->judge) {
		struct mc_plan kp;
		const struct mc_plan *now = kernel_plan(&have, st, plan, &kp);
		bool go = c->judge(c->ctx, plan, now);
		if (now)
			mc_plan_free(&kp);
		if (!go) {
			mc_kstate_free(&have);
			return MC_ENGINE_DECLINED;
		}
	}
	enum mc_engine_status es = diff_kernel(&have, plan, c->with_policies, st, ds, &diff);
	mc_kstate_free(&have);
	if (es != MC_ENGINE_OK) {
		mc_diff_free(&diff);
		return es;
	}
	if (ret->level == MC_ENFORCE_NO_SAS)
		drop_sa_ops(&diff);
	if (c->keep_out)
		diff.sa_add -= drop_ops(&diff, kept_out, c);
	if (c->report)
		c->report(c->ctx, plan, &diff, st);
	if (c->report_only) {
		mc_diff_free(&diff);
		return MC_ENGINE_OK;
	}
	if (stop_now(c)) {
		mc_diff_free(&diff);
		return MC_ENGINE_STOPPED;
	}
	if (c->stop && !c->commit)
		mc_k_set_stop(kern, c->stop, c->ctx);
	es = send_change(kern, st, &diff, plan, c->commit, ds, &done);
	mc_k_set_stop(kern, NULL, NULL);
	ret->changes = done;
	*sa_refused = es == MC_ENGINE_REFUSED && refused_sa(&diff);
	mc_diff_free(&diff);
	return es;
}

enum mc_engine_status mc_engine_apply(struct mc_kernel *kern, struct mc_state *st, const struct mc_engine_change *c,
				      struct mc_diags *ds, struct mc_enforcement *ret)
{
	struct mc_plan compiled;
	const struct mc_plan *plan = c->plan;
	enum mc_engine_status es;
	int r;

	if (!plan) {
		if ((r = mc_engine_compile(kern, c->site, st, ds, &compiled)) < 0)
			return r == -EINVAL ? MC_ENGINE_INVALID : MC_ENGINE_LOCAL;
		plan = &compiled;
	}
	for (int n = 0;; n++) {
		size_t from = ds->n;
		bool sa_refused = false;
		es = attempt(kern, st, plan, c, n == 0, ds, ret, &sa_refused);
		if (!(c->fail_closed && sa_refused && ret->level == MC_ENFORCE_FULL))
			break;
		/* The kernel refused an SA (no ESP/AH, an algorithm it lacks): fail closed with the
		 * policies. The refusal stays in ds as the reason. */
		ret->level = MC_ENFORCE_NO_SAS;
		mc_diags_first_error(ds, from, ret->reason, sizeof(ret->reason));
		mc_diags_truncate(ds, from);
	}
	ret->npols = c->with_policies ? plan->npols : 0;
	if (plan == &compiled) {
		if (c->keep && es == MC_ENGINE_OK)
			*c->keep = compiled;
		else
			mc_plan_free(&compiled);
	}
	return es;
}

/* Enforces s (compiled here) or, when the cache holds its plan, that plan, with the daemon's
 * or enable's hooks; keeps a freshly compiled plan in the cache when it was enforced. */
static enum mc_engine_status enforce_site(struct mc_kernel *kern, struct mc_state *st, const struct mc_site *s,
					  const struct mc_engine_commit *commit, bool with_policies,
					  const struct mc_enforce_opts *o, struct mc_diags *ds,
					  struct mc_enforcement *ret)
{
	struct mc_engine_cache *cache = o && !commit ? o->cache : NULL;
	struct mc_plan kept = { 0 };
	struct mc_engine_change c = { .site = s, .with_policies = with_policies, .commit = commit, .fail_closed = true,
				      .keep = cache && st->gen ? &kept : NULL };

	if (o) {
		c.report_only = o->report_only;
		c.judge = o->judge;
		c.report = o->report;
		c.keep_out = o->keep_out;
		c.stop = o->stop;
		c.ctx = o->ctx;
	}
	enum mc_engine_status es = mc_engine_apply(kern, st, &c, ds, ret);
	if (c.keep && es == MC_ENGINE_OK) {
		if (ret->level <= MC_ENFORCE_NO_SAS) {
			/* Kept for the next pass over the same generation: the plan points into the site. */
			mc_engine_cache_drop(cache);
			cache->plan = kept;
			cache->site = (struct mc_site *)s;
			cache->level = ret->level;
			snprintf(cache->reason, sizeof(cache->reason), "%s", ret->reason);
			snprintf(cache->gen, sizeof(cache->gen), "%s", st->gen);
			cache->until = mc_boottime() + 60;
			cache->valid = true;
		} else {
			mc_plan_free(&kept);
		}
	}
	return es;
}

void mc_engine_cache_drop(struct mc_engine_cache *c)
{
	if (!c || !c->valid)
		return;
	mc_plan_free(&c->plan);
	mc_site_free(c->site);
	memset(c, 0, sizeof(*c));
}

/* mcpsecd's fast pass: the committed generation is the one the cached plan was compiled from,
 * so only the kernel is read and compared. 1 when it applied (es set), 0 when it did not. */
static int enforce_cached(struct mc_kernel *kern, const char *dir, const struct mc_enforce_opts *o, struct mc_diags *ds,
			  struct mc_enforcement *ret, enum mc_engine_status *es)
{
	struct mc_engine_cache *c = o ? o->cache : NULL;
	struct mc_state st = { 0 };

	if (!c || !c->valid || o->commit_enabled)
		return 0;
	if (mc_boottime() >= c->until) {
		mc_engine_cache_drop(c);
		return 0;
	}
	if (mc_state_load(dir, &st) < 0 || !st.committed || !st.gen || strcmp(st.gen, c->gen)) {
		mc_state_free(&st);
		mc_engine_cache_drop(c);
		return 0;
	}
	ret->level = c->level;
	snprintf(ret->reason, sizeof(ret->reason), "%s", c->reason);
	ret->enabled = st.enabled;
	struct mc_engine_change ch = { .plan = &c->plan, .with_policies = st.enabled, .fail_closed = true,
				       .report_only = o->report_only, .judge = o->judge, .report = o->report,
				       .keep_out = o->keep_out, .stop = o->stop, .ctx = o->ctx };
	*es = mc_engine_apply(kern, &st, &ch, ds, ret);
	if (ret->level != c->level) /* an SA refused now: the next pass compiles afresh */
		mc_engine_cache_drop(c);
	mc_state_free(&st);
	return 1;
}

/* The lockdown set: built-in bypasses (loopback, own addresses, ND, MLD) and the default
 * discard of both families, both directions. Nothing is committed. */
static enum mc_engine_status lockdown(struct mc_kernel *kern, const char *dir, const struct mc_enforce_opts *o,
				      struct mc_diags *ds, struct mc_enforcement *ret)
{
	struct mc_site s = { .file = "(lockdown)", .enabled = true, .def = MC_DEF_DENY };
	struct mc_state none = { .dir = (char *)dir };
	struct mc_enforce_opts unjudged = o ? *o : (struct mc_enforce_opts){ 0 };

	unjudged.judge = NULL; /* failing closed is never declined */
	return enforce_site(kern, &none, &s, NULL, true, &unjudged, ds, ret);
}

/* What to do when the committed configuration cannot be used: the site's ipsec.on-failure,
 * recorded outside the generations (lockdown when that cannot be read either). */
static enum mc_enforce_level failure_level(const char *dir)
{
	return mc_state_on_failure(dir) == MC_ON_FAILURE_OPEN ? MC_ENFORCE_OPEN : MC_ENFORCE_LOCKDOWN;
}

enum mc_engine_status mc_engine_fail_closed(struct mc_kernel *kern, const char *dir, const char *why,
					    struct mc_diags *ds, struct mc_enforcement *ret)
{
	enum mc_engine_status es = MC_ENGINE_OK;

	memset(ret, 0, sizeof(*ret));
	snprintf(ret->reason, sizeof(ret->reason), "%s", why);
	ret->level = failure_level(dir);
	if (ret->level == MC_ENFORCE_LOCKDOWN)
		es = lockdown(kern, dir, NULL, ds, ret);
	return es;
}

enum mc_engine_status mc_engine_enforce(struct mc_kernel *kern, const char *dir, const struct mc_enforce_opts *o,
					struct mc_diags *ds, struct mc_enforcement *ret)
{
	struct mc_state st = { 0 };
	struct mc_site *s = NULL;
	enum mc_engine_status es = MC_ENGINE_OK;
	size_t from;
	int r;

	memset(ret, 0, sizeof(*ret));
	from = ds->n;
	bool settled = mc_engine_settle(kern, dir, ds, &ret->rolled_back) == MC_ENGINE_OK;
	if (settled && !ret->rolled_back && enforce_cached(kern, dir, o, ds, ret, &es)) {
		if (es == MC_ENGINE_OK && !o->report_only) {
			char line[sizeof(ret->reason) + 80];
			mc_enforcement_str(ret, line, sizeof(line));
			(void)mc_state_set_enforcement(dir, line[0] ? line : NULL);
		}
		return es;
	}
	if (o && o->cache)
		mc_engine_cache_drop(o->cache); /* compiled afresh below, and kept again if it is enforced */
	if (!settled) {
		/* The unconfirmed change must not stay, and the confirmed one cannot be restored. */
		mc_diags_first_error(ds, from, ret->reason, sizeof(ret->reason));
		ret->level = failure_level(dir);
		r = 1;
	} else {
		from = ds->n;
		r = mc_engine_load_committed(dir, false, &st, ds, &s);
	}
	if (o && o->stop && o->stop(o->ctx)) { /* loading 100,000 policies takes a while */
		mc_site_free(s);
		mc_state_free(&st);
		return MC_ENGINE_STOPPED;
	}
	if (r == -ENOENT) {
		ret->level = MC_ENFORCE_NOTHING;
		mc_state_free(&st);
		(void)mc_state_set_enforcement(dir, NULL);
		return MC_ENGINE_OK;
	}
	if (r < 0) {
		/* Which part is broken: the key file (the policies can still go in) or the rest. */
		mc_diags_first_error(ds, from, ret->reason, sizeof(ret->reason));
		struct mc_diags quiet = { 0 };
		mc_state_free(&st);
		if (mc_engine_load_committed(dir, true, &st, &quiet, &s) == 0)
			ret->level = MC_ENFORCE_NO_SAS;
		else
			ret->level = failure_level(dir);
		mc_diags_free(&quiet);
	}
	if (s) {
		bool with_policies = o && o->commit_enabled ? true : st.enabled;
		char *site = mc_state_site_path(&st), *keys = mc_state_keys_path(&st);
		struct stat kb;
		/* The committed key file goes into the new generation as it is, if it is a file at all. */
		struct mc_engine_commit commit = { site, lstat(keys, &kb) == 0 && S_ISREG(kb.st_mode) ? keys : NULL, true,
						   0, NULL, NULL };
		ret->enabled = with_policies;
		from = ds->n;
		es = enforce_site(kern, &st, s, o && o->commit_enabled ? &commit : NULL, with_policies, o, ds, ret);
		if (es == MC_ENGINE_LOCAL && o && o->commit_enabled) {
			/* The flag could not be committed (the directory is full, or broken): enforce what
			 * is committed anyway; a host is never left open for want of a record. */
			char why[300];
			mc_diags_first_error(ds, from, why, sizeof(why));
			mc_diags_truncate(ds, from);
			mc_warn(ds, mc_loc_file(dir), "the enabled flag could not be committed (%s): the committed "
				"configuration is enforced as it is", why);
			es = enforce_site(kern, &st, s, NULL, with_policies, o, ds, ret);
		}
		free(site);
		free(keys);
		if ((es == MC_ENGINE_INVALID || es == MC_ENGINE_CONFLICT) && ds->errors > from &&
		    ret->level == MC_ENFORCE_FULL) {
			/* It loads but does not compile here (a route for local any missing at boot). */
			mc_diags_first_error(ds, from, ret->reason, sizeof(ret->reason));
			ret->level = failure_level(dir);
		}
	}
	if (ret->level == MC_ENFORCE_LOCKDOWN) {
		ret->enabled = true;
		es = lockdown(kern, dir, o, ds, ret);
	} else if (ret->level == MC_ENFORCE_OPEN) {
		es = MC_ENGINE_OK;
	}
	if (!(o && o->cache && o->cache->site == s))
		mc_site_free(s); /* else the cache holds it */
	mc_state_free(&st);
	if (es == MC_ENGINE_OK && !(o && o->report_only)) {
		char line[sizeof(ret->reason) + 80];
		mc_enforcement_str(ret, line, sizeof(line));
		(void)mc_state_set_enforcement(dir, line[0] ? line : NULL);
	}
	return es;
}

int mc_engine_lock(struct mc_kernel *kern, const char *dir, bool wait, struct mc_diags *ds, bool *converged)
{
	bool cut = false;
	int fd = mc_state_lock(dir, wait, &cut);

	if (converged)
		*converged = false;
	if (fd < 0 || !cut)
		return fd;
	/* The last holder was killed in the middle of a change: the kernel may hold part of it.
	 * Back to the committed configuration before anything else, whoever we are. */
	struct mc_enforcement e;
	size_t from = ds->n;
	enum mc_engine_status es = mc_engine_enforce(kern, dir, NULL, ds, &e);
	mc_diags_truncate(ds, from);
	if (converged)
		*converged = true;
	mc_warnc(ds, mc_loc_file(dir), "interrupted", "a change was cut short (its process was killed): %s",
		 es != MC_ENGINE_OK ? "bringing the kernel back to the committed configuration failed; run "
				      "'mcpsec enable'" :
		 e.level == MC_ENFORCE_NOTHING ? "nothing was committed, and it was undone" :
		 e.changes ? "the kernel was brought back to the committed configuration" :
			     "the kernel already held the committed configuration");
	return fd;
}

void mc_enforcement_str(const struct mc_enforcement *e, char *buf, size_t len)
{
	switch (e->level) {
	case MC_ENFORCE_NO_SAS:
		snprintf(buf, len, "no SAs installed, PROTECT traffic is dropped: %s", e->reason);
		break;
	case MC_ENFORCE_LOCKDOWN:
		snprintf(buf, len, "lockdown (built-in bypasses only, everything else discarded): %s", e->reason);
		break;
	case MC_ENFORCE_OPEN:
		snprintf(buf, len, "on-failure open, the kernel was left as it was: %s", e->reason);
		break;
	default:
		buf[0] = '\0';
	}
}

enum mc_engine_status mc_engine_rollback(struct mc_kernel *kern, const char *dir, struct mc_diags *ds)
{
	struct mc_trial t;
	struct mc_state st = { 0 };
	struct mc_site *s = NULL;
	struct mc_enforcement e = { 0 };
	enum mc_engine_status es;
	int r;

	if ((r = mc_state_trial_get(dir, &t)) != 1) {
		mc_err(ds, mc_loc_file(dir), r < 0 ? "reading the trial: %s" : "no change is waiting for confirmation%s",
		       r < 0 ? strerror(-r) : "");
		return MC_ENGINE_LOCAL;
	}
	/* The confirmed generation with its own names: the same priorities, so the same kernel. */
	if ((r = mc_state_load_gen(dir, t.confirmed, &st)) < 0) {
		mc_err(ds, mc_loc_file(dir), "reading the confirmed configuration %s: %s", t.confirmed, strerror(-r));
		mc_state_free(&st);
		return MC_ENGINE_LOCAL;
	}
	char *site = mc_state_site_path(&st), *keys = mc_state_keys_path(&st);
	s = mc_engine_load_site(site, access(keys, F_OK) == 0 ? keys : NULL, true, ds);
	free(site);
	free(keys);
	if (!s) {
		mc_state_free(&st);
		return MC_ENGINE_LOCAL;
	}
	es = enforce_site(kern, &st, s, NULL, st.enabled, NULL, ds, &e);
	mc_site_free(s);
	mc_state_free(&st);
	if (es != MC_ENGINE_OK)
		return es;
	if ((r = mc_state_trial_revert(dir)) < 0) {
		mc_err(ds, mc_loc_file(dir), "switching back to %s: %s", t.confirmed, mc_state_dir_error(r));
		return MC_ENGINE_LOCAL;
	}
	char line[sizeof(e.reason) + 80];
	mc_enforcement_str(&e, line, sizeof(line));
	(void)mc_state_set_enforcement(dir, line[0] ? line : NULL);
	return MC_ENGINE_OK;
}

enum mc_engine_status mc_engine_settle(struct mc_kernel *kern, const char *dir, struct mc_diags *ds, bool *done)
{
	struct mc_trial t;
	int64_t left;

	*done = false;
	if (mc_state_trial_get(dir, &t) != 1 || mc_trial_when(&t, &left) == MC_TRIAL_RUNNING)
		return MC_ENGINE_OK;
	enum mc_engine_status es = mc_engine_rollback(kern, dir, ds);
	*done = es == MC_ENGINE_OK;
	return es;
}

void mc_plan_from_kernel(const struct mc_kstate *k, const struct mc_state *st, struct mc_plan *plan)
{
	enum mc_default def = MC_DEF_IPV6_ONLY;
	struct mc_kview v;

	if (st->default_name)
		(void)mc_default_parse(st->default_name, &def);
	mc_kview_build(k, &st->names, &v);
	mc_kview_plan(&v, def, st->enabled, plan);
	mc_kview_free(&v);
}
