/* SPDX-License-Identifier: MIT */
/*
 * The apply transaction, one for the CLI (apply, enable, disable) and mcpsecd's repair:
 * load and compile for this host, diff against the kernel, record the intent, send, undo on
 * refusal, commit atomically. Never prints: every problem is a diagnostic in ds.
 */
#ifndef MCPSEC_ENGINE_H
#define MCPSEC_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kobj.h"
#include "reconcile.h"

struct mc_buf;
struct mc_diags;
struct mc_host;
struct mc_kernel;
struct mc_site;
struct mc_state;
struct mc_kstate;

/* How a transaction ended. Each has its own exit code in mcpsec (see cmd.h). */
enum mc_engine_status {
	MC_ENGINE_OK = 0,
	MC_ENGINE_CONFLICT, /* a foreign kernel object holds what the plan needs: nothing was changed */
	MC_ENGINE_REFUSED, /* the kernel refused an operation; everything done was undone */
	MC_ENGINE_PARTIAL, /* ...and undoing failed too: the kernel holds a partial configuration */
	MC_ENGINE_LOCAL,   /* the kernel could not be read or the state directory written: the kernel
			    * was left (or put back) as it was */
	MC_ENGINE_STOPPED, /* mc_enforce_opts.stop asked to stop a repair: what was sent stays */
	MC_ENGINE_INVALID, /* the site does not compile for this host (ds says why): nothing was changed */
	MC_ENGINE_DECLINED, /* the judge hook (the lockout guard) declined: nothing was changed */
};

/* A site file loaded and validated (key file permissions: errors when strict, else warnings).
 * NULL when it has errors; ds says why. */
struct mc_site *mc_engine_load_site(const char *path, const char *keys_override, bool strict_perms,
				    struct mc_diags *ds);

/* The same for test and check: keys that do not exist yet are warnings, so that the policy
 * logic can be tested before keys are generated. */
struct mc_site *mc_engine_load_site_logic(const char *path, struct mc_diags *ds);

/* The committed site and keys of state directory dir (skip_keys: the site alone, for what
 * needs no key bytes): 0, -ENOENT when nothing is committed, or -EINVAL (ds says why). st is
 * loaded either way. */
int mc_engine_load_committed(const char *dir, bool skip_keys, struct mc_state *st, struct mc_diags *ds,
			     struct mc_site **ret);

/* The staged list of dir (mcpsec stage) and its site with keys: 0, -ENOENT when nothing is
 * staged, or -EINVAL (ds says why). st is loaded either way. */
int mc_engine_load_staged(const char *dir, struct mc_state *st, struct mc_diags *ds, struct mc_site **ret);

/* Warns (not-local) of each policy whose explicit local addresses are none of the host's: a
 * site written for another host (an import applied on its peer). Returns 0 or -errno. */
int mc_engine_check_locals(struct mc_kernel *kern, const struct mc_site *s, struct mc_diags *ds);


/* The host facts compile needs that the kernel behind kern gives: its own IPv6 addresses and
 * its ephemeral port range (route_src and the previous priorities are the caller's to add).
 * Returns 0 or -errno (ds says why); mc_engine_host_free releases it. */
int mc_engine_host(struct mc_kernel *kern, struct mc_host *host, struct mc_diags *ds);
void mc_engine_host_free(struct mc_host *host);

/* Compiles s for the host behind kern: its own addresses, its ephemeral port range, routes for
 * `local: any`, and the priorities st last committed. Returns 0, or -EINVAL (ds says why), or -errno from the kernel. */
int mc_engine_compile(struct mc_kernel *kern, const struct mc_site *s, struct mc_state *st, struct mc_diags *ds,
		      struct mc_plan *plan);

/* Whether committing site_file and keys_file with plan would change nothing: no operation in
 * diff, the committed files, names and flag the same, no trial in progress. */
bool mc_engine_unchanged(const struct mc_state *st, const struct mc_diff *diff, const struct mc_plan *plan,
			 const char *site_file, const char *keys_file, bool enabled);

