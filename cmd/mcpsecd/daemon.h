/* SPDX-License-Identifier: MIT */
/*
 * mcpsecd, by job: main.c (options, start, stop), loop.c (the poll loop and XFRM events),
 * drift.c (enforcing the committed configuration), records.c (the log, syslog, systemd),
 * hooks.c (counters, the per-flow hooks, metrics), control.c (the control socket and the
 * daemon's other files). What the events and counters mean, how drift is grouped, when the
 * outbound hook runs and which SAs stay out is decided in lib/monitor.c; these files do the I/O.
 */
#ifndef MCPSECD_DAEMON_H
#define MCPSECD_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "../../lib/engine.h"
#include "../../lib/metrics.h"
#include "../../lib/monitor.h"
#include "../../lib/plan.h"
#include "../../lib/stage.h"
#include "../../lib/state.h"
#include "../../lib/util.h"

struct mc_nl;
struct mc_nlmon;
struct mc_dropmon;
struct mc_kstate;

/* A client of the control socket, served by the loop without ever waiting on it: a request
 * line is read as it comes, the answer written as the client takes it. */
struct client {
	int fd;
	int64_t deadline; /* ms: a client slower than this is dropped */
	char req[64];
	size_t got;
	struct mc_buf out;
	size_t sent;
};

struct daemon {
	bool repair;
	const char *netns;     /* NULL: the namespace it was started in */
	const char *state_dir;
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
	size_t drift_ops;         /* operations of the last check (for its records) */
	char not_enforced[480];   /* why the configuration is not enforced in full; "" when it is */
	bool enforced;
	int dirlock;              /* flock on the state directory itself: one mcpsecd per directory */
	bool lock_broken;         /* DIR/lock cannot be used: the lockdown set was installed instead */
	bool ready;               /* READY sent: later changes of the level go as STATUS */
	/* The committed plan as compiled for this host, between passes (lib/engine.h): a repair
	 * then only reads and compares the kernel. Dropped when the host's addresses or the state
	 * directory change, and on SIGHUP. */
	struct mc_engine_cache cache;
	struct client clients[8];
	int inotify, wd_dir, wd_gen; /* the state directory and the committed generation */
	char watched_gen[32];
	/* The per-flow drop hook (NULL: counters only) and the kernel's policies, named, that
	 * name the policy of each dropped flow; rebuilt when the policies may have changed. */
	struct mc_dropmon *drops;
	struct mc_plan plan;
	bool plan_valid, plan_dirty; /* dirty: the policies or SAs may have changed since */
	size_t kernel_sas;           /* the SAs in this namespace, any owner's, at that dump */
	bool out_attach_failed; /* said once */
	/* --metrics-file: the Prometheus text file, rewritten every metrics_interval seconds. */
	const char *metrics_path;
	int64_t metrics_interval, metrics_due;
	char metrics_error[160]; /* the last failure, said once; "" after a success */
	/* a staged list (mcpsec stage, stage.c): compared with traffic while the observer runs */
	bool staging;
	struct mc_plan staged_plan;
	struct mc_stage stage;
	char *staged_from;
	char stage_enforced[32]; /* the committed generation the table compares with */
	char staged_gen[64];     /* the staged list's (staged-N) */
	/* the table kept across a restart (DIR/mcpsecd.staged-table): how often, when last, what
	 * it counted then, and the last error writing it (said when it changes) */
	int64_t table_interval, table_saved_at;
	uint64_t table_mark;
	int table_err;
	bool stage_looked;       /* DIR/staged as last seen */
	ino_t stage_ino;
	struct timespec stage_mtime;
	/* its inner flows (inner.c): fentry programs where trampolines load, else mcpsecd's own
	 * nftables table of counting sets */
	bool inner;                     /* one of the two is there */
	bool inner_bpf;                 /* ... and it is the fentry programs */
	char inner_bpf_why[200];        /* why not them, when the sets are used */
	char inner_desc[400];           /* the sets and that why, or why neither, for people */
	const char *inner_off;          /* why neither, briefly (a record's detail is short) */
	bool inner_failed;              /* inner_start failed for this staged list (said once) */
	struct mc_innerprev innerprev;  /* the previous drain's counters */
};

/* loop.c */
int64_t now_ms(void);
int run(struct daemon *d);

/* records.c */
void sd_notify_msg(const char *msg);
void open_log(struct daemon *d);
void emit_record(struct daemon *d, const struct mc_record *r);
void flush_records(struct daemon *d, struct mc_records *rs);
void note(struct daemon *d, const char *event, const char *reason, const char *policy, uint64_t count,
	  const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* drift.c */
const char *state_namer(void *ctx, uint32_t prio, enum mc_dir dir, int family);
const char *reqid_namer(void *ctx, uint32_t reqid);
void reload_names(struct daemon *d);
void watch_state(struct daemon *d);
bool state_changed(struct daemon *d);
void check_drift(struct daemon *d, bool wait);
void check_trial(struct daemon *d);
void dir_unusable(struct daemon *d, int err);
void retry_dir(struct daemon *d);

/* hooks.c */
/* d->plan: the kernel's policies in k, named through the committed state. */
void name_plan(struct daemon *d, const struct mc_kstate *k);
void start_hooks(struct daemon *d, bool no_bpf);
void tick(struct daemon *d);
void render_metrics(struct daemon *d, const struct mc_kstate *k, const struct mc_stats *st,
		    enum mc_metrics_part part, struct mc_buf *out);

/* stage.c */
struct mc_drop_flows;
void stage_tick(struct daemon *d, const struct mc_drop_flows *drops, const struct mc_kstate *kp);
void stage_answer(struct daemon *d, bool json, struct mc_buf *b);
void stage_tick_stop(struct daemon *d);
void stage_suggest(struct daemon *d, int64_t seconds, struct mc_buf *b);
/* inner.c: the staging observer's inner flows (fentry, else nftables sets). inner_start: 0, or
 * -1 with why. */
int inner_start(struct daemon *d, char *why, size_t len);
void inner_stop(struct daemon *d);
/* The view is not wanted (off: why, for people); with_sa: say what it would be once wanted. */
void inner_idle(struct daemon *d, const char *off, bool with_sa);
void inner_drain(struct daemon *d, struct mc_seen_flows *seen);
/* How inner flows are seen, for people; brief: without why not the first way (for a record). */
const char *inner_mode(const struct daemon *d, bool brief);

/* control.c */
void start_extras(struct daemon *d);
void accept_clients(struct daemon *d);
void serve_client(struct daemon *d, struct client *c);
void drop_client(struct client *c);

#endif
