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
#include "../../lib/fileio.h"
#include "../../lib/metrics.h"
#include "dropmon.h"
#include "../../lib/monitor.h"
#include "../../lib/nlx.h"
#include "../../lib/proc.h"
#include "../../lib/reconcile.h"
#include "../../lib/state.h"
#include "../../lib/util.h"
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

/* The daemon's own options (mcpsec's are its own too). */
static struct {
	const char *netns;     /* NULL: the namespace it was started in */
	const char *state_dir; /* mc_state_default_dir() when not given */
} opts;

/* Out of memory: said in the daemon's name; systemd restarts it (Restart=on-failure). */
static void die_oom(void)
{
	fputs("mcpsecd: out of memory\n", stderr);
	syslog(LOG_CRIT, "out of memory");
	exit(1);
}

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
	int dirlock;              /* flock on the state directory itself: one mcpsecd per directory */
	bool lock_broken;         /* DIR/lock cannot be used: the lockdown set was installed instead */
	bool ready;               /* READY sent: later changes of the level go as STATUS */
	/* The committed plan as compiled for this host, between passes (lib/engine.h): a repair
	 * then only reads and compares the kernel. Dropped when the host's addresses or the state
	 * directory change, and on SIGHUP. */
	struct mc_engine_cache cache;
	/* Client connections of the control socket, served by the loop without ever waiting on
	 * one: a request line is read as it comes, the answer written as the client takes it. */
	struct client {
		int fd;
		int64_t deadline; /* ms: a client slower than this is dropped */
		char req[64];
		size_t got;
		struct mc_buf out;
		size_t sent;
	} clients[8];
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
	const struct mc_state_name *owner = mc_state_reqid_owner(&d->st, reqid);
	return owner ? owner->name : NULL;
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
	char *link = mc_asprintf("%s/current", opts.state_dir), gen[64];
	ssize_t n = readlink(link, gen, sizeof(gen) - 1);
	struct mc_state st;

	free(link);
	gen[n > 0 ? n : 0] = '\0';
	/* Once a second: the link is cheap to read, 10,000 rule names are not. */
	if (d->st.dir && !strcmp(gen, d->st.gen ? d->st.gen : ""))
		return;
	if (mc_state_load(opts.state_dir, &st) < 0)
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
		d->wd_dir = inotify_add_watch(d->inotify, opts.state_dir, mask | IN_DONT_FOLLOW);
	const char *gen = d->st.gen ? d->st.gen : "";
	if (d->wd_gen >= 0 && strcmp(gen, d->watched_gen)) {
		inotify_rm_watch(d->inotify, d->wd_gen);
		d->wd_gen = -1;
	}
	if (d->wd_gen < 0 && gen[0]) {
		char *p = mc_asprintf("%s/%s", opts.state_dir, gen);
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

/* The log: appended to, never through a link, never waited on (a FIFO put in its place would
 * otherwise stop the daemon until someone reads it); anything but a regular file is refused,
 * and the records then go to syslog alone. */
static void open_log(struct daemon *d)
{
	struct stat sb;

	if (d->log_fd >= 0)
		close(d->log_fd);
	d->log_fd = open(d->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0640);
	if (d->log_fd >= 0 && (fstat(d->log_fd, &sb) < 0 || !S_ISREG(sb.st_mode))) {
		close(d->log_fd);
		d->log_fd = -1;
	}
}

/* Reopens after an outside rotation (the path now names another file) and rotates itself past
 * log_max bytes: log.jsonl → log.jsonl.1, so the log never holds more than twice log_max. */
static void log_check(struct daemon *d)
{
	struct stat a, b;

	if (d->log_fd < 0 || lstat(d->log_path, &a) < 0 || fstat(d->log_fd, &b) < 0 || a.st_ino != b.st_ino) {
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

/* An operation, or a group of them: (kind, rule name), its first operation, how many. */
struct op_group {
	size_t first, count;
	enum mc_op_kind kind;
	const char *name;
};

static int cmp_kind_name(const void *a, const void *b)
{
	const struct op_group *x = a, *y = b;
	int c = (int)x->kind - (int)y->kind;

	if (!c)
		c = strcmp(x->name, y->name);
	return c ? c : x->first < y->first ? -1 : x->first > y->first;
}

static int cmp_first(const void *a, const void *b)
{
	const struct op_group *x = a, *y = b;
	return x->first < y->first ? -1 : x->first > y->first;
}

/* The operations a repair is about to send, as drift records: one per rule and kind of change,
 * with its first kernel object as example, in the order of those. Sorted, not compared
 * pairwise: a flush of 100,000 policies is 100,000 operations. */
static void report_drift(void *ctx, const struct mc_diff *diff, const struct mc_state *st)
{
	struct daemon *d = ctx;
	bool apply = d->repair || d->force_apply;
	size_t ng = 0;

	if (d->force_apply)
		return; /* SIGHUP asked for it: not drift */
	d->mon.drifts++;
	struct op_group *g = mc_calloc(diff->n + 1, sizeof(*g));
	for (size_t i = 0; i < diff->n; i++)
		g[i] = (struct op_group){ i, 1, diff->ops[i].kind, mc_op_name(&diff->ops[i], st) };
	qsort(g, diff->n, sizeof(*g), cmp_kind_name);
	for (size_t i = 0; i < diff->n; i++) {
		if (ng && g[i].kind == g[ng - 1].kind && !strcmp(g[i].name, g[ng - 1].name))
			g[ng - 1].count++; /* sorted: the group's first operation came first */
		else
			g[ng++] = g[i];
	}
	qsort(g, ng, sizeof(*g), cmp_first);
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

/* Enforces the committed configuration (failing closed, lib/engine.c) and says what changed:
 * repairs, a trial rolled back, and NOT ENFORCED when it cannot be enforced in full. */
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

	snprintf(why, sizeof(why), "the state directory's lock %s/lock cannot be used: %s", opts.state_dir,
		 err == -EINVAL ? "not a regular file" : mc_state_dir_error(err));
	if (mc_engine_fail_closed(mc_nl_kernel(d->nl), opts.state_dir, why, &ds, &e) == MC_ENGINE_OK) {
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
static void check_drift(struct daemon *d, bool wait)
{
	struct mc_diags ds = { 0 };
	struct mc_enforcement e;
	bool apply = d->repair || d->force_apply, cut;
	int lock;

	/* Never fight an apply: if one holds the lock, look again shortly, after its commit. */
	if ((lock = mc_state_lock(opts.state_dir, wait, &cut)) < 0) {
		if (lock == -EWOULDBLOCK)
			d->drift_due = now_ms() + 100;
		else
			lock_unusable(d, lock);
		return;
	}
	d->lock_broken = false;
	d->drift_due = 0;
	d->drift_ops = 0;
	d->mon.checks++;
	if (cut)
		note(d, "repair", "interrupted", NULL, 0, "a change was cut short (its process was killed): bringing the "
		     "kernel back to the committed configuration");
	if (d->force_apply)
		mc_engine_cache_drop(&d->cache);
	struct mc_enforce_opts o = { .report_only = !apply && !cut, .report = report_drift, .keep_out = sa_expired,
				     .stop = stop_asked, .cache = &d->cache, .ctx = d };
	enum mc_engine_status es = mc_engine_enforce(mc_nl_kernel(d->nl), opts.state_dir, &o, &ds, &e);
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
		d->mon.repairs++;
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
static void check_trial(struct daemon *d)
{
	struct mc_trial tr;
	int64_t left;

	if (mc_state_trial_get(opts.state_dir, &tr) == 1 && mc_trial_when(&tr, &left) != MC_TRIAL_RUNNING &&
	    !d->drift_due)
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
	mc_proc_xfrm_stat(&st);
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

/* ---- control socket: one request per connection, never waited on ---- */

/* The answer to one request line. */
static void answer(struct daemon *d, const char *req, struct mc_buf *b)
{
	if (!strncmp(req, "totals", 6)) {
		mc_buf_printf(b, "{\"pid\":%ld,\"repair\":%s,\"netns\":", (long)getpid(), d->repair ? "true" : "false");
		if (d->netns)
			mc_buf_json_str(b, d->netns);
		else
			mc_buf_puts(b, "null");
		mc_buf_printf(b, ",\"enforced\":%s", d->enforced ? "true" : "false");
		if (!d->enforced) {
			mc_buf_puts(b, ",\"not_enforced\":");
			mc_buf_json_str(b, d->not_enforced);
		}
		mc_buf_puts(b, ",\"totals\":");
		mc_mon_totals_json(&d->mon, b);
		mc_buf_puts(b, "}\n");
	} else if (!strncmp(req, "metrics", 7)) {
		render_metrics(d, NULL, NULL, MC_METRICS_DAEMON, b);
	} else if (!strncmp(req, "summary", 7)) {
		mc_buf_printf(b, "mcpsecd (pid %ld, %s) reports:\n", (long)getpid(), d->repair ? "repairing drift" : "report only");
		if (!d->enforced)
			mc_buf_printf(b, "  NOT ENFORCED: %s\n", d->not_enforced);
		mc_mon_totals_text(&d->mon, b);
	} else {
		mc_buf_puts(b, "{\"error\":\"unknown request; send 'totals', 'summary' or 'metrics'\"}\n");
	}
}

static void drop_client(struct client *c)
{
	close(c->fd);
	mc_buf_free(&c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* Accepts what waits (non-blocking). When every slot is taken, the oldest client makes room:
 * clients that connect and say nothing cannot keep status from the daemon. */
static void accept_clients(struct daemon *d)
{
	for (;;) {
		struct client *slot = NULL;
		for (size_t i = 0; i < MC_ARRAY_SIZE(d->clients) && !slot; i++)
			if (d->clients[i].fd < 0)
				slot = &d->clients[i];
		if (!slot) {
			slot = &d->clients[0];
			for (size_t i = 1; i < MC_ARRAY_SIZE(d->clients); i++)
				if (d->clients[i].deadline < slot->deadline)
					slot = &d->clients[i];
		}
		int fd = accept4(d->ctl, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		if (slot->fd >= 0)
			drop_client(slot);
		slot->fd = fd;
		slot->deadline = now_ms() + 2000;
	}
}

/* Moves one client on as far as it goes without waiting: read the request line, then write the
 * answer as fast as the client takes it. A client that is too slow is dropped. */
static void serve_client(struct daemon *d, struct client *c)
{
	if (c->fd < 0)
		return;
	if (!c->out.s) {
		ssize_t n = recv(c->fd, c->req + c->got, sizeof(c->req) - 1 - c->got, MSG_DONTWAIT);
		if (n > 0)
			c->got += (size_t)n;
		c->req[c->got] = '\0';
		bool line = memchr(c->req, '\n', c->got) || c->got == sizeof(c->req) - 1 || n == 0;
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			drop_client(c);
			return;
		}
		if (!line)
			goto late;
		answer(d, c->req, &c->out);
	}
	while (c->sent < c->out.len) {
		ssize_t w = send(c->fd, c->out.s + c->sent, c->out.len - c->sent, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			goto late;
		if (w <= 0)
			break;
		c->sent += (size_t)w;
	}
	drop_client(c);
	return;
late:
	if (now_ms() >= c->deadline)
		drop_client(c);
}

/* The control socket, made anew in place of whatever stale entry is there (a socket of a
 * daemon that died). Failing is a degradation (no status from the daemon), never a reason to
 * stop enforcing. */
static int open_control(struct daemon *d)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int e;

	if (strlen(d->ctl_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, d->ctl_path);
	(void)unlink(d->ctl_path);
	d->ctl = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (d->ctl < 0 || bind(d->ctl, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(d->ctl, 8) < 0) {
		e = errno;
		if (d->ctl >= 0)
			close(d->ctl);
		d->ctl = -1;
		return -e;
	}
	(void)chmod(d->ctl_path, 0600);
	return 0;
}

/* The pid file, for people and tools (systemd does not need it): one mcpsecd per directory is
 * the directory's own lock (mc_state_daemon_lock). Failing is a degradation. */
static int write_pidfile(void)
{
	char *path = mc_asprintf("%s/mcpsecd.pid", opts.state_dir), line[32];
	int r;

	snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	r = mc_file_write_atomic(path, line, strlen(line), 0644);
	free(path);
	return r;
}

/* The state directory cannot be used at all (writable by others, not a directory): nothing in
 * it can be trusted, so the lockdown set (never nothing), said, and tried again every 5 s. */
static void dir_unusable(struct daemon *d, int err)
{
	struct mc_diags ds = { 0 };
	struct mc_enforcement e;
	char why[300], line[sizeof(e.reason) + 80];

	snprintf(why, sizeof(why), "state directory %s: %s", opts.state_dir, mc_state_dir_error(err));
	if (mc_engine_fail_closed(mc_nl_kernel(d->nl), opts.state_dir, why, &ds, &e) == MC_ENGINE_OK) {
		mc_enforcement_str(&e, line, sizeof(line));
		set_not_enforced(d, line);
	}
	mc_diags_free(&ds);
	d->drift_due = now_ms() + 5000;
}

/* What a daemon has besides enforcement, each a degradation when it cannot be had: the pid
 * file, the control socket (status asks through it), the watch on the state directory. */
static void start_extras(struct daemon *d)
{
	int r;

	if ((r = write_pidfile()) < 0)
		note(d, "daemon", "degraded", NULL, 0, "no pid file %s/mcpsecd.pid: %s (enforcing anyway)",
		     opts.state_dir, strerror(-r));
	if ((r = open_control(d)) < 0)
		note(d, "daemon", "degraded", NULL, 0, "no control socket %s: %s (enforcing anyway; status and "
		     "metrics cannot ask this daemon)", d->ctl_path, strerror(-r));
	if (d->inotify < 0 && (d->inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
		note(d, "daemon", "degraded", NULL, 0, "no watch on %s: %s (a repaired key file is seen at "
		     "SIGHUP only)", opts.state_dir, strerror(errno));
	watch_state(d);
}

/* In a directory that could not be used: once it can, the daemon becomes what it is for. */
static void retry_dir(struct daemon *d)
{
	d->dirlock = mc_state_daemon_lock(opts.state_dir);
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

/* ---- main ---- */

/* A numeric option within [min, max], bounds chosen so that the value fits what it is stored in
 * (an int for the socket buffer, whole seconds for intervals) and means something. */
static bool num_arg(const char *flag, const char *v, double min, double max, double *ret)
{
	char *end = NULL;
	if (v)
		*ret = strtod(v, &end);
	/* isfinite: strtod takes "nan" and "inf", which would disable the limit they set. */
	if (!v || *end || !isfinite(*ret) || *ret < min || *ret > max) {
		fprintf(stderr, "mcpsecd: %s needs a number from %g to %g\n" USAGE, flag, min, max);
		return false;
	}
	return true;
}

/* The command line. */
struct options {
	bool foreground, no_bpf, repair;
	double idle, metrics_interval, rate, burst, logmax, nlbuf;
	const char *metrics_path;
};

/* Parses argv into o: -1 to go on, or the exit code (--help, --version, a usage error). */
static int parse_options(int argc, char **argv, struct options *o)
{
	*o = (struct options){ .repair = true, .idle = OUT_HOOK_IDLE, .metrics_interval = 15, .rate = 20,
			       .burst = 200, .logmax = 16 << 20, .nlbuf = 8 << 20 };
	static const struct {
		const char *flag;
		double min, max;
		size_t off;
	} nums[] = {
		{ "--rate", 0.1, 1e6, offsetof(struct options, rate) },
		{ "--burst", 1, 1e9, offsetof(struct options, burst) },
		{ "--log-max", 4096, 1e12, offsetof(struct options, logmax) },
		{ "--netlink-buffer", 4096, 1 << 30, offsetof(struct options, nlbuf) },
		{ "--metrics-interval", 1, 86400, offsetof(struct options, metrics_interval) },
		{ "--out-hook-idle", 1, 86400, offsetof(struct options, idle) },
	};
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		size_t n = 0;
		while (n < MC_ARRAY_SIZE(nums) && strcmp(argv[i], nums[n].flag))
			n++;
		if (n < MC_ARRAY_SIZE(nums)) {
			if (!num_arg(nums[n].flag, v, nums[n].min, nums[n].max, (double *)((char *)o + nums[n].off)))
				return 1;
			i++;
		} else if (!strcmp(argv[i], "--netns") && v) {
			opts.netns = argv[++i];
		} else if (!strcmp(argv[i], "--state-dir") && v) {
			opts.state_dir = argv[++i];
		} else if (!strcmp(argv[i], "--foreground") || !strcmp(argv[i], "-f")) {
			o->foreground = true;
		} else if (!strcmp(argv[i], "--report-only") || !strcmp(argv[i], "--repair")) {
			o->repair = !strcmp(argv[i], "--repair");
		} else if (!strcmp(argv[i], "--metrics-file") && v) {
			/* The daemon leaves its working directory when it detaches. */
			if (v[0] != '/') {
				fprintf(stderr, "mcpsecd: --metrics-file needs an absolute path, not '%s'\n", v);
				return 1;
			}
			o->metrics_path = argv[++i];
		} else if (!strcmp(argv[i], "--no-bpf")) {
			o->no_bpf = true;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(USAGE, stdout);
			return 0;
		} else if (!strcmp(argv[i], "--version")) {
			printf("mcpsecd %s\n", MCPSEC_VERSION);
			return 0;
		} else {
			fprintf(stderr, "mcpsecd: unexpected argument '%s'\n" USAGE, argv[i]);
			return 1;
		}
	}
	return -1;
}

/* The namespace, netlink, signals, the timer and the directory's lock; then detaches. */
static bool open_all(struct daemon *d, const struct options *o)
{
	int r;

	if (opts.netns && (r = mc_netns_enter(opts.netns)) < 0) {
		fprintf(stderr, "mcpsecd: namespace '%s': %s\n", opts.netns,
			r == -EINVAL ? "bad name" : strerror(-r));
		return false;
	}
	if ((r = mc_nl_open(&d->nl)) < 0 || (r = mc_nl_monitor_open((int)o->nlbuf, &d->events)) < 0) {
		fprintf(stderr, "mcpsecd: netlink: %s\n", strerror(-r));
		return false;
	}
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	d->sig = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	d->timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	struct itimerspec its = { { 1, 0 }, { 1, 0 } };
	if (d->sig < 0 || d->timer < 0 || timerfd_settime(d->timer, 0, &its, NULL) < 0) {
		fprintf(stderr, "mcpsecd: %s\n", strerror(errno));
		return false;
	}
	/* One daemon per namespace (state directory): only a second one holding the directory's
	 * lock stops this one. A directory that cannot be used at all still gets enforcement: the
	 * lockdown set, retried until it can be used. */
	d->dirlock = mc_state_daemon_lock(opts.state_dir);
	if (d->dirlock == -EWOULDBLOCK) {
		fprintf(stderr, "mcpsecd: another mcpsecd already watches %s\n", opts.state_dir);
		return false;
	}
	if (!o->foreground && daemon(0, 0) < 0) {
		fprintf(stderr, "mcpsecd: cannot detach: %s\n", strerror(errno));
		return false;
	}
	return true;
}

/* Enforces the committed configuration before anything else, and before saying "ready": the
 * unit orders the network after this, so nothing leaves before the policies (or the lockdown
 * set) are in. What follows are extras: failing at one is a degradation. */
static void start(struct daemon *d, const struct options *o)
{
	openlog("mcpsecd", LOG_PID | (o->foreground ? LOG_PERROR : 0), LOG_DAEMON);
	d->now = time(NULL);
	mc_mon_init(&d->mon, d->now);
	d->mon.rate = o->rate;
	d->mon.burst = o->burst;
	d->mon.tokens = o->burst;
	d->mon.namer = state_namer;
	d->mon.reqid_namer = reqid_namer;
	d->mon.namer_ctx = d;
	d->mon.own_portid = mc_nl_portid(d->nl);
	if (d->dirlock >= 0)
		open_log(d);
	note(d, "daemon", "start", NULL, 0, "watching %s (state %s), %s", d->netns ? d->netns : "the current namespace",
	     opts.state_dir, d->repair ? "repairing drift" : "report only");
	if (d->dirlock >= 0)
		check_drift(d, true);
	else
		dir_unusable(d, d->dirlock);
	char *ready = mc_asprintf("READY=1\nSTATUS=%s%s", d->not_enforced[0] ? "NOT ENFORCED: " : "enforcing the committed configuration",
				  d->not_enforced);
	sd_notify_msg(ready);
	free(ready);
	d->ready = true;
	if (d->dirlock >= 0)
		start_extras(d);
	start_hooks(d, o->no_bpf);
	tick(d); /* counter baseline */
}

/* SIGHUP re-applies; SIGTERM and SIGINT stop (true). */
static bool handle_signals(struct daemon *d)
{
	struct signalfd_siginfo si;
	bool stop = false;

	while (read(d->sig, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			note(d, "daemon", "reload", NULL, 0, "SIGHUP: re-applying the committed configuration");
			d->force_apply = true;
			d->drift_due = now_ms();
		} else {
			stop = true;
		}
	}
	if (stop) /* Fail closed: the kernel keeps every policy; stopping opens nothing. */
		note(d, "daemon", "stop", NULL, 0, "stopping; the kernel keeps enforcing the policies");
	return stop;
}

/* Something to do soon (ms from now), unless something already is. */
static void soon(struct daemon *d, int64_t ms)
{
	mc_engine_cache_drop(&d->cache);
	if (!d->drift_due)
		d->drift_due = now_ms() + ms;
}

/* The poll loop, until a signal stops it (0) or poll fails (1). */
static int run(struct daemon *d)
{
	for (;;) {
		enum { NFIXED = 6 };
		struct pollfd p[NFIXED + MC_ARRAY_SIZE(d->clients)] = {
			{ mc_nl_monitor_fd(d->events), POLLIN, 0 }, { d->ctl, POLLIN, 0 }, { d->sig, POLLIN, 0 },
			{ d->timer, POLLIN, 0 }, { mc_nl_monitor_addr_fd(d->events), POLLIN, 0 }, { d->inotify, POLLIN, 0 }
		};
		int64_t due = d->drift_due;
		for (size_t i = 0; i < MC_ARRAY_SIZE(d->clients); i++) {
			const struct client *c = &d->clients[i];
			p[NFIXED + i] = (struct pollfd){ c->fd, c->out.s ? POLLOUT : POLLIN, 0 };
			if (c->fd >= 0 && (!due || c->deadline < due))
				due = c->deadline;
		}
		int timeout = -1;
		if (due) {
			int64_t wait = due - now_ms();
			timeout = wait < 0 ? 0 : wait > 60000 ? 60000 : (int)wait;
		}
		if (poll(p, MC_ARRAY_SIZE(p), timeout) < 0 && errno != EINTR)
			return 1;
		d->now = time(NULL);
		if (p[0].revents & (POLLIN | POLLERR))
			read_events(d);
		if (p[1].revents & POLLIN)
			accept_clients(d);
		for (size_t i = 0; i < MC_ARRAY_SIZE(d->clients); i++)
			serve_client(d, &d->clients[i]);
		/* A new or removed IPv6 address moves the own-address bypass: check soon. */
		if ((p[4].revents & POLLIN) && mc_nl_monitor_addr_changed(d->events))
			soon(d, 100);
		/* A change in the state directory (a fixed key file, a commit): enforce again. */
		if ((p[5].revents & POLLIN) && state_changed(d))
			soon(d, 200);
		if ((p[2].revents & POLLIN) && handle_signals(d))
			return 0;
		if (p[3].revents & POLLIN) {
			uint64_t expirations;
			(void)!read(d->timer, &expirations, sizeof(expirations));
			tick(d);
			check_trial(d);
		}
		if (d->drift_due && now_ms() >= d->drift_due) {
			if (d->dirlock < 0)
				retry_dir(d);
			else
				check_drift(d, false);
		}
	}
}

static void finish(struct daemon *d)
{
	if (d->ctl >= 0) {
		close(d->ctl);
		unlink(d->ctl_path);
	}
	if (d->log_fd >= 0)
		close(d->log_fd);
	if (d->sig >= 0)
		close(d->sig);
	if (d->timer >= 0)
		close(d->timer);
	if (d->inotify >= 0)
		close(d->inotify);
	mc_dropmon_close(d->drops);
	mc_engine_cache_drop(&d->cache);
	mc_plan_free(&d->plan);
	mc_nl_monitor_close(d->events);
	mc_nl_close(d->nl);
	mc_mon_free(&d->mon);
	mc_records_free(&d->pending);
	mc_state_free(&d->st);
	free(d->log_path);
	free(d->ctl_path);
	for (size_t i = 0; i < MC_ARRAY_SIZE(d->clients); i++)
		if (d->clients[i].fd >= 0)
			drop_client(&d->clients[i]);
	if (d->dirlock >= 0)
		close(d->dirlock);
}

int main(int argc, char **argv)
{
	struct daemon d = { .repair = true, .ctl = -1, .sig = -1, .timer = -1, .log_fd = -1, .log_max = 16 << 20,
			    .inotify = -1, .wd_dir = -1, .wd_gen = -1, .enforced = true, .dirlock = -1 };
	struct options o;
	char *default_state = NULL;
	int rc;

	mc_set_oom_handler(die_oom);
	/* The daemon reads key material (it compiles the committed keys): no core dumps, no ptrace
	 * by other users, as mcpsec. */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if ((rc = parse_options(argc, argv, &o)) >= 0)
		return rc;
	for (size_t i = 0; i < MC_ARRAY_SIZE(d.clients); i++)
		d.clients[i].fd = -1;
	if (!opts.state_dir)
		opts.state_dir = default_state = mc_state_default_dir(opts.netns);
	d.netns = opts.netns;
	d.repair = o.repair;
	d.metrics_path = o.metrics_path;
	d.out_hook_idle = (int64_t)o.idle;
	d.metrics_interval = (int64_t)o.metrics_interval;
	d.debug = getenv("MCPSECD_DEBUG") != NULL;
	d.log_max = (off_t)o.logmax;
	d.log_path = mc_asprintf("%s/log.jsonl", opts.state_dir);
	d.ctl_path = mc_asprintf("%s/mcpsecd.sock", opts.state_dir);
	rc = 1;
	if (open_all(&d, &o)) {
		start(&d, &o);
		rc = run(&d);
	}
	finish(&d);
	free(default_state);
	return rc;
}
