/* SPDX-License-Identifier: MIT */
/*
 * mcpsecd: watches XFRM events and counters in one namespace, writes drop records (the SUMLOG
 * of mcpsec), and restores the committed configuration when someone else changes it.
 *
 * One thread, one poll loop: the XFRM event socket, the control socket, a signalfd, a 1 s
 * timerfd and an rtnetlink socket for IPv6 address changes. Everything that decides is in lib/monitor.c; this file does the I/O.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "../../lib/nlx.h"
#include "../../lib/proc.h"
#include "daemon.h"
#include "dropmon.h"
#include "version.h" /* MCPSEC_VERSION, from debian/changelog (Makefile) */

/* The options, as in mcpsecd(8) OPTIONS (tests/help-vs-man.py compares the two). */
#define USAGE                                                                                         \
	"usage: mcpsecd [--netns NAME] [--state-dir DIR] [--foreground] [--report-only|--repair]\n"       \
	"               [--rate N] [--burst N] [--log-max BYTES] [--netlink-buffer BYTES] [--no-bpf]\n"  \
	"               [--out-hook-idle SECONDS] [--metrics-file PATH [--metrics-interval SECONDS]]\n"   \
	"               [--staged-save SECONDS]\n"                                                        \
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
	"  --staged-save SECONDS      keep a staged list's table this often, and at exit (default 300)\n" \
	"  --help, -h, --version\n"

/* Out of memory: said in the daemon's name; systemd restarts it (Restart=on-failure). */
static void die_oom(void)
{
	fputs("mcpsecd: out of memory\n", stderr);
	syslog(LOG_CRIT, "out of memory");
	exit(1);
}

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
	const char *netns;     /* NULL: the namespace it was started in */
	const char *state_dir; /* mc_state_default_dir() when not given */
	double idle, metrics_interval, rate, burst, logmax, nlbuf, staged_save;
	const char *metrics_path;
};

/* Parses argv into o: -1 to go on, or the exit code (--help, --version, a usage error). */
static int parse_options(int argc, char **argv, struct options *o)
{
	*o = (struct options){ .repair = true, .idle = MC_OUT_HOOK_IDLE, .metrics_interval = 15, .rate = 20,
			       .burst = 200, .logmax = 16 << 20, .nlbuf = 8 << 20,
			       .staged_save = 300 };
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
		{ "--staged-save", 1, 86400, offsetof(struct options, staged_save) },
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
			o->netns = argv[++i];
		} else if (!strcmp(argv[i], "--state-dir") && v) {
			o->state_dir = argv[++i];
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

	if (d->netns && (r = mc_netns_enter(d->netns)) < 0) {
		fprintf(stderr, "mcpsecd: namespace '%s': %s\n", d->netns,
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
	d->dirlock = mc_state_daemon_lock(d->state_dir);
	if (d->dirlock == -EWOULDBLOCK) {
		fprintf(stderr, "mcpsecd: another mcpsecd already watches %s\n", d->state_dir);
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
	mc_mon_configure(&d->mon, &(struct mc_mon_config){ .rate = o->rate, .burst = o->burst, .namer = state_namer,
							   .reqid_namer = reqid_namer, .namer_ctx = d,
							   .own_portid = mc_nl_portid(d->nl),
							   .out_hook_idle = (int64_t)o->idle });
	if (d->dirlock >= 0)
		open_log(d);
	note(d, "daemon", "start", NULL, 0, "watching %s (state %s), %s", d->netns ? d->netns : "the current namespace",
	     d->state_dir, d->repair ? "repairing drift" : "report only");
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
	stage_tick_stop(d);
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
	d.state_dir = o.state_dir ? o.state_dir : (default_state = mc_state_default_dir(o.netns));
	d.netns = o.netns;
	d.repair = o.repair;
	d.metrics_path = o.metrics_path;
	d.metrics_interval = (int64_t)o.metrics_interval;
	d.table_interval = (int64_t)o.staged_save;
	d.debug = getenv("MCPSECD_DEBUG") != NULL;
	d.log_max = (off_t)o.logmax;
	d.log_path = mc_asprintf("%s/log.jsonl", d.state_dir);
	d.ctl_path = mc_asprintf("%s/mcpsecd.sock", d.state_dir);
	rc = 1;
	if (open_all(&d, &o)) {
		start(&d, &o);
		rc = run(&d);
	}
	finish(&d);
	free(default_state);
	return rc;
}
