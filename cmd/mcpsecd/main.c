/* SPDX-License-Identifier: MIT */
/*
 * mcpsecd: watches XFRM events and counters in one namespace, writes drop records (the SUMLOG
 * of mcpsec), and restores the committed configuration when someone else changes it.
 *
 * One thread, one poll loop: the XFRM event socket, the control socket, a signalfd, a 1 s
 * timerfd and an rtnetlink socket for IPv6 address changes. Everything that decides is in lib/monitor.c; this file does the I/O.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <math.h>
#include <sys/prctl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "../../lib/compile.h"
#include "../../lib/diag.h"
#include "../../lib/engine.h"
#include "../../lib/metrics.h"
#include "../../lib/dropmon.h"
#include "../../lib/monitor.h"
#include "../../lib/nlx.h"
#include "../../lib/reconcile.h"
#include "../../lib/state.h"
#include "../../lib/util.h"
#include "../mcpsec/cmd.h"
#include "version.h" /* MCPSEC_VERSION, from debian/changelog (Makefile) */

/* The options, as in mcpsecd(8) OPTIONS (tests/help-vs-man.py compares the two). */
#define USAGE                                                                                         \
	"usage: mcpsecd [--netns NAME] [--state-dir DIR] [--foreground] [--report-only|--repair]\n"       \
	"               [--rate N] [--burst N] [--log-max BYTES] [--netlink-buffer BYTES] [--no-bpf]\n"  \
	"               [--out-hook-idle SECONDS] [--metrics-file PATH [--metrics-interval SECONDS]]\n"   \
	"options:\n"                                                                                      \
	"  --netns NAME               watch network namespace /run/netns/NAME\n"                          \
	"  --state-dir DIR            the committed configuration (default /var/lib/mcpsec,\n"            \
	"                             or /var/lib/mcpsec/netns/NAME with --netns)\n"                      \
	"  --foreground, -f           do not detach (systemd: Type=notify)\n"                              \
	"  --report-only              report drift, do not restore it (SIGHUP still re-applies)\n"        \
	"  --repair                   restore drift (the default)\n"                                       \
	"  --rate N                   records written per second (default 20)\n"                          \
	"  --burst N                  records written in a burst (default 200)\n"                         \
	"  --log-max BYTES            rotate log.jsonl past this size (default 16 MiB)\n"                 \
	"  --netlink-buffer BYTES     the XFRM event socket's receive buffer (default 8 MiB)\n"           \
	"  --no-bpf                   no per-flow drop hook: drops from the counters only\n"              \
	"  --out-hook-idle SECONDS    detach the outbound hook after this long without blocks (default 60)\n" \
	"  --metrics-file PATH        write Prometheus metrics to PATH, atomically (default: none)\n"     \
	"  --metrics-interval SECONDS how often (default 15)\n"                                            \
	"  --help, -h, --version\n"

struct daemon {
	bool repair;
	const char *netns;
	int64_t now;
	struct mc_monitor mon;
	struct mc_state st;  /* committed names, reloaded when the state file changes */
	struct mc_nl *nl;
	struct mc_nlmon *events;
	int ctl, sig, timer, log_fd;
	char *log_path, *ctl_path;
	off_t log_max;
	int64_t drift_due;   /* 0: no drift check pending; else when (ms since the epoch) */
	bool force_apply;    /* SIGHUP: re-apply even in --report-only */
	bool debug;          /* MCPSECD_DEBUG set: every event on stderr */
	struct mc_records pending;
	size_t drift_ops;          /* operations of the last check (for its records) */
	/* SAs the kernel removed at their hard lifetime: never put back by repair (the same key
	 * again would void the limit) until another configuration is committed. */
	struct expired_sa {
		struct mc_addr daddr;
		uint32_t spi;
		uint8_t proto;
	} expired[64];
	size_t nexpired;
	char not_enforced[480];   /* why the configuration is not enforced in full; "" when it is */
	bool enforced;
	int inotify, wd_dir, wd_gen; /* the state directory and the committed generation */
	char watched_gen[32];
	/* The per-flow drop hook (NULL: counters only) and the kernel's policies, named, that
	 * name the policy of each dropped flow; rebuilt when the policies may have changed. */
	struct mc_dropmon *drops;
	struct mc_plan plan;
	bool plan_valid, plan_dirty;
	uint64_t out_blocked;   /* XfrmOutPolBlock at the last tick */
	int64_t out_last_block; /* when it last moved (the outbound hook detaches after a quiet while) */
	int64_t out_hook_idle;  /* seconds; OUT_HOOK_IDLE unless --out-hook-idle */
	bool out_attach_failed; /* said once */
	/* --metrics-file: the Prometheus text file, rewritten every metrics_interval seconds. */
	const char *metrics_path;
	int64_t metrics_interval, metrics_due;
	char metrics_error[160]; /* the last failure, said once; "" after a success */
};

