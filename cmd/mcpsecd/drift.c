/* SPDX-License-Identifier: MIT */
/*
 * Drift: the kernel compared with the committed configuration and brought back to it
 * (lib/engine.c) under the state directory's lock; the directory and its names watched.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "../../lib/compile.h"
#include "../../lib/diag.h"
#include "../../lib/nlx.h"

#include "daemon.h"

const char *state_namer(void *ctx, uint32_t prio, enum mc_dir dir, int family)
{
	struct daemon *d = ctx;
	return mc_names_rule(&d->st.names, prio, dir, family);
}

const char *reqid_namer(void *ctx, uint32_t reqid)
{
	struct daemon *d = ctx;
	const struct mc_state_name *owner = mc_names_reqid_owner(&d->st.names, reqid);
	return owner ? owner->name : NULL;
}

static bool sa_expired(void *ctx, const struct mc_xsa *sa)
{
	struct daemon *d = ctx;
	return mc_mon_sa_expired(&d->mon, sa);
}

/* Re-reads the committed names when `current` names another generation (an apply happened). */
void reload_names(struct daemon *d)
{
	char *link = mc_asprintf("%s/current", d->state_dir), gen[64];
	ssize_t n = readlink(link, gen, sizeof(gen) - 1);
	struct mc_state st;

	free(link);
	gen[n > 0 ? n : 0] = '\0';
	/* Once a second: the link is cheap to read, 10,000 rule names are not. */
	if (d->st.dir && !strcmp(gen, d->st.gen ? d->st.gen : ""))
		return;
	if (mc_state_load(d->state_dir, &st) < 0)
		return;
	mc_state_free(&d->st);
	d->st = st;
	mc_mon_forget_expired(&d->mon); /* another configuration: its SAs are the operator's to judge */
	d->plan_dirty = true;
}

/* inotify on the state directory and the committed generation: a fixed key file, a new commit
 * or a repaired directory makes the daemon try to enforce again at once. */
void watch_state(struct daemon *d)
{
	const uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ATTRIB;

	if (d->inotify < 0)
		return;
	if (d->wd_dir < 0)
		d->wd_dir = inotify_add_watch(d->inotify, d->state_dir, mask | IN_DONT_FOLLOW);
	const char *gen = d->st.gen ? d->st.gen : "";
	if (d->wd_gen >= 0 && strcmp(gen, d->watched_gen)) {
		inotify_rm_watch(d->inotify, d->wd_gen);
		d->wd_gen = -1;
	}
	if (d->wd_gen < 0 && gen[0]) {
		char *p = mc_asprintf("%s/%s", d->state_dir, gen);
		d->wd_gen = inotify_add_watch(d->inotify, p, mask | IN_DONT_FOLLOW);
		free(p);
		snprintf(d->watched_gen, sizeof(d->watched_gen), "%s", gen);
	}
}

/* Drains inotify; true when something other than the daemon's own files changed. */
bool state_changed(struct daemon *d)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool changed = false;
	ssize_t n;

	while ((n = read(d->inotify, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			/* log.jsonl, the lock and the enforcement note are the daemon's own doing */
			if (!ev->len || (strncmp(ev->name, "log.jsonl", 9) && strcmp(ev->name, "lock") &&
					 strncmp(ev->name, "enforcement", 11) && strncmp(ev->name, "mcpsecd.", 8)))
				changed = true;
			p += sizeof(*ev) + ev->len;
		}
	}
	return changed;
}

static const char *op_name(const struct mc_op *o, const void *st)
{
	return mc_op_name(o, st);
}

/* The operations a repair is about to send, as drift records: one per rule and kind of change
 * (mc_drift_groups), with its first kernel object as example. */
