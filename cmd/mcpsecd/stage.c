/* SPDX-License-Identifier: MIT */
/*
 * A staged list (mcpsec stage): while one is staged, the staging observer runs and each flow it
 * sees is decided by the enforced plan and the staged one (lib/stage.c); flows whose decision
 * would change become "staged" records, and the control socket shows the table.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../lib/diag.h"
#include "../../lib/fileio.h"
#include "../../lib/nlx.h"
#include "../../lib/suggest.h"
#include "dropmon.h"

#include "daemon.h"

/* A summary record at most this often (seconds), when something new was seen. */
#define SUMMARY_INTERVAL 60

/* Since when the table has observed, for people. */
static void since_str(const struct mc_stage *t, char *buf, size_t len)
{
	time_t s = (time_t)t->since;
	struct tm tm;
	strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&s, &tm));
}

/* ---- the table kept across a restart ---- */

static char *table_path(const struct daemon *d)
{
	return mc_asprintf("%s/mcpsecd.staged-table", d->state_dir);
}

/* What the table has counted: it is written again only when this moved. */
static uint64_t table_mark(const struct mc_stage *t)
{
	uint64_t m = t->evicted;
	for (int c = 0; c < MC_CHANGE_N; c++)
		m += t->flows[c] + t->packets[c];
	return m + (uint64_t)t->unattributed_packets;
}

/* Writes the table (atomically, never through a link; the oldest flows left out past the size
 * mcpsecd reads back). A failure is said when it differs from the last one. */
static void table_save(struct daemon *d)
{
	struct mc_buf b = { 0 };
	char *p = table_path(d);

	mc_stage_save(&d->stage, d->staged_gen, d->stage_enforced, MC_FILE_MAX, &b);
	int r = mc_file_write_atomic(p, b.s, b.len, 0600);
	if (r < 0 && r != d->table_err)
		note(d, "staged", "table-unsaved", NULL, 0, "the staged list's table could not be kept for a restart: "
		     "%s: %s", p, strerror(-r));
	d->table_err = r < 0 ? r : 0;
	d->table_saved_at = d->now;
	d->table_mark = table_mark(&d->stage);
	mc_buf_free(&b);
	free(p);
}

/* Reads back the table a previous mcpsecd kept for this staged list and enforced generation. */
static void table_restore(struct daemon *d)
{
	char *p = table_path(d), *text = NULL, why[200];
	size_t len = 0;
	int r = mc_file_read(p, MC_READ_NOFOLLOW, MC_FILE_MAX, &text, &len, NULL);

	if (r == 0)
		r = mc_stage_load(&d->stage, text, len, d->staged_gen, d->stage_enforced, why, sizeof(why));
	else
		snprintf(why, sizeof(why), "%s", r == -EINVAL ? "not a regular file" : strerror(-r));
	if (r == 0) {
		char when[40];
		since_str(&d->stage, when, sizeof(when));
		note(d, "staged", "table-restored", NULL, 0, "the comparison goes on from the table kept before this "
		     "mcpsecd started: %zu flows kept, observed since %s", d->stage.n, when);
	} else if (r != -ENOENT && r != -ESTALE) {
		note(d, "staged", "table-unreadable", NULL, 0, "the staged list's table kept before this mcpsecd started "
		     "is not used (%s: %s): the comparison starts afresh", p, why);
		(void)unlink(p); /* so that it can be written again (a directory stays, and says so then) */
	}
	d->table_saved_at = d->now;
	d->table_mark = table_mark(&d->stage);
	free(text);
	free(p);
}

static void stop_staging(struct daemon *d)
{
	if (d->drops)
		(void)mc_dropmon_observe(d->drops, false, NULL, 0);
	inner_stop(d);
	d->inner_failed = false;
	d->inner_off = NULL;
	mc_stage_free(&d->stage);
	mc_plan_free(&d->staged_plan);
	free(d->staged_from);
	d->staged_from = NULL;
	d->staging = false;
}

/* The kernel's policies, named (d->plan): from kp, this tick's dump, when there is one. */
static void ensure_plan(struct daemon *d, const struct mc_kstate *kp)
{
	struct mc_kstate k = { 0 };

	if (d->plan_valid && !d->plan_dirty)
		return;
	if (kp) {
		name_plan(d, kp);
	} else if (mc_nl_dump(d->nl, &k) == 0) {
		name_plan(d, &k);
		mc_kstate_free(&k);
	}
}

static const char no_sa[] = "nothing while this namespace holds no SA (nothing can be inside IPsec)";

/* Why mcpsecd does not watch inside IPsec, for people; NULL when it should: this namespace holds
 * an SA, any owner's (while unknown, assumed). Without one no packet is inside IPsec, whatever
 * either list says: a staged PROTECT's traffic is still clear, and seen at the devices. The sets'
 * hooks would cost bypassed traffic for nothing (bench/README.md). The operator may also say
 * MCPSECD_INNER=off. */
