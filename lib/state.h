/* SPDX-License-Identifier: MIT */
/* The state directory: the committed site and keys, the enabled flag, and rule names by
 * priority (the kernel has no name field; status maps priorities back through this). */
#ifndef MCPSEC_STATE_H
#define MCPSEC_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "names.h"

struct mc_plan;

struct mc_state {
	char *dir;
	enum mc_on_failure on_failure; /* of the site prepared (written to DIR/on-failure) */
	char *gen;      /* the generation read ("gen-N"), NULL for a 0.1 directory or nothing */
	bool committed; /* a configuration was applied */
	bool enabled;
	char *default_name; /* ipsec.default of the committed site */
	struct mc_names names; /* the committed rule names (names.h) */
	char site_sum[72];  /* SHA-256 of the generation's site file ("": not known) */
	char *staged_from;  /* a staged list: the file it was staged from */
	char damage[200]; /* why the load returned -EUCLEAN (mc_state_damage) */
};

/*
 * Reads dir's committed configuration. Returns 0 (st->committed says whether anything is
 * committed), -EUCLEAN when dir is configured (mc_state_configured) but `current` names no
 * valid generation or that generation is damaged (st->damage says how), or another -errno.
 * Nothing committed is only ever a directory that was never configured.
 */
int mc_state_load(const char *dir, struct mc_state *ret);
/* Reads one generation of dir ("gen-N"), committed or not; the same returns. */
int mc_state_load_gen(const char *dir, const char *gen, struct mc_state *ret);
/* Whether dir has ever held a committed configuration (see state.c for the rule). */
bool mc_state_configured(const char *dir);
/* Why a load failed: st->damage for -EUCLEAN, else mc_state_dir_error(err). */
const char *mc_state_damage(const struct mc_state *st, int err);
void mc_state_free(struct mc_state *st);

/* Paths of the committed copies (caller frees). */
char *mc_state_site_path(const struct mc_state *st);
char *mc_state_keys_path(const struct mc_state *st);

/* Whether committing these files with plan would record exactly what st holds (the site and
 * key files byte for byte, the rule names, the flags): then a commit writes nothing new. */
bool mc_state_same(const struct mc_state *st, const char *site_file, const char *keys_file,
		   const struct mc_plan *plan, bool enabled);

/*
 * A commit in two steps around the kernel change (see state.c for the layout):
 * mc_state_prepare writes the new generation (the site and key files copied, key file 0600,
 * directory 0700, rule names from plan, the enabled flag) and records it as pending;
 * mc_state_switch makes it the committed one in one atomic rename (st becomes next);
 * mc_state_abandon drops a prepared generation (the kernel change was refused).
 * Each returns 0 or -errno. mc_state_commit does all three without a kernel step.
 */
int mc_state_prepare(const struct mc_state *st, const char *site_file, const char *keys_file,
		     const struct mc_plan *plan, bool enabled, struct mc_state *next);
int mc_state_switch(struct mc_state *st, struct mc_state *next);
void mc_state_abandon(struct mc_state *next);
int mc_state_commit(struct mc_state *st, const char *site_file, const char *keys_file,
		    const struct mc_plan *plan);
/* A test build's observer of a commit's steps ("prepare", "switch", and "commit" at each
 * point a crash is survivable; tests/fault/fault.c): a -errno fails the step. A weak reference:
 * NULL in the release binaries. */
int mc_state_step(const char *step) __attribute__((weak));

/*
 * A staged list (mcpsec stage): DIR/staged-N, built as a generation is (written whole, then
 * renamed), named by DIR/staged, a link renamed into place in one atomic step (its time is
 * "since"). Never a generation: it neither makes the directory configured nor is committed.
 * It is never enforced. mc_state_stage writes it from the files (with plan's names; source is
 * the file as the user named it) and drops the one staged before; the caller holds the lock.
 * mc_state_unstage drops it. A commit of the same site file drops it too (mc_state_switch).
 * mc_state_staged reads it: 1 (ret filled, *since set when given), 0 when nothing is staged,
 * -EUCLEAN when it is damaged (ret->damage says how), or another -errno.
 */
int mc_state_stage(const char *dir, const char *site_file, const char *keys_file, const char *source,
		   const struct mc_plan *plan, struct mc_state *ret);
int mc_state_unstage(const char *dir);
int mc_state_staged(const char *dir, struct mc_state *ret, int64_t *since);

/* Words for a -errno from the functions above that concern the directory itself. */
const char *mc_state_dir_error(int err);

