/* SPDX-License-Identifier: MIT */
/*
 * Each second: the per-flow hook's flows and the kernel's counters become records (lib/monitor.c
 * decides what they mean), the outbound hook is paced, the metrics file is written.
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../../lib/fileio.h"
#include "../../lib/kview.h"
#include "../../lib/metrics.h"
#include "../../lib/nlx.h"
#include "../../lib/proc.h"
#include "dropmon.h"

#include "daemon.h"

/* Attaches the outbound hook when outbound blocks start, detaches it after a quiet while
 * (mc_mon_pace_out decides). */
static void pace_out_hook(struct daemon *d, const struct mc_stats *st)
{
	enum mc_hook_step step = mc_mon_pace_out(&d->mon, d->now, st, d->drops && mc_dropmon_outbound_attached(d->drops));

	if (step == MC_HOOK_DETACH) {
		(void)mc_dropmon_outbound_attach(d->drops, false);
		mc_mon_hook_out(&d->mon, false, st);
	} else if (step == MC_HOOK_ATTACH) {
		int r = mc_dropmon_outbound_attach(d->drops, true);
		if (r == 0)
			mc_mon_hook_out(&d->mon, true, st);
		else if (!d->out_attach_failed)
			note(d, "daemon", "per-flow-inbound", NULL, 0, "attaching the outbound hook again failed: %s; "
			     "outbound drops from the XfrmOutPolBlock counter only", strerror(-r));
		d->out_attach_failed = r != 0;
	}
}

/* The daemon's metrics and the kernel's, as `mcpsec status ipsec all --prometheus` shows them. */
void render_metrics(struct daemon *d, const struct mc_kstate *k, const struct mc_stats *st,
			   enum mc_metrics_part part, struct mc_buf *out)
{
	struct mc_metrics m = { .netns = d->netns ? d->netns : "" };

	if (part & MC_METRICS_KERNEL) {
		struct mc_kview v;
		mc_kview_build(k, &d->st.names, &v);
		mc_metrics_kernel(&m, &v, st, d->st.committed && d->st.enabled, d->enforced);
		mc_kview_free(&v);
	}
	mc_metrics_daemon(&m, &d->mon, d->enforced, d->repair);
	mc_metrics_render(&m, part, out);
	mc_metrics_free(&m);
}

/*
 * --metrics-file, in the node_exporter textfile collector's way: written beside PATH under a
 * temporary name nobody can guess or plant (mc_file_write_atomic: O_EXCL, no link followed, a
 * FIFO never waited on) and renamed over PATH, so that a reader sees the old file or the new one,
 * never part of one. The directory is meant to be shared: nothing in it can stall the daemon.
 * A failure is said once.
 */
static void write_metrics(struct daemon *d, const struct mc_kstate *k, const struct mc_stats *st)
{
	struct mc_buf b = { 0 };

	render_metrics(d, k, st, MC_METRICS_ALL, &b);
	int r = mc_file_write_atomic(d->metrics_path, b.s ? b.s : "", b.len, 0644);
	if (r < 0) {
		char why[sizeof(d->metrics_error)];
		snprintf(why, sizeof(why), "writing %s: %s", d->metrics_path,
			 r == -ELOOP ? "it is a symbolic link" : strerror(-r));
		if (strcmp(why, d->metrics_error))
			note(d, "daemon", "metrics-failed", NULL, 0, "metrics file not written: %s (retrying every %lld s)",
			     why, (long long)d->metrics_interval);
		snprintf(d->metrics_error, sizeof(d->metrics_error), "%s", why);
	} else {
		d->metrics_error[0] = '\0';
	}
	mc_buf_free(&b);
}

void name_plan(struct daemon *d, const struct mc_kstate *k)
{
	mc_plan_free(&d->plan);
	mc_plan_from_kernel(k, &d->st, &d->plan);
	d->kernel_sas = k->nsas;
	d->plan_valid = true;
	d->plan_dirty = false;
}