static const char *inner_unwanted(const struct daemon *d)
{
	const char *env = getenv("MCPSECD_INNER");

	if (env && !strcmp(env, "off"))
		return "nothing (MCPSECD_INNER=off)";
	if (d->plan_valid && !d->kernel_sas)
		return no_sa;
	return NULL;
}

/* The view inside IPsec, started or stopped as inner_unwanted says; kp: this tick's dump, when
 * there is one; say: record a change (at staging, the start record says it). */
static void inner_want(struct daemon *d, const struct mc_kstate *kp, bool say)
{
	char why[300];

	ensure_plan(d, kp);
	const char *off = inner_unwanted(d);
	if (off) {
		if (d->inner) {
			inner_stop(d);
			if (say)
				note(d, "staged", "inner-stop", NULL, 0, "no SA is left in this namespace: nothing is "
				     "inside IPsec, and mcpsecd stops watching there");
		}
		if (off != d->inner_off) /* on a change only: the description does not change meanwhile */
			inner_idle(d, off, off == no_sa);
		return;
	}
	/* tried once per staged list: a failure is said once, not every tick */
	if (d->inner || d->inner_failed)
		return;
	bool idle = d->inner_off != NULL; /* not after inner-lost: that record says it comes back */
	if (inner_start(d, why, sizeof(why)) < 0) {
		d->inner_failed = true;
		inner_idle(d, "nothing (it could not start: the no-inner record says why)", false);
		note(d, "staged", "no-inner", NULL, 0, "protected traffic is seen as its SA only, not by its inner "
		     "flows: %s", why);
	} else if (say && idle) {
		note(d, "staged", "inner-start", NULL, 0, "an SA is in this namespace: inner flows of protected "
		     "traffic are seen by %s", inner_mode(d, true));
	}
}

/* (Re)loads the staged list when DIR/staged changed: its plan, compiled for this host. */
static void load_staged(struct daemon *d)
{
	struct mc_state sg = { 0 };
	struct mc_diags ds = { 0 };
	struct mc_site *s = NULL;
	int r = mc_engine_load_staged(d->state_dir, &sg, &ds, &s);
	bool was = d->staging;

	stop_staging(d);
	if (r == -ENOENT) {
		char *p = table_path(d);
		(void)unlink(p); /* nothing staged: no table to keep */
		free(p);
		if (was)
			note(d, "staged", "cleared", NULL, 0, "the staged list was dropped; the staging observer is detached");
		goto out;
	}
	if (!r && (r = mc_engine_compile(mc_nl_kernel(d->nl), s, &sg, &ds, &d->staged_plan)) < 0)
		mc_plan_free(&d->staged_plan);
	if (r < 0) {
		char why[240];
		mc_diags_first_error(&ds, 0, why, sizeof(why));
		note(d, "staged", "error", NULL, 0, "the staged list cannot be compared: %s", why);
		goto out;
	}
	char why[300] = "";
	if (!d->drops || mc_dropmon_observe(d->drops, true, why, sizeof(why)) < 0) {
		mc_plan_free(&d->staged_plan);
		note(d, "staged", "no-observer", NULL, 0, "the staged list %s is not compared with traffic: %s",
		     sg.staged_from ? sg.staged_from : "", d->drops ? why : "the per-flow BPF hooks did not load "
		     "(see the per-flow-off record)");
		goto out;
	}
	d->staging = true;
	d->staged_from = mc_strdup(sg.staged_from ? sg.staged_from : "");
	snprintf(d->stage_enforced, sizeof(d->stage_enforced), "%s", d->st.gen ? d->st.gen : "");
	snprintf(d->staged_gen, sizeof(d->staged_gen), "%s", sg.gen ? sg.gen : "");
	mc_stage_init(&d->stage, 0, d->now);
	inner_want(d, NULL, false);
	note(d, "staged", "start", NULL, 0, "comparing the staged list %s (%s) with live traffic, seen by %s; "
	     "inner flows of protected traffic by %s", d->staged_from, sg.gen, mc_dropmon_observer(d->drops),
	     inner_mode(d, true));
	table_restore(d);
out:
	mc_site_free(s);
	mc_diags_free(&ds);
	mc_state_free(&sg);
}