/*
 * The state directory's lock (flock on DIR/lock, created with the directory if needed): apply,
 * enable and disable hold it while they change the kernel and commit; mcpsecd takes it before
 * repairing, so the two never fight. Taking it drops what a killed holder left (a pending
 * change, unfinished generations, temporary files); *interrupted (may be NULL) then says that a
 * change was cut short, so that the kernel may hold part of it and the caller must bring it to
 * a generation (lib/engine.c mc_engine_lock does). An existing directory is never chmodded: one
 * that others can write is refused (-EPERM); a lock that is not a regular file, -EINVAL.
 * Returns the lock's fd, or -EWOULDBLOCK when !wait and it is held, or another -errno.
 */
int mc_state_lock(const char *dir, bool wait, bool *interrupted);
void mc_state_unlock(int fd);

/* One mcpsecd per state directory: a lock on the directory itself, which nothing has to create
 * (so a full disk or a file in the way cannot stop a daemon from starting and enforcing; only a
 * second daemon holding it does: -EWOULDBLOCK). Creates the directory if needed; -EPERM,
 * -ENOTDIR as mc_state_lock. Held for the daemon's life; released by closing the fd. */
int mc_state_daemon_lock(const char *dir);


/*
 * A trial (apply --confirm):
 *
 *   DIR/confirmed -> gen-K         the last confirmed generation, kept until confirm or rollback
 *   DIR/current.rollback -> gen-K  the rollback's `current`, made in advance (a rename needs no
 *                                  free inode or block: a full disk cannot stop a rollback)
 *   DIR/trial                      the generation on trial, the deadline (on CLOCK_BOOTTIME),
 *                                  the boot it belongs to, a token for its timer
 *
 * It is recorded with the intent, before the kernel changes (its timer can then tell the change
 * is its own), and armed with its deadline once the kernel has changed. It is valid only while
 * `current` names the generation on trial and `confirmed` an existing other one; anything else
 * (a process killed half-way) is dropped by the next holder of the lock, which never leaves an
 * unconfirmed generation in place of the confirmed one.
 */
struct mc_trial {
	char gen[32], confirmed[32];
	int64_t deadline, started;   /* seconds since the epoch (the deadline as people read it) */
	int64_t deadline_boot;       /* the deadline on CLOCK_BOOTTIME (0: a trial of mcpsec 1.0) */
	char boot[40];               /* /proc/sys/kernel/random/boot_id when it started */
	char token[40];              /* identifies this trial to its timer */
};

/* The valid (committed) trial of dir: 1 (ret filled), 0 when there is none, or -errno. */
int mc_state_trial_get(const char *dir, struct mc_trial *ret);
/* The trial file as it is, committed or only an intent: 1, 0 (none or unreadable as one), -errno. */
int mc_state_trial_read(const char *dir, struct mc_trial *ret);
/* Records a trial of next for seconds, before the kernel changes: confirmed is the existing
 * trial's confirmed generation, or st's current one. */
int mc_state_trial_begin(const struct mc_state *st, const struct mc_state *next, int64_t seconds,
			 const char *token);
/* Sets the recorded trial's deadline to seconds from now (the kernel has changed). */
int mc_state_trial_arm(const char *dir, int64_t seconds);
/* Where a trial stands: running (*left seconds to go), expired, or from an earlier boot. */
enum mc_trial_when { MC_TRIAL_RUNNING, MC_TRIAL_EXPIRED, MC_TRIAL_OTHER_BOOT };
enum mc_trial_when mc_trial_when(const struct mc_trial *t, int64_t *left);
/* Seconds on CLOCK_BOOTTIME: time this boot has run, suspend included; never set back. */
int64_t mc_boottime(void);
/* confirm: keeps current; the confirmed generation is dropped. */
int mc_state_trial_end(const char *dir);
/* rollback: `current` names the confirmed generation again, in one atomic step. */
int mc_state_trial_revert(const char *dir);
/* This boot's id ("" when unknown), and a fresh random token. */
void mc_boot_id(char *buf, size_t len);
void mc_random_token(char *buf, size_t len);

/* DIR/on-failure, written at every commit outside the generations (so that it can be read when
 * they cannot): lockdown unless a site chose open, and when the file cannot be read. */
enum mc_on_failure mc_state_on_failure(const char *dir);

/* DIR/enforcement: why the committed configuration is not (fully) enforced, or nothing. */
int mc_state_set_enforcement(const char *dir, const char *reason);
/* 1 with the reason in buf, 0 when fully enforced (or nothing recorded). */
int mc_state_get_enforcement(const char *dir, char *buf, size_t len);

/* The state directory when none is given: /var/lib/mcpsec, or /var/lib/mcpsec/netns/NAME for a
 * named network namespace. The units and the Makefile's STATEDIR name the same. Caller frees. */
char *mc_state_default_dir(const char *netns);

#endif