/* Seconds without a blocked outbound packet after which the outbound hook is detached
 * (--out-hook-idle): it costs every outbound route lookup a trampoline call (bench/drops.sh), so
 * it runs only while there is something to see. The first blocks of the next episode are
 * reported from the counter. */
#define OUT_HOOK_IDLE 60

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *state_namer(void *ctx, uint32_t prio, enum mc_dir dir, int family)
{
	struct daemon *d = ctx;
	return mc_state_rule_name(&d->st, prio, dir, family);
}

static const char *reqid_namer(void *ctx, uint32_t reqid)
{
	struct daemon *d = ctx;
	for (size_t i = 0; i < d->st.nnames; i++)
		if (d->st.names[i].reqid == reqid)
			return d->st.names[i].name;
	return NULL;
}

static bool sa_expired(void *ctx, const struct mc_xsa *sa)
{
	struct daemon *d = ctx;
	for (size_t i = 0; i < d->nexpired; i++)
		if (d->expired[i].spi == sa->spi && d->expired[i].proto == sa->proto &&
		    mc_addr_eq(&d->expired[i].daddr, &sa->daddr))
			return true;
	return false;
}

/* Re-reads the committed names when `current` names another generation (an apply happened). */
static void reload_names(struct daemon *d)
{
	char *link = mc_asprintf("%s/current", g_opts.state_dir), gen[64];
	ssize_t n = readlink(link, gen, sizeof(gen) - 1);
	struct mc_state st;

	free(link);
	gen[n > 0 ? n : 0] = '\0';
	/* Once a second: the link is cheap to read, 10,000 rule names are not. */
	if (d->st.dir && !strcmp(gen, d->st.gen ? d->st.gen : ""))
		return;
	if (mc_state_load(g_opts.state_dir, &st) < 0)
		return;
	mc_state_free(&d->st);
	d->st = st;
	d->nexpired = 0; /* another configuration: its SAs are the operator's to judge */
	d->plan_dirty = true;
}

/* inotify on the state directory and the committed generation: a fixed key file, a new commit
 * or a repaired directory makes the daemon try to enforce again at once. */
static void watch_state(struct daemon *d)
{
	const uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ATTRIB;

	if (d->inotify < 0)
		return;
	if (d->wd_dir < 0)
		d->wd_dir = inotify_add_watch(d->inotify, g_opts.state_dir, mask | IN_DONT_FOLLOW);
	const char *gen = d->st.gen ? d->st.gen : "";
	if (d->wd_gen >= 0 && strcmp(gen, d->watched_gen)) {
		inotify_rm_watch(d->inotify, d->wd_gen);
		d->wd_gen = -1;
	}
	if (d->wd_gen < 0 && gen[0]) {
		char *p = mc_asprintf("%s/%s", g_opts.state_dir, gen);
		d->wd_gen = inotify_add_watch(d->inotify, p, mask | IN_DONT_FOLLOW);
		free(p);
		snprintf(d->watched_gen, sizeof(d->watched_gen), "%s", gen);
	}
}

/* Drains inotify; true when something other than the daemon's own files changed. */
static bool state_changed(struct daemon *d)
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

/* systemd's readiness protocol (Type=notify) without libsystemd: one datagram. */
static void sd_notify_msg(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (!path || (path[0] != '/' && path[0] != '@') || strlen(path) >= sizeof(sa.sun_path))
		return;
	strcpy(sa.sun_path, path);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	(void)sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa,
		     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path)));
	close(fd);
}

/* ---- the log ---- */