/* Whether DIR/staged changed since the last look (made, renamed over, removed). */
static bool staged_changed(struct daemon *d)
{
	char *p = mc_asprintf("%s/staged", d->state_dir);
	struct stat sb;
	struct timespec mt = { 0, 0 };
	ino_t ino = 0;

	if (lstat(p, &sb) == 0) {
		ino = sb.st_ino;
		mt = sb.st_mtim;
	}
	free(p);
	bool changed = !d->stage_looked || ino != d->stage_ino || mt.tv_sec != d->stage_mtime.tv_sec ||
		       mt.tv_nsec != d->stage_mtime.tv_nsec;
	d->stage_looked = true;
	d->stage_ino = ino;
	d->stage_mtime = mt;
	return changed;
}

void stage_tick(struct daemon *d, const struct mc_drop_flows *drops, const struct mc_kstate *kp)
{
	struct mc_seen_flows seen = { 0 };

	if (staged_changed(d))
		load_staged(d);
	if (!d->staging || mc_dropmon_drain_seen(d->drops, &seen) < 0)
		return;
	char why[200];
	while (mc_dropmon_unwatched(d->drops, why, sizeof(why)))
		note(d, "staged", "unwatched", NULL, 0, "traffic at an interface is not seen until the observer "
		     "attaches there (tried again each second): %s", why);
	/* Outbound flows the enforced list blocks never reach a device: the drop hook saw them. */
	for (size_t i = 0; drops && i < drops->n; i++)
		if (drops->f[i].hook == MC_DROP_OUT_EPERM)
			*MC_PUSH(&seen.f, &seen.n, &seen.cap) = (struct mc_seen_flow){
				MC_DIR_OUT, drops->f[i].flow, drops->f[i].count, 0, d->now, d->now, false };
	/* The kernel's policies, named (from this tick's dump when it made one), then the counting sets'
	 * inner flows of protected traffic. */
	inner_want(d, kp, true);
	inner_drain(d, &seen);
	/* A table is for one pair of lists: another committed list starts a new one. */
	if (strcmp(d->stage_enforced, d->st.gen ? d->st.gen : "")) {
		snprintf(d->stage_enforced, sizeof(d->stage_enforced), "%s", d->st.gen ? d->st.gen : "");
		mc_stage_free(&d->stage);
		mc_stage_init(&d->stage, 0, d->now);
		note(d, "staged", "restart", NULL, 0, "another list is enforced (%s): the staged list's comparison "
		     "starts again", d->stage_enforced);
	}
	if (seen.n && d->plan_valid)
		mc_stage_add(&d->stage, &seen, &d->plan, &d->staged_plan, d->now, &d->pending);
	mc_seen_flows_free(&seen);
	struct mc_record sum;
	if (mc_stage_summary(&d->stage, d->now, SUMMARY_INTERVAL, &sum))
		*MC_PUSH(&d->pending.r, &d->pending.n, &d->pending.cap) = sum;
	if (d->now - d->table_saved_at >= d->table_interval && table_mark(&d->stage) != d->table_mark)
		table_save(d);
}

void stage_tick_stop(struct daemon *d)
{
	if (d->staging && table_mark(&d->stage) != d->table_mark)
		table_save(d); /* the next mcpsecd goes on from here */
	stop_staging(d);
}

void stage_suggest(struct daemon *d, int64_t seconds, struct mc_buf *b)
{
	char host[72] = "";

	if (!d->staging) {
		mc_buf_puts(b, "mcpsecd observes no traffic: nothing is staged, or the observer could not attach\n");
		return;
	}
	if (d->netns)
		snprintf(host, sizeof(host), "namespace %s", d->netns);
	else if (gethostname(host, sizeof(host) - 1) < 0)
		host[0] = '\0';
	struct mc_suggest_opts o = { .seconds = seconds, .host = host[0] ? host : NULL, .def = MC_DEF_DENY };
	mc_suggest(&d->stage, &o, b);
}

void stage_answer(struct daemon *d, bool json, struct mc_buf *b)
{
	if (!d->staging) {
		if (json)
			mc_buf_puts(b, "{\"observing\":false}\n");
		else
			mc_buf_puts(b, "mcpsecd does not compare it with traffic (its log says why)\n");
		return;
	}
	if (json) {
		mc_buf_puts(b, "{\"observing\":true,\"observer\":");
		mc_buf_json_str(b, mc_dropmon_observer(d->drops));
		mc_buf_puts(b, ",\"inner_observer\":");
		mc_buf_json_str(b, inner_mode(d, false));
		mc_buf_puts(b, ",\"table\":");
		mc_stage_json(&d->stage, b);
		mc_buf_puts(b, "}\n");
		return;
	}
	char when[40];
	since_str(&d->stage, when, sizeof(when));
	mc_buf_printf(b, "Observed by mcpsecd (pid %ld) since %s, by %s (protected traffic as its SA), and "
		      "inside IPsec by %s:\n", (long)getpid(), when, mc_dropmon_observer(d->drops), inner_mode(d, false));
	mc_stage_text(&d->stage, 10, b);
}