static void report_drift(void *ctx, const struct mc_plan *plan, const struct mc_diff *diff, const struct mc_state *st)
{
	struct daemon *d = ctx;
	bool apply = d->repair || d->force_apply;
	struct mc_op_group *g;

	(void)plan;
	if (d->force_apply || !diff->n)
		return; /* SIGHUP asked for it: not drift; or nothing differs */
	mc_mon_count(&d->mon, MC_MON_DRIFT);
	size_t ng = mc_drift_groups(diff, op_name, st, &g);
	for (size_t k = 0; k < ng; k++) {
		struct mc_buf b = { 0 };
		mc_op_describe(&diff->ops[g[k].first], st, &b);
		/* The own-address bypass follows the host's addresses: not someone's edit. */
		bool own = mc_rule_is_own_addr(g[k].name);
		note(d, "drift", own ? "own-addresses-changed" : mc_op_words(g[k].kind)->drift, g[k].name, g[k].count,
		     "%zu kernel object%s to fix, e.g. %s%s", g[k].count, g[k].count == 1 ? "" : "s", mc_buf_str(&b),
		     apply ? "" : " (report only: not restored)");
		mc_buf_free(&b);
	}
	free(g);
	d->drift_ops = diff->n;
}

/* Whether a stop was asked for (SIGTERM, SIGINT: blocked, read through the signalfd): long work
 * looks between its steps, so that the daemon answers within a second whatever it is doing. */
static bool stop_asked(void *ctx)
{
	sigset_t set;

	(void)ctx;
	return sigpending(&set) == 0 && (sigismember(&set, SIGTERM) || sigismember(&set, SIGINT));
}

/* Says a new enforcement level: a record, and systemd's STATUS. */
static void set_not_enforced(struct daemon *d, const char *why)
{
	if (!strcmp(why, d->not_enforced))
		return;
	if (why[0])
		note(d, "daemon", "not-enforced", NULL, 0, "NOT ENFORCED: %s (retrying when the state directory "
		     "changes, or on SIGHUP)", why);
	else if (d->not_enforced[0])
		note(d, "daemon", "enforced", NULL, 0, "the committed configuration is enforced in full again");
	snprintf(d->not_enforced, sizeof(d->not_enforced), "%s", why);
	d->enforced = !why[0];
	if (!d->ready)
		return; /* READY carries the first STATUS */
	char *msg = mc_asprintf("STATUS=%s%s", why[0] ? "NOT ENFORCED: " : "enforcing the committed configuration", why);
	sd_notify_msg(msg);
	free(msg);
}

/* The lock cannot be used at all (not a regular file, a directory in its way): nothing can be
 * committed or read under it, so the daemon fails closed as enable does, and looks again. */
static void lock_unusable(struct daemon *d, int err)
{
	struct mc_diags ds = { 0 };
	struct mc_enforcement e;
	char why[300], line[sizeof(e.reason) + 80];

	snprintf(why, sizeof(why), "the state directory's lock %s/lock cannot be used: %s", d->state_dir,
		 err == -EINVAL ? "not a regular file" : mc_state_dir_error(err));
	if (mc_engine_fail_closed(mc_nl_kernel(d->nl), d->state_dir, why, &ds, &e) == MC_ENGINE_OK) {
		mc_enforcement_str(&e, line, sizeof(line));
		set_not_enforced(d, line);
	}
	mc_diags_free(&ds);
	d->lock_broken = true;
	d->drift_due = now_ms() + 5000;
}

/* Enforces the committed configuration (failing closed, lib/engine.c) and says what changed:
 * repairs, a trial rolled back, and NOT ENFORCED when it cannot be enforced in full. wait: at
 * start, for an apply that holds the lock (otherwise the daemon looks again shortly). */