static void open_log(struct daemon *d)
{
	if (d->log_fd >= 0)
		close(d->log_fd);
	d->log_fd = open(d->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

/* Reopens after an outside rotation (the path now names another file) and rotates itself past
 * log_max bytes: log.jsonl → log.jsonl.1, so the log never holds more than twice log_max. */
static void log_check(struct daemon *d)
{
	struct stat a, b;

	if (d->log_fd < 0 || stat(d->log_path, &a) < 0 || fstat(d->log_fd, &b) < 0 || a.st_ino != b.st_ino) {
		open_log(d);
		return;
	}
	if (b.st_size >= d->log_max) {
		char *old = mc_asprintf("%s.1", d->log_path);
		(void)rename(d->log_path, old);
		free(old);
		open_log(d);
	}
}

/* One record to the log file and syslog (the rate limit has already let it through). */
static void emit_record(struct daemon *d, const struct mc_record *r)
{
	struct mc_buf line = { 0 }, text = { 0 };

	log_check(d);
	mc_record_json(r, d->netns, &line);
	if (d->log_fd >= 0 && write(d->log_fd, line.s, line.len) != (ssize_t)line.len)
		syslog(LOG_ERR, "writing %s: %s", d->log_path, strerror(errno));
	mc_record_text(r, &text);
	if (text.len)
		text.s[text.len - 1] = '\0';
	syslog(strcmp(r->event, "daemon") ? LOG_WARNING : LOG_INFO, "%s%s%s", d->netns ? d->netns : "",
	       d->netns ? ": " : "", mc_buf_str(&text));
	mc_buf_free(&line);
	mc_buf_free(&text);
}

static void write_record(struct daemon *d, const struct mc_record *r)
{
	if (mc_mon_admit(&d->mon, r, r->time))
		emit_record(d, r);
}

static void flush_records(struct daemon *d, struct mc_records *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		write_record(d, &rs->r[i]);
	rs->n = 0;
}

static void note(struct daemon *d, const char *event, const char *reason, const char *policy, uint64_t count,
		 const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void note(struct daemon *d, const char *event, const char *reason, const char *policy, uint64_t count,
		 const char *fmt, ...)
{
	struct mc_record r;
	va_list ap;

	memset(&r, 0, sizeof(r));
	r.time = d->now;
	snprintf(r.event, sizeof(r.event), "%s", event);
	snprintf(r.reason, sizeof(r.reason), "%s", reason);
	if (policy)
		snprintf(r.policy, sizeof(r.policy), "%s", policy);
	r.count = count;
	va_start(ap, fmt);
	vsnprintf(r.detail, sizeof(r.detail), fmt, ap);
	va_end(ap);
	write_record(d, &r);
}

/* ---- drift: compare the kernel with the committed configuration, restore it ---- */

static const char *drift_reason(enum mc_op_kind k)
{
	switch (k) {
	case MC_OP_SA_ADD: return "sa-missing";
	case MC_OP_SA_DEL: return "sa-foreign-or-changed";
	case MC_OP_SA_UPD: return "sa-lifetime-changed";
	case MC_OP_POL_ADD: return "policy-missing";
	case MC_OP_POL_UPD: return "policy-changed";
	case MC_OP_POL_DEL: return "policy-extra";
	}
	return "changed";
}

/* The operations a repair is about to send, as drift records: one per rule and kind of change,
 * with its first kernel object as example. */
static void report_drift(void *ctx, const struct mc_diff *diff, const struct mc_state *st)
{
	struct daemon *d = ctx;
	bool apply = d->repair || d->force_apply;

	if (d->force_apply)
		return; /* SIGHUP asked for it: not drift */
	d->mon.drifts++;
	for (size_t i = 0; i < diff->n; i++) {
		const char *name = mc_op_name(&diff->ops[i], st);
		size_t same = 0, j;
		for (j = 0; j < i; j++)
			if (diff->ops[j].kind == diff->ops[i].kind && !strcmp(mc_op_name(&diff->ops[j], st), name))
				break;
		if (j < i)
			continue; /* reported with the first */
		for (j = i; j < diff->n; j++)
			same += diff->ops[j].kind == diff->ops[i].kind && !strcmp(mc_op_name(&diff->ops[j], st), name);
		struct mc_buf b = { 0 };
		mc_op_describe(&diff->ops[i], st, &b);
		/* The own-address bypass follows the host's addresses: not someone's edit. */
		bool own = !strncmp(name, "BUILTIN-OWN-ADDR", 16);
		note(d, "drift", own ? "own-addresses-changed" : drift_reason(diff->ops[i].kind), name, same,
		     "%zu kernel object%s to fix, e.g. %s%s", same, same == 1 ? "" : "s", mc_buf_str(&b),
		     apply ? "" : " (report only: not restored)");
		mc_buf_free(&b);
	}
	d->drift_ops = diff->n;
}

/* Enforces the committed configuration (failing closed, lib/engine.c) and says what changed:
 * repairs, a trial rolled back, and NOT ENFORCED when it cannot be enforced in full. */
static void check_drift(struct daemon *d)
{
	struct mc_diags ds = { 0 };
	struct mc_enforcement e;
	bool apply = d->repair || d->force_apply;
	int lock;

	/* Never fight an apply: if one holds the lock, look again shortly, after its commit. */
	if ((lock = mc_state_lock(g_opts.state_dir, false)) < 0) {
		d->drift_due = now_ms() + 100;
		return;
	}
	d->drift_due = 0;
	d->drift_ops = 0;
	d->mon.checks++;
	struct mc_enforce_opts o = { .report_only = !apply, .report = report_drift, .keep_out = sa_expired, .ctx = d };
	enum mc_engine_status es = mc_engine_enforce(d->nl, g_opts.state_dir, &o, &ds, &e);
	reload_names(d);
	if (e.rolled_back)
		note(d, "trial", "rolled-back", NULL, 0, "a change was not confirmed in time (or belonged to an earlier "
		     "boot): the confirmed configuration is restored");
	if (es != MC_ENGINE_OK) {
		struct mc_buf b = { 0 };
		mc_diags_render(&ds, &b);
		note(d, "repair", es == MC_ENGINE_PARTIAL ? "partial" : es == MC_ENGINE_CONFLICT ? "foreign-conflict" : "failed",
		     NULL, d->drift_ops, "enforcing the committed configuration: %.300s", mc_buf_str(&b));
		mc_buf_free(&b);
	} else if (apply && e.changes) {
		d->plan_dirty = true;
		d->mon.repairs++;
		note(d, "repair", d->force_apply ? "reapplied" : "restored", NULL, e.changes,
		     "the committed configuration is enforced again (%zu operations)", e.changes);
	}
	char why[sizeof(e.reason) + 80];
	mc_enforcement_str(&e, why, sizeof(why));
	if (es == MC_ENGINE_OK && strcmp(why, d->not_enforced)) {
		if (why[0])
			note(d, "daemon", "not-enforced", NULL, 0, "NOT ENFORCED: %s (retrying when the state "
			     "directory changes, or on SIGHUP)", why);
		else if (d->not_enforced[0])
			note(d, "daemon", "enforced", NULL, 0, "the committed configuration is enforced in full again");
		snprintf(d->not_enforced, sizeof(d->not_enforced), "%s", why);
		d->enforced = !why[0];
	}
	d->force_apply = false;
	mc_diags_free(&ds);
	mc_state_unlock(lock);
	watch_state(d);
	malloc_trim(0); /* compiling and dumping 10,000 policies is a peak, not the daemon's size */
}

/* A trial's deadline: mcpsecd owns it while it runs (the trial's own timer is the backstop). */
static void check_trial(struct daemon *d)
{
	struct mc_trial tr;

	if (mc_state_trial_get(g_opts.state_dir, &tr) == 1 && time(NULL) >= tr.deadline && !d->drift_due)
		d->drift_due = now_ms(); /* check_drift settles it under the lock */
}

/* ---- events and counters ---- */

static void on_event(void *ctx, const struct mc_event *ev)
{
	struct daemon *d = ctx;

	if (d->debug)
		fprintf(stderr, "mcpsecd: event %d from port %u, priority %u, spi %u, reqid %#x\n", (int)ev->kind,
			ev->portid, ev->priority, ev->spi, ev->reqid);
	if (ev->kind == MC_EV_SA_EXPIRE && ev->hard && ev->spi && mc_reqid_owned(ev->reqid) &&
	    d->nexpired < MC_ARRAY_SIZE(d->expired))
		d->expired[d->nexpired++] = (struct expired_sa){ ev->daddr, ev->spi, ev->proto };
	if (mc_mon_event(&d->mon, ev, d->now, &d->pending)) {
		d->plan_dirty = true;
		if (!d->drift_due)
			d->drift_due = now_ms() + 100; /* let a burst of changes settle first */
	}
}

static void read_events(struct daemon *d)
{
	int r = mc_nl_monitor_read(d->events, on_event, d);

	flush_records(d, &d->pending);
	if (r == -ENOBUFS) {
		/* The kernel dropped events: counters are absolute, so only the drift check can have
		 * missed something; do a full one now. */
		d->mon.overruns++;
		d->mon.resyncs++;
		note(d, "overrun", "enobufs", NULL, 1, "the kernel dropped XFRM events (receive buffer full): "
		     "ACQUIRE reports may be missing; drop totals still come from the counters; resynchronising");
		d->drift_due = now_ms();
	} else if (r < 0) {
		note(d, "daemon", "error", NULL, 0, "reading XFRM events: %s", strerror(-r));
	}
}

/* Attaches the outbound hook when outbound blocks start, detaches it after a quiet while. */
static void pace_out_hook(struct daemon *d, const struct mc_stats *st)
{
	const char *why;
	uint64_t blocked = mc_stats_get(st, "XfrmOutPolBlock");
	bool moved = blocked != d->out_blocked;

	d->out_blocked = blocked;
	if (!d->drops || !mc_dropmon_outbound(d->drops, &why))
		return;
	if (moved)
		d->out_last_block = d->now;
	bool attached = mc_dropmon_outbound_attached(d->drops);
	if (attached && d->now - d->out_last_block >= d->out_hook_idle) {
		(void)mc_dropmon_outbound_attach(d->drops, false);
		mc_mon_hook_out(&d->mon, false, st);
	} else if (!attached && moved) {
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
static void render_metrics(struct daemon *d, const struct mc_kstate *k, const struct mc_stats *st,
			   enum mc_metrics_part part, struct mc_buf *out)
{
	struct mc_metrics m = { .netns = d->netns ? d->netns : "" };

	if (part & MC_METRICS_KERNEL)
		mc_metrics_kernel(&m, &d->st, k, st, d->st.committed && d->st.enabled, d->enforced);
	mc_metrics_daemon(&m, &d->mon, d->enforced, d->repair);
	mc_metrics_render(&m, part, out);
	mc_metrics_free(&m);
}

/*
 * --metrics-file, in the node_exporter textfile collector's way: written to PATH.tmp beside it
 * (a name the collector does not read, on the same file system) and renamed over PATH, so that
 * a reader sees the old file or the new one, never part of one. A failure is said once.
 */
static void write_metrics(struct daemon *d, const struct mc_kstate *k, const struct mc_stats *st)
{
	struct mc_buf b = { 0 };
	char *tmp = mc_asprintf("%s.tmp", d->metrics_path);
	const char *step = "writing";
	int fd, err = 0;

	render_metrics(d, k, st, MC_METRICS_ALL, &b);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0 || fchmod(fd, 0644) < 0 || write(fd, b.s, b.len) != (ssize_t)b.len)
		err = errno ? errno : EIO;
	if (fd >= 0 && close(fd) < 0 && !err)
		err = errno;
	if (!err && rename(tmp, d->metrics_path) < 0) {
		err = errno;
		step = "renaming";
	}
	if (err) {
		(void)unlink(tmp);
		char why[sizeof(d->metrics_error)];
		snprintf(why, sizeof(why), "%s %s: %s", step, fd < 0 ? tmp : d->metrics_path, strerror(err));
		if (strcmp(why, d->metrics_error))
			note(d, "daemon", "metrics-failed", NULL, 0, "metrics file not written: %s (retrying every %lld s)",
			     why, (long long)d->metrics_interval);
		snprintf(d->metrics_error, sizeof(d->metrics_error), "%s", why);
	} else {
		d->metrics_error[0] = '\0';
	}
	free(tmp);
	mc_buf_free(&b);
}

static void tick(struct daemon *d)
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
	read_xfrm_stat(&st);
	bool need_plan = flows.n && (!d->plan_valid || d->plan_dirty);
	if ((mc_mon_needs_dump(&d->mon, &st) || need_plan) && mc_nl_dump(d->nl, &k) == 0)
		kp = &k;
	if (need_plan && kp) {
		mc_plan_free(&d->plan);
		mc_plan_from_kernel(kp, &d->st, &d->plan);
		d->plan_valid = true;
		d->plan_dirty = false;
	}
	if (flows.n)
		mc_mon_flows(&d->mon, d->now, &flows, d->plan_valid ? &d->plan : NULL, &d->pending);
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
static void start_hooks(struct daemon *d, bool no_bpf)
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
	d->mon.hook_in = true;
	d->mon.hook_out = d->mon.hook_out_available = mc_dropmon_outbound(d->drops, &out_why);
	d->out_last_block = d->now;
	if (d->mon.hook_out)
		note(d, "daemon", "per-flow", NULL, 0, "per-flow drop records: inbound by tp_btf/kfree_skb, outbound by "
		     "fexit/xfrm_lookup_with_ifid (detached after %d s without outbound blocks, attached again when "
		     "XfrmOutPolBlock moves)", (int)d->out_hook_idle);
	else
		note(d, "daemon", "per-flow-inbound", NULL, 0, "per-flow drop records: inbound by tp_btf/kfree_skb; "
		     "outbound drops from the XfrmOutPolBlock counter only: %s", out_why);
}

/* ---- control socket: one request per connection ---- */

static void serve_control(struct daemon *d)
{
	int c = accept4(d->ctl, NULL, NULL, SOCK_CLOEXEC);
	struct mc_buf b = { 0 };
	char req[64] = { 0 };

	if (c < 0)
		return;
	struct timeval tv = { 1, 0 };
	(void)setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ssize_t n = read(c, req, sizeof(req) - 1);
	if (n > 0 && !strncmp(req, "totals", 6)) {
		mc_buf_printf(&b, "{\"pid\":%ld,\"repair\":%s,\"netns\":", (long)getpid(), d->repair ? "true" : "false");
		if (d->netns)
			mc_buf_json_str(&b, d->netns);
		else
			mc_buf_puts(&b, "null");
		mc_buf_printf(&b, ",\"enforced\":%s", d->enforced ? "true" : "false");
		if (!d->enforced) {
			mc_buf_puts(&b, ",\"not_enforced\":");
			mc_buf_json_str(&b, d->not_enforced);
		}
		mc_buf_puts(&b, ",\"totals\":");
		mc_mon_totals_json(&d->mon, &b);
		mc_buf_puts(&b, "}\n");
	} else if (n > 0 && !strncmp(req, "metrics", 7)) {
		render_metrics(d, NULL, NULL, MC_METRICS_DAEMON, &b);
	} else if (n > 0 && !strncmp(req, "summary", 7)) {
		mc_buf_printf(&b, "mcpsecd (pid %ld, %s) reports:\n", (long)getpid(), d->repair ? "repairing drift" : "report only");
		if (!d->enforced)
			mc_buf_printf(&b, "  NOT ENFORCED: %s\n", d->not_enforced);
		mc_mon_totals_text(&d->mon, &b);
	} else {
		mc_buf_puts(&b, "{\"error\":\"unknown request; send 'totals', 'summary' or 'metrics'\"}\n");
	}
	(void)!write(c, b.s, b.len);
	mc_buf_free(&b);
	close(c);
}

static int open_control(struct daemon *d)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (strlen(d->ctl_path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "mcpsecd: %s: path too long for a socket\n", d->ctl_path);
		return -1;
	}
	strcpy(sa.sun_path, d->ctl_path);
	(void)unlink(d->ctl_path);
	d->ctl = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (d->ctl < 0 || bind(d->ctl, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(d->ctl, 8) < 0) {
		fprintf(stderr, "mcpsecd: control socket %s: %s\n", d->ctl_path, strerror(errno));
		return -1;
	}
	(void)chmod(d->ctl_path, 0600);
	return 0;
}

/* ---- main ---- */

static bool num_arg(const char *flag, const char *v, double min, double *ret)
{
	char *end = NULL;
	if (v)
		*ret = strtod(v, &end);
	/* isfinite: strtod takes "nan" and "inf", which would disable the limit they set. */
	if (!v || *end || !isfinite(*ret) || *ret < min || *ret > 1e12) {
		fprintf(stderr, "mcpsecd: %s needs a finite number >= %g\n" USAGE, flag, min);
		return false;
	}
	return true;
}

int main(int argc, char **argv)
{
	struct daemon d = { .repair = true, .ctl = -1, .sig = -1, .timer = -1, .log_fd = -1, .log_max = 16 << 20,
			    .inotify = -1, .wd_dir = -1, .wd_gen = -1, .enforced = true };
	bool foreground = false, no_bpf = false;
	double idle = OUT_HOOK_IDLE, metrics_interval = 15;
	double rate = 20, burst = 200, logmax = 16 << 20, nlbuf = 8 << 20;
	int pidlock = -1, rc = 1;

	mc_set_oom_handler(die_oom);
	/* The daemon reads key material (it compiles the committed keys): no core dumps, no ptrace
	 * by other users, as mcpsec. */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (is_flag(argv[i], "--netns") && v)
			g_opts.netns = argv[++i];
		else if (is_flag(argv[i], "--state-dir") && v)
			g_opts.state_dir = argv[++i];
		else if (is_flag(argv[i], "--foreground") || is_flag(argv[i], "-f"))
			foreground = true;
		else if (is_flag(argv[i], "--report-only"))
			d.repair = false;
		else if (is_flag(argv[i], "--repair"))
			d.repair = true;
		else if (is_flag(argv[i], "--rate")) {
			if (!num_arg("--rate", v, 0.1, &rate))
				return 1;
			i++;
		} else if (is_flag(argv[i], "--burst")) {
			if (!num_arg("--burst", v, 1, &burst))
				return 1;
			i++;
		} else if (is_flag(argv[i], "--log-max")) {
			if (!num_arg("--log-max", v, 4096, &logmax))
				return 1;
			i++;
		} else if (is_flag(argv[i], "--netlink-buffer")) {
			if (!num_arg("--netlink-buffer", v, 4096, &nlbuf))
				return 1;
			i++;
		} else if (is_flag(argv[i], "--metrics-file") && v) {
			/* The daemon leaves its working directory when it detaches. */
			if (v[0] != '/') {
				fprintf(stderr, "mcpsecd: --metrics-file needs an absolute path, not '%s'\n", v);
				return 1;
			}
			d.metrics_path = argv[++i];
		} else if (is_flag(argv[i], "--metrics-interval")) {
			if (!num_arg("--metrics-interval", v, 1, &metrics_interval))
				return 1;
			i++;
		} else if (is_flag(argv[i], "--no-bpf")) {
			no_bpf = true;
		} else if (is_flag(argv[i], "--out-hook-idle")) {
			if (!num_arg("--out-hook-idle", v, 1, &idle))
				return 1;
			i++;
		} else if (is_flag(argv[i], "--help") || is_flag(argv[i], "-h")) {
			fputs(USAGE, stdout);
			return 0;
		} else if (is_flag(argv[i], "--version")) {
			printf("mcpsecd %s\n", MCPSEC_VERSION);
			return 0;
		} else {
			fprintf(stderr, "mcpsecd: unexpected argument '%s'\n" USAGE, argv[i]);
			return 1;
		}
	}
	char *default_state = NULL;
	if (!g_opts.state_dir)
		g_opts.state_dir = default_state = g_opts.netns ? mc_asprintf("/var/lib/mcpsec/netns/%s", g_opts.netns)
							      : mc_strdup("/var/lib/mcpsec");
	d.netns = g_opts.netns;
	d.out_hook_idle = (int64_t)idle;
	d.metrics_interval = (int64_t)metrics_interval;
	d.debug = getenv("MCPSECD_DEBUG") != NULL;
	d.log_max = (off_t)logmax;
	d.log_path = mc_asprintf("%s/log.jsonl", g_opts.state_dir);
	d.ctl_path = mc_asprintf("%s/mcpsecd.sock", g_opts.state_dir);

	/* One daemon per namespace (state directory): the pid file's lock says who. */
	int r = mc_state_lock(g_opts.state_dir, true); /* creates the directory; released at once */
	if (r < 0) {
		/* Unusable, so unreadable: fail closed before giving up (systemd restarts us, and
		 * the lockdown set is the same each time). */
		char why[256];
		struct mc_diags ds = { 0 };
		struct mc_enforcement e;
		snprintf(why, sizeof(why), "state directory %s: %s", g_opts.state_dir, mc_state_dir_error(r));
		if (!enter_netns() && mc_nl_open(&d.nl) == 0 &&
		    mc_engine_fail_closed(d.nl, g_opts.state_dir, why, &ds, &e) == MC_ENGINE_OK) {
			char line[sizeof(e.reason) + 80];
			mc_enforcement_str(&e, line, sizeof(line));
			fprintf(stderr, "mcpsecd: NOT ENFORCED: %s\n", line);
		} else {
			fprintf(stderr, "mcpsecd: %s\n", why);
		}
		mc_diags_free(&ds);
		goto out;
	}
	mc_state_unlock(r);
	char *pidpath = mc_asprintf("%s/mcpsecd.pid", g_opts.state_dir);
	pidlock = open(pidpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	free(pidpath);
	if (pidlock < 0 || flock(pidlock, LOCK_EX | LOCK_NB) < 0) {
		fprintf(stderr, "mcpsecd: another mcpsecd already watches %s\n", g_opts.state_dir);
		goto out;
	}
	if (enter_netns())
		goto out;
	if ((r = mc_nl_open(&d.nl)) < 0 || (r = mc_nl_monitor_open((int)nlbuf, &d.events)) < 0) {
		fprintf(stderr, "mcpsecd: netlink: %s\n", strerror(-r));
		goto out;
	}
	if (open_control(&d) < 0)
		goto out;
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	d.sig = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	d.timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	struct itimerspec its = { { 1, 0 }, { 1, 0 } };
	if (d.sig < 0 || d.timer < 0 || timerfd_settime(d.timer, 0, &its, NULL) < 0) {
		fprintf(stderr, "mcpsecd: %s\n", strerror(errno));
		goto out;
	}
	if (!foreground && daemon(0, 0) < 0) {
		fprintf(stderr, "mcpsecd: cannot detach: %s\n", strerror(errno));
		goto out;
	}
	if (ftruncate(pidlock, 0) == 0)
		dprintf(pidlock, "%ld\n", (long)getpid());
	openlog("mcpsecd", LOG_PID | (foreground ? LOG_PERROR : 0), LOG_DAEMON);
	d.now = time(NULL);
	mc_mon_init(&d.mon, d.now);
	d.mon.rate = rate;
	d.mon.burst = burst;
	d.mon.tokens = burst;
	d.mon.namer = state_namer;
	d.mon.reqid_namer = reqid_namer;
	d.mon.namer_ctx = &d;
	d.mon.own_portid = mc_nl_portid(d.nl);
	open_log(&d);
	note(&d, "daemon", "start", NULL, 0, "watching %s (state %s), %s", d.netns ? d.netns : "the current namespace",
	     g_opts.state_dir, d.repair ? "repairing drift" : "report only");
	start_hooks(&d, no_bpf);
	tick(&d);             /* counter baseline */
	d.inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	/* Enforce the committed configuration before saying "ready": the unit orders the network
	 * after this, so nothing leaves before the policies (or the lockdown set) are in. */
	check_drift(&d);
	char *ready = mc_asprintf("READY=1\nSTATUS=%s%s", d.not_enforced[0] ? "NOT ENFORCED: " : "enforcing the committed configuration",
				  d.not_enforced);
	sd_notify_msg(ready);
	free(ready);

	for (;;) {
		struct pollfd p[6] = { { mc_nl_monitor_fd(d.events), POLLIN, 0 }, { d.ctl, POLLIN, 0 },
				       { d.sig, POLLIN, 0 }, { d.timer, POLLIN, 0 },
				       { mc_nl_monitor_addr_fd(d.events), POLLIN, 0 }, { d.inotify, POLLIN, 0 } };
		int timeout = -1;
		if (d.drift_due) {
			int64_t wait = d.drift_due - now_ms();
			timeout = wait < 0 ? 0 : (int)wait;
		}
		if (poll(p, 6, timeout) < 0 && errno != EINTR)
			break;
		d.now = time(NULL);
		if (p[0].revents & (POLLIN | POLLERR))
			read_events(&d);
		if (p[1].revents & POLLIN)
			serve_control(&d);
		/* A new or removed IPv6 address moves the own-address bypass: check soon. */
		if ((p[4].revents & POLLIN) && mc_nl_monitor_addr_changed(d.events) && !d.drift_due)
			d.drift_due = now_ms() + 100;
		/* A change in the state directory (a fixed key file, a commit): enforce again. */
		if ((p[5].revents & POLLIN) && state_changed(&d) && !d.drift_due)
			d.drift_due = now_ms() + 200;
		if (p[2].revents & POLLIN) {
			struct signalfd_siginfo si;
			bool stop = false;
			while (read(d.sig, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				if (si.ssi_signo == SIGHUP) {
					note(&d, "daemon", "reload", NULL, 0, "SIGHUP: re-applying the committed configuration");
					d.force_apply = true;
					d.drift_due = now_ms();
				} else {
					stop = true;
				}
			}
			if (stop) {
				/* Fail closed: the kernel keeps every policy; stopping opens nothing. */
				note(&d, "daemon", "stop", NULL, 0, "stopping; the kernel keeps enforcing the policies");
				rc = 0;
				break;
			}
		}
		if (p[3].revents & POLLIN) {
			uint64_t expirations;
			(void)!read(d.timer, &expirations, sizeof(expirations));
			tick(&d);
			check_trial(&d);
		}
		if (d.drift_due && now_ms() >= d.drift_due)
			check_drift(&d);
	}
out:
	if (d.ctl >= 0) {
		close(d.ctl);
		unlink(d.ctl_path);
	}
	if (d.log_fd >= 0)
		close(d.log_fd);
	if (d.sig >= 0)
		close(d.sig);
	if (d.timer >= 0)
		close(d.timer);
	if (d.inotify >= 0)
		close(d.inotify);
	mc_dropmon_close(d.drops);
	mc_plan_free(&d.plan);
	mc_nl_monitor_close(d.events);
	mc_nl_close(d.nl);
	mc_mon_free(&d.mon);
	mc_records_free(&d.pending);
	mc_state_free(&d.st);
	free(d.log_path);
	free(d.ctl_path);
	free(default_state);
	if (pidlock >= 0)
		close(pidlock);
	return rc;
}