void tick(struct daemon *d)
{
	struct mc_stats st;
	struct mc_kstate k = { 0 }, *kp = NULL;
	struct mc_record sup;
	struct mc_drop_flows flows = { 0 };

	reload_names(d);
	/* The flows first, then the counters: a packet is counted a moment before it is freed, so
	 * the counters may run ahead of the flows (never behind); compare_hooks allows for it. */
	if (d->drops && mc_dropmon_drain(d->drops, &flows) < 0)
		flows.n = 0;
	mc_proc_xfrm_stat(&st);
	bool need_plan = flows.n && (!d->plan_valid || d->plan_dirty);
	if ((mc_mon_needs_dump(&d->mon, &st) || need_plan) && mc_nl_dump(d->nl, &k) == 0)
		kp = &k;
	if (need_plan && kp)
		name_plan(d, kp);
	if (flows.n)
		mc_mon_flows(&d->mon, d->now, &flows, d->plan_valid ? &d->plan : NULL, &d->pending);
	stage_tick(d, &flows, kp);
	mc_drop_flows_free(&flows);
	mc_mon_counters(&d->mon, d->now, &st, kp, &d->pending);
	pace_out_hook(d, &st);
	flush_records(d, &d->pending);
	if (mc_mon_suppressed_record(&d->mon, d->now, &sup))
		emit_record(d, &sup);
	if (d->metrics_path && d->now >= d->metrics_due) {
		d->metrics_due = d->now + d->metrics_interval;
		if (kp || mc_nl_dump(d->nl, &k) == 0) {
			kp = &k;
			write_metrics(d, kp, &st);
		}
	}
	if (kp) {
		mc_kstate_free(kp);
		malloc_trim(0);
	}
	mc_stats_free(&st);
}

/*
 * The per-flow drop hook, said once: which directions give flows, and why one does not (no BTF,
 * no CAP_BPF, a kernel without trampolines). Without it the counter records stay as they were.
 */
void start_hooks(struct daemon *d, bool no_bpf)
{
	struct stat ns;
	char why[400];
	const char *out_why = NULL;

	if (no_bpf) {
		note(d, "daemon", "per-flow-off", NULL, 0, "per-flow drop records off (--no-bpf): drops are "
		     "reported from the kernel's counters");
		return;
	}
	if (stat("/proc/self/ns/net", &ns) < 0) {
		note(d, "daemon", "per-flow-off", NULL, 0, "per-flow drop records unavailable: /proc/self/ns/net: %s; "
		     "drops are reported from the kernel's counters", strerror(errno));
		return;
	}
	if (mc_dropmon_open((uint32_t)ns.st_ino, true, &d->drops, why, sizeof(why)) < 0) {
		note(d, "daemon", "per-flow-off", NULL, 0, "per-flow drop records unavailable: %s; drops are reported "
		     "from the kernel's counters", why);
		return;
	}
	char left[200];
	size_t n = mc_dropmon_sweep(d->drops, left, sizeof(left));
	if (n)
		note(d, "staged", "leftover", NULL, 0, "removed the staging observer's clsact filters that a killed mcpsecd "
		     "left at %zu interface%s (%s): they went on counting for no one", n, n == 1 ? "" : "s", left);
	bool out = mc_dropmon_outbound(d->drops, &out_why);
	mc_mon_hooks_loaded(&d->mon, true, out, d->now);
	if (out)
		note(d, "daemon", "per-flow", NULL, 0, "per-flow drop records: inbound by tp_btf/kfree_skb, outbound by "
		     "fexit/xfrm_lookup_with_ifid (detached after %d s without outbound blocks, attached again when "
		     "XfrmOutPolBlock moves)", (int)d->mon.out_hook_idle);
	else
		note(d, "daemon", "per-flow-inbound", NULL, 0, "per-flow drop records: inbound by tp_btf/kfree_skb; "
		     "outbound drops from the XfrmOutPolBlock counter only: %s", out_why);
}