void check_drift(struct daemon *d, bool wait)
{
	struct mc_diags ds = { 0 };
	struct mc_enforcement e;
	bool apply = d->repair || d->force_apply, cut;
	int lock;

	/* Never fight an apply: if one holds the lock, look again shortly, after its commit. */
	if ((lock = mc_state_lock(d->state_dir, wait, &cut)) < 0) {
		if (lock == -EWOULDBLOCK)
			d->drift_due = now_ms() + 100;
		else
			lock_unusable(d, lock);
		return;
	}
	d->lock_broken = false;
	d->drift_due = 0;
	d->drift_ops = 0;
	mc_mon_count(&d->mon, MC_MON_CHECK);
	if (cut)
		note(d, "repair", "interrupted", NULL, 0, "a change was cut short (its process was killed): bringing the "
		     "kernel back to the committed configuration");
	if (d->force_apply)
		mc_engine_cache_drop(&d->cache);
	struct mc_enforce_opts o = { .report_only = !apply && !cut, .report = report_drift, .keep_out = sa_expired,
				     .stop = stop_asked, .cache = &d->cache, .ctx = d };
	enum mc_engine_status es = mc_engine_enforce(mc_nl_kernel(d->nl), d->state_dir, &o, &ds, &e);
	reload_names(d);
	if (e.rolled_back)
		note(d, "trial", "rolled-back", NULL, 0, "a change was not confirmed in time (or belonged to an earlier "
		     "boot): the confirmed configuration is restored");
	if (es == MC_ENGINE_STOPPED) {
		note(d, "repair", "stopped", NULL, e.changes, "stopped while enforcing: %zu operations were sent; the "
		     "rest is restored when mcpsecd starts again (or by mcpsec enable)", e.changes);
	} else if (es != MC_ENGINE_OK) {
		struct mc_buf b = { 0 };
		mc_diags_render(&ds, &b);
		note(d, "repair", es == MC_ENGINE_PARTIAL ? "partial" : es == MC_ENGINE_CONFLICT ? "foreign-conflict" : "failed",
		     NULL, d->drift_ops, "enforcing the committed configuration: %.300s", mc_buf_str(&b));
		mc_buf_free(&b);
	} else if ((apply || cut) && e.changes) {
		d->plan_dirty = true;
		mc_mon_count(&d->mon, MC_MON_REPAIR);
		note(d, "repair", d->force_apply ? "reapplied" : "restored", NULL, e.changes,
		     "the committed configuration is enforced again (%zu operations)", e.changes);
	}
	char why[sizeof(e.reason) + 80];
	mc_enforcement_str(&e, why, sizeof(why));
	if (es == MC_ENGINE_OK)
		set_not_enforced(d, why);
	d->force_apply = false;
	mc_diags_free(&ds);
	mc_state_unlock(lock);
	watch_state(d);
	malloc_trim(0); /* compiling and dumping 10,000 policies is a peak, not the daemon's size */
}

/* A trial's deadline: mcpsecd owns it while it runs (the trial's own timer is the backstop). */
void check_trial(struct daemon *d)
{
	struct mc_trial tr;
	int64_t left;

	if (mc_state_trial_get(d->state_dir, &tr) == 1 && mc_trial_when(&tr, &left) != MC_TRIAL_RUNNING &&
	    !d->drift_due)
		d->drift_due = now_ms(); /* check_drift settles it under the lock */
}

/* The state directory cannot be used at all (writable by others, not a directory): nothing in
 * it can be trusted, so the lockdown set (never nothing), said, and tried again every 5 s. */
void dir_unusable(struct daemon *d, int err)
{
	struct mc_diags ds = { 0 };
	struct mc_enforcement e;
	char why[300], line[sizeof(e.reason) + 80];

	snprintf(why, sizeof(why), "state directory %s: %s", d->state_dir, mc_state_dir_error(err));
	if (mc_engine_fail_closed(mc_nl_kernel(d->nl), d->state_dir, why, &ds, &e) == MC_ENGINE_OK) {
		mc_enforcement_str(&e, line, sizeof(line));
		set_not_enforced(d, line);
	}
	mc_diags_free(&ds);
	d->drift_due = now_ms() + 5000;
}

/* In a directory that could not be used: once it can, the daemon becomes what it is for. */
void retry_dir(struct daemon *d)
{
	d->dirlock = mc_state_daemon_lock(d->state_dir);
	if (d->dirlock < 0) {
		if (d->dirlock == -EWOULDBLOCK)
			d->drift_due = now_ms() + 5000; /* another daemon took it: it enforces */
		else
			dir_unusable(d, d->dirlock);
		return;
	}
	open_log(d);
	check_drift(d, false);
	start_extras(d);
}