/* What to commit with a change: NULL commits nothing (mcpsecd's repair). */
struct mc_engine_commit {
	const char *site_file, *keys_file;
	bool enabled;
	/* apply --confirm: a trial for this many seconds from the commit, token naming its
	 * timer; 0: a plain commit, which also ends a trial in progress (apply --force). */
	long trial_seconds;
	const char *trial_token;
	/* Set when there was nothing to do: the kernel and the committed configuration already
	 * were this (no operation sent, no generation written, no trial in progress). May be NULL. */
	bool *unchanged;
};

/* How much of the committed configuration the kernel enforces (mc_engine_enforce). */
enum mc_enforce_level {
	MC_ENFORCE_FULL,     /* every policy and SA (or nothing: IPsec disabled) */
	MC_ENFORCE_NO_SAS,   /* every policy, but no SA could be installed: PROTECT traffic is
			      * dropped (ACQUIRE), never sent in clear */
	MC_ENFORCE_LOCKDOWN, /* the committed configuration cannot be read: the built-in bypasses
			      * and a discard of everything else, both directions */
	MC_ENFORCE_OPEN,     /* ...and the site chose on-failure: open: the kernel is left alone */
	MC_ENFORCE_NOTHING,  /* nothing committed */
};

/*
 * What mcpsecd keeps between enforcement passes: the committed generation's site and plan as
 * compiled for this host, so that a repair reads and compares the kernel only. Used while the
 * committed generation is the same; the caller drops it when what the plan depends on changes
 * (the host's addresses: the own-address bypass and routes) or on SIGHUP.
 */
struct mc_engine_cache {
	bool valid;
	char gen[32];
	struct mc_site *site; /* owned; the plan points into it */
	struct mc_plan plan;
	enum mc_enforce_level level; /* FULL, or NO_SAS with its reason */
	char reason[400];
	int64_t until; /* CLOCK_BOOTTIME seconds: compiled afresh after this (routes can change unseen) */
};
void mc_engine_cache_drop(struct mc_engine_cache *c);

/* Called with the compiled plan and what the kernel enforces now (NULL: nothing of mcpsec's),
 * before anything is sent: false stops the change (MC_ENGINE_DECLINED). The lockout guard. */
typedef bool (*mc_engine_judge)(void *ctx, const struct mc_plan *plan, const struct mc_plan *kernel);
/* Called with the operations about to be sent (or, report_only, that would be), each named. */
typedef void (*mc_engine_report)(void *ctx, const struct mc_plan *plan, const struct mc_diff *diff,
				 const struct mc_state *st);

struct mc_enforce_opts {
	bool commit_enabled; /* enable: commit the enabled flag as a new generation */
	bool report_only;    /* mcpsecd --report-only: diff and report, change nothing */
	mc_engine_judge judge; /* enable's lockout guard (never asked of the lockdown set) */
	/* Called with the operations about to be sent (mcpsecd reports them as drift). */
	mc_engine_report report;
	/* SAs not to put back (mcpsecd: those the kernel removed at their hard lifetime). */
	bool (*keep_out)(void *ctx, const struct mc_xsa *sa);
	/* Asked between steps and between batches of a repair (mcpsecd: a SIGTERM waiting), so that
	 * a repair of 100,000 policies can be left within a second: MC_ENGINE_STOPPED. Never asked
	 * while a commit is under way. */
	bool (*stop)(void *ctx);
	struct mc_engine_cache *cache; /* NULL: load and compile every time */
	void *ctx;
};

struct mc_enforcement {
	enum mc_enforce_level level;
	char reason[400]; /* why not FULL, for `NOT ENFORCED: <reason>` (never key bytes) */
	size_t changes, npols;
	bool enabled;
	bool rolled_back; /* an expired or pre-boot trial was rolled back first */
};

/*
 * The one transaction, with the lock held: compile (site, for this host) or take plan, read the
 * kernel, judge, diff, report, send, commit; on a refusal undo. apply, disable, enable,
 * rollback, the lockdown set and mcpsecd's repair all change the kernel through it.
 */
struct mc_engine_change {
	const struct mc_site *site; /* compiled here for this host (with st's priorities), or */
	const struct mc_plan *plan; /* a plan compiled before (mcpsecd's cache) */
	bool with_policies;         /* the plan's policies wanted (IPsec enabled) */
	const struct mc_engine_commit *commit; /* NULL: the kernel only */
	bool report_only;           /* diff and report, send nothing (apply --dry-run, --report-only) */
	/* When the kernel refuses an SA, enforce the policies without SAs (ret->level NO_SAS):
	 * enforcement fails closed; apply instead reports the refusal. */
	bool fail_closed;
	mc_engine_judge judge;
	mc_engine_report report;
	/* SAs not to put back (mcpsecd: those the kernel removed at their hard lifetime). */
	bool (*keep_out)(void *ctx, const struct mc_xsa *sa);
	/* Asked between steps and batches of a change that commits nothing (MC_ENGINE_STOPPED). */
	bool (*stop)(void *ctx);
	void *ctx;
	struct mc_plan *keep; /* when site was compiled and the change went in: the plan, moved here */
};

/* ret: level in (FULL, or NO_SAS to leave the kernel's SAs as they are) and out, its reason,
 * the operations that took effect, the policies enforced. */
enum mc_engine_status mc_engine_apply(struct mc_kernel *kern, struct mc_state *st, const struct mc_engine_change *c,
				      struct mc_diags *ds, struct mc_enforcement *ret);

/*
 * Brings the kernel to the committed configuration of dir (the caller holds the lock), and
 * never opens what it should close: when the SAs cannot be installed (key file missing or
 * invalid, no ESP/AH in the kernel) every policy is installed anyway; when the configuration
 * itself cannot be read, the lockdown set (or nothing, with on-failure: open). A trial that
 * expired or belongs to an earlier boot is rolled back first. Records DIR/enforcement.
 * MC_ENGINE_OK also for a degraded level: ret->level says which.
 */
enum mc_engine_status mc_engine_enforce(struct mc_kernel *kern, const char *dir, const struct mc_enforce_opts *o,
					struct mc_diags *ds, struct mc_enforcement *ret);

/*
 * Takes dir's lock (mc_state_lock) for a command that changes the kernel or the state. When the
 * last holder was killed in the middle of a change, the kernel may hold part of it: it is
 * brought back to the committed configuration first (mc_engine_enforce), *converged (may be
 * NULL) says so and ds has a warning. Returns the lock's fd or -errno.
 */
int mc_engine_lock(struct mc_kernel *kern, const char *dir, bool wait, struct mc_diags *ds, bool *converged);

/* When the state directory itself cannot be used (not even locked): the lockdown set (or
 * nothing, if DIR/on-failure says open), why being the reason. Writes nothing to dir. */
enum mc_engine_status mc_engine_fail_closed(struct mc_kernel *kern, const char *dir, const char *why,
					    struct mc_diags *ds, struct mc_enforcement *ret);

/* "lockdown (...): reason" for NOT ENFORCED lines; "" when fully enforced. */
void mc_enforcement_str(const struct mc_enforcement *e, char *buf, size_t len);

/* Rolls the trial of dir back (lock held): the kernel to the confirmed generation, then
 * `current` to it. -ENOENT when there is no trial. */
enum mc_engine_status mc_engine_rollback(struct mc_kernel *kern, const char *dir, struct mc_diags *ds);

/* Rolls back a trial whose deadline passed or whose boot is over; *done says whether. */
enum mc_engine_status mc_engine_settle(struct mc_kernel *kern, const char *dir, struct mc_diags *ds, bool *done);

/* "adding policy 'NAME' (dir out, priority N, selector)": an operation in words. */
void mc_op_describe(const struct mc_op *o, const struct mc_state *st, struct mc_buf *b);
/* The rule an operation belongs to (stale policies are named from the committed state). */
const char *mc_op_name(const struct mc_op *o, const struct mc_state *st);

/*
 * The plan the kernel holds: mcpsec's policies (its priority band), grouped into rules by
 * (direction, priority) and named through the committed state (UNKNOWN-PRIORITY-N when the
 * state does not know one). Foreign policies take no part. What `test --kernel` evaluates, and
 * what mcpsecd names a dropped flow's policy with. Pure.
 */
void mc_plan_from_kernel(const struct mc_kstate *k, const struct mc_state *st, struct mc_plan *plan);

#endif
