/* SPDX-License-Identifier: MIT */
/*
 * State directory I/O, crash-consistent at every point.
 *
 *   DIR/current  -> gen-N        the committed configuration (a relative symlink)
 *   DIR/gen-N/   site.yaml, keys.yaml (0600), state
 *   DIR/pending  -> gen-M        a change being applied to the kernel (the intent)
 *   DIR/staged   -> staged-N     a staged list (mcpsec stage), built as a generation is, never
 *                                enforced or committed; any other staged-N is a killed stage's
 *   DIR/on-failure               what to do when the committed configuration cannot be read
 *   DIR/lock                     flock: apply, enable, disable and mcpsecd's repair
 *   DIR/mcpsecd.*, log.jsonl     mcpsecd's own (its socket, pid, a staged list's table, records)
 *
 * A commit writes a whole new generation (every file fsynced, then the directory), records the
 * intent, changes the kernel, and only then renames a new `current` link over the old one: the
 * single atomic step. A reader resolves `current` once and reads that generation, so it never
 * sees half of a commit. Whoever takes the lock next finds a `pending` left by a killed process
 * and drops it, and says so (mc_state_lock's *interrupted): the committed configuration stays the
 * one `current` names, and the caller brings the kernel back to it (or on to a new one).
 *
 * Damage is never mistaken for "nothing committed". A generation's state file carries SHA-256
 * sums of its site and key files and of itself, so a truncated, emptied or overwritten file is
 * found; and a directory that has ever held a configuration (mc_state_configured) whose
 * `current` names no valid generation is damaged, whatever else is missing.
 *
 * A directory from mcpsec 0.1 (site.yaml, keys.yaml, state at the top) and generations written
 * by mcpsec 1.0 (no sums) are read as they are and replaced at the next commit.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "compile.h"
#include "crypto.h"
#include "fileio.h"
#include "plan.h"
#include "state.h"
#include "util.h"

/* The first line of a state file this version writes (with sums); 1.0 wrote STATE_HEADER_1. */
#define STATE_HEADER "# mcpsec state 2: written by mcpsec, do not edit"
#define STATE_HEADER_1 "# mcpsec state: written by mcpsec, do not edit"

/* A step of a commit, shown to the test build's observer (state.h mc_state_step). */
static int step(const char *what)
{
	return mc_state_step ? mc_state_step(what) : 0;
}

static void commit_step(void)
{
	(void)step("commit");
}

static char *path_in(const struct mc_state *st, const char *name)
{
	return st->gen ? mc_asprintf("%s/%s/%s", st->dir, st->gen, name) : mc_asprintf("%s/%s", st->dir, name);
}

/* Whether name is a generation directory's, "gen-N" and nothing more (N in *g when given). */
static bool gen_number(const char *name, unsigned *g)
{
	unsigned n;
	char extra;
	if (sscanf(name, "gen-%u%c", &n, &extra) != 1)
		return false;
	if (g)
		*g = n;
	return true;
}

static bool is_gen(const char *name)
{
	return gen_number(name, NULL);
}

/* How many generation directories dir holds, and the highest number among them. */
static size_t scan_gens(const char *dir, unsigned *highest)
{
	DIR *d = opendir(dir);
	size_t n = 0;
	unsigned g;

	*highest = 0;
	if (!d)
		return 0;
	for (struct dirent *e; (e = readdir(d));)
		if (gen_number(e->d_name, &g)) {
			n++;
			if (g > *highest)
				*highest = g;
		}
	closedir(d);
	return n;
}

/* Whether DIR/gen holds a state file (a regular one). */
static bool gen_exists(const char *dir, const char *gen)
{
	char *p = mc_asprintf("%s/%s/state", dir, gen);
	struct stat sb;
	bool ok = lstat(p, &sb) == 0 && S_ISREG(sb.st_mode);

	free(p);
	return ok;
}

/* Whether name is a generation being built: "gen-N.new". */
static bool is_building(const char *name)
{
	unsigned g;
	char extra;
	return sscanf(name, "gen-%u.ne%c", &g, &extra) == 2 && extra == 'w' && strlen(strchr(name, '.')) == 4;
}

/* The generation a link (current, pending, confirmed) names, or NULL. */
static char *read_gen_link(const char *dir, const char *link)
{
	char *p = mc_asprintf("%s/%s", dir, link), target[64];
	ssize_t n = readlink(p, target, sizeof(target) - 1);

	free(p);
	if (n <= 0 || (size_t)n >= sizeof(target) - 1)
		return NULL;
	target[n] = '\0';
	return is_gen(target) ? mc_strdup(target) : NULL;
}

/* The staged list DIR/staged names ("staged-N"), or NULL. */
static char *read_staged_link(const char *dir)
{
	char *p = mc_asprintf("%s/staged", dir), target[64], extra;
	ssize_t n = readlink(p, target, sizeof(target) - 1);
	unsigned g;

	free(p);
	if (n <= 0 || (size_t)n >= sizeof(target) - 1)
		return NULL;
	target[n] = '\0';
	return sscanf(target, "staged-%u%c", &g, &extra) == 1 ? mc_strdup(target) : NULL;
}

static unsigned next_staged_number(const char *dir)
{
	DIR *d = opendir(dir);
	unsigned highest = 0, g;

	for (struct dirent *e; d && (e = readdir(d));)
		if (sscanf(e->d_name, "staged-%u", &g) == 1 && g > highest)
			highest = g;
	if (d)
		closedir(d);
	return highest + 1;
}

/* Whether DIR/name exists as anything at all (a dangling link too). */
static bool entry_exists(const char *dir, const char *name)
{
	char *p = mc_asprintf("%s/%s", dir, name);
	struct stat sb;
	bool yes = lstat(p, &sb) == 0;

	free(p);
	return yes;
}

/*
 * The rule for "configured", in one place: a state directory that has ever held a committed
 * configuration. Every commit leaves `current` and `on-failure` (outside the generations), and
 * a generation directory; a trial leaves `confirmed` and `trial`; mcpsec 0.1 left `state` at
 * the top. Any one of them, of any kind and in any condition, means configured: its damage is
 * damage (lockdown, or the site's on-failure), never "nothing committed". What exists without
 * a commit does not count: the lock, the daemon's log, pid file and socket, the enforcement
 * note, and a first commit still in progress (`pending`, gen-N.new). The systemd unit's start
 * conditions name the same entries.
 */
bool mc_state_configured(const char *dir)
{
	static const char *const marks[] = { "current", "on-failure", "confirmed", "trial", "state" };
	unsigned highest;

	for (size_t i = 0; i < MC_ARRAY_SIZE(marks); i++)
		if (entry_exists(dir, marks[i]))
			return true;
	return scan_gens(dir, &highest) > 0; /* a staged list (staged-N) is never one */
}

char *mc_state_site_path(const struct mc_state *st) { return path_in(st, "site.yaml"); }
char *mc_state_keys_path(const struct mc_state *st) { return path_in(st, "keys.yaml"); }

/* Marks st damaged, with the reason; returns -EUCLEAN. */
static int damaged(struct mc_state *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int damaged(struct mc_state *st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->damage, sizeof(st->damage), fmt, ap);
	va_end(ap);
	st->committed = false;
	return -EUCLEAN;
}

int mc_state_load(const char *dir, struct mc_state *ret)
{
	char *gen = read_gen_link(dir, "current"); /* NULL: nothing committed, 0.1, or damage */
	int r;

	if (gen || entry_exists(dir, "current") || !entry_exists(dir, "state")) {
		if (gen || !mc_state_configured(dir)) {
			r = mc_state_load_gen(dir, gen, ret);
		} else {
			memset(ret, 0, sizeof(*ret));
			ret->dir = mc_strdup(dir);
			r = damaged(ret, entry_exists(dir, "current") ? "'current' names no generation"
								     : "'current' is missing, but generations or the "
								       "on-failure file show a configuration was committed");
		}
	} else {
		r = mc_state_load_gen(dir, NULL, ret); /* the 0.1 layout */
	}
	free(gen);
	return r;
}

/*
 * Checks the site file beside a state file against the sum it records. The site alone: its
 * damage could open what it should close (a policy cut short after 'action: bypass' and before
 * its ports bypasses every port), so it is damage. A damaged key file can only fail closed (no
 * SA, or one the peer does not match), and it is where an operator repairs a broken key in
 * place, so it is not summed.
 */
static int check_site_sum(struct mc_state *st, const char *want)
{
	char *p = path_in(st, "site.yaml"), *buf = NULL, sum[65];
	size_t len = 0;
	int r = mc_file_read(p, MC_READ_NOFOLLOW, MC_FILE_MAX, &buf, &len, NULL);

	free(p);
	if (r < 0)
		return damaged(st, "%s/site.yaml cannot be read: %s", st->gen,
			       r == -EINVAL ? "not a regular file" : strerror(-r));
	mc_sha256_hex(buf, len, sum);
	free(buf);
	if (strcmp(sum, want))
		return damaged(st, "%s/site.yaml is not what was committed (its SHA-256 differs: truncated or "
			       "changed)", st->gen);
	return 0;
}

int mc_state_load_gen(const char *dir, const char *gen, struct mc_state *ret)
{
	char *p, *text = NULL;
	size_t len = 0;
	int r;

	memset(ret, 0, sizeof(*ret));
	ret->dir = mc_strdup(dir);
	ret->gen = gen ? mc_strdup(gen) : NULL;
	p = path_in(ret, "state");
	r = mc_file_read(p, MC_READ_NOFOLLOW, MC_FILE_MAX, &text, &len, NULL);
	free(p);
	if (r == -ENOENT && !gen)
		return 0; /* nothing committed */
	if (r < 0) {
		int e = damaged(ret, "%s%sstate cannot be read: %s", gen ? gen : "", gen ? "/" : "",
				r == -ENOENT ? "it is missing" : r == -EINVAL ? "not a regular file" : strerror(-r));
		return r == -ENOENT || r == -EINVAL || r == -ELOOP || r == -EFBIG ? e : r;
	}
	/* Version 2 ends in "end SUM", the SHA-256 of everything before that line. */
	bool v2 = !strncmp(text, STATE_HEADER "\n", strlen(STATE_HEADER) + 1);
	char site_sum[72] = "";
	bool enabled_seen = false, end_seen = false;
	if (v2) {
		char *end = NULL;
		for (char *q = text; (q = strstr(q, "\nend ")); q++)
			end = q + 1;
		char want[65], got[72] = "";
		if (end) {
			mc_sha256_hex(text, (size_t)(end - text), want);
			end_seen = sscanf(end, "end %71s", got) == 1 && !strcmp(got, want) &&
				   end + 4 + 64 + 1 == text + len;
		}
		if (!end_seen) {
			free(text);
			return damaged(ret, "%s/state is damaged (truncated or changed: its sum does not match)",
				       gen ? gen : ".");
		}
		*end = '\0';
	} else if (strncmp(text, STATE_HEADER_1 "\n", strlen(STATE_HEADER_1) + 1) &&
		   !(!gen && len)) {
		free(text);
		return damaged(ret, "%s/state is damaged (not a state file mcpsec wrote)", gen ? gen : ".");
	}
	for (char *line = text, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char name[256], dirs[8];
		unsigned prio, reqid = 0;
		int got;
		if (!strncmp(line, "enabled ", 8)) {
			ret->enabled = !strcmp(line + 8, "yes");
			enabled_seen = !strcmp(line + 8, "yes") || !strcmp(line + 8, "no");
		} else if (!strncmp(line, "default ", 8)) {
			free(ret->default_name);
			ret->default_name = mc_strdup(line + 8);
		} else if (sscanf(line, "site-sha256 %71s", site_sum) == 1) {
			snprintf(ret->site_sum, sizeof(ret->site_sum), "%s", site_sum);
		} else if (!strncmp(line, "staged-from ", 12)) {
			free(ret->staged_from);
			ret->staged_from = mc_strdup(line + 12);
		} else if ((got = sscanf(line, "rule %u %7s %255s reqid %u", &prio, dirs, name, &reqid)) >= 3) {
			mc_names_add(&ret->names, prio, !strcmp(dirs, "in") ? MC_DIR_IN : MC_DIR_OUT,
				     got == 4 ? reqid : 0, name);
		} else if (line[0] != '#' && line[0]) {
			free(text);
			return damaged(ret, "%s/state is damaged (a line mcpsec never writes)", gen ? gen : ".");
		}
	}
	free(text);
	mc_names_index(&ret->names);
	if (!enabled_seen)
		return damaged(ret, "%s/state is damaged (no 'enabled' line)", gen ? gen : ".");
	if (v2 && !site_sum[0])
		return damaged(ret, "%s/state is damaged (no sum of its site file)", gen);
	if (v2 && (r = check_site_sum(ret, site_sum)) < 0)
		return r;
	ret->committed = true;
	return 0;
}

void mc_state_free(struct mc_state *st)
{
	mc_names_free(&st->names);
	free(st->default_name);
	free(st->staged_from);
	free(st->gen);
	free(st->dir);
	memset(st, 0, sizeof(*st));
}

static int mkdir_private(const char *dir)
{
	char *copy = mc_strdup(dir);

	/* Create parents as needed; the last component is the private one. */
	for (char *p = copy + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, 0755) < 0 && errno != EEXIST) {
			int e = errno;
			free(copy);
			return -e;
		}
		*p = '/';
	}
	free(copy);
	if (mkdir(dir, 0700) == 0)
		return 0;
	if (errno != EEXIST)
		return -errno;
	/* Someone else's directory keeps its mode: mcpsec never changes what it did not create.
	 * But keys and the lock must not live where others can write (or swap files). */
	struct stat st;
	if (lstat(dir, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if ((st.st_mode & 0022) || (st.st_uid != 0 && st.st_uid != getuid()))
		return -EPERM;
	return 0;
}

const char *mc_state_dir_error(int err)
{
	switch (-err) {
	case EPERM:
		return "it is writable by others or owned by someone else (the state directory holds keys)";
	case ENOTDIR:
		return "it is not a directory";
	case EUCLEAN:
		return "it is damaged: 'current' names no complete generation";
	default:
		return strerror(-err);
	}
}

const char *mc_state_damage(const struct mc_state *st, int err)
{
	return err == -EUCLEAN && st->damage[0] ? st->damage : mc_state_dir_error(err);
}

static char *read_whole(const char *path, size_t *len, int *err)
{
	char *buf = NULL;

	*err = mc_file_read(path, MC_READ_NOFOLLOW | MC_READ_SECRET, MC_FILE_MAX, &buf, len, NULL);
	return buf;
}

/* Copies from into the new file to (mode), and its SHA-256 into sum. */
static int copy_file(const char *from, const char *to, mode_t mode, char sum[65])
{
	size_t len = 0;
	int r;
	char *buf = read_whole(from, &len, &r);

	if (r < 0)
		return r;
	mc_sha256_hex(buf, len, sum);
	r = mc_file_write_new(to, buf, len, mode);
	mc_wipe_free(buf, len);
	return r;
}

/* The state file's text: the flags, the sum of the generation's site file, the rule names, and
 * a last line with the sum of all the rest. */
static void state_text(const struct mc_state *st, const char *site_sum, struct mc_buf *b)
{
	char sum[65];

	mc_buf_printf(b, "%s\n", STATE_HEADER);
	mc_buf_printf(b, "enabled %s\n", st->enabled ? "yes" : "no");
	if (st->default_name)
		mc_buf_printf(b, "default %s\n", st->default_name);
	mc_buf_printf(b, "site-sha256 %s\n", site_sum);
	if (st->staged_from) /* a staged list's source file (one line: mc_state_stage) */
		mc_buf_printf(b, "staged-from %s\n", st->staged_from);
	for (size_t i = 0; i < st->names.n; i++) {
		const struct mc_state_name *nm = &st->names.v[i];
		mc_buf_printf(b, "rule %u %s %s", nm->priority, mc_dir_str(nm->dir), nm->name);
		if (nm->reqid)
			mc_buf_printf(b, " reqid %u", nm->reqid);
		mc_buf_puts(b, "\n");
	}
	mc_sha256_hex(b->s, b->len, sum);
	mc_buf_printf(b, "end %s\n", sum);
}

static void trial_commit(const char *dir, const char *current);
static void trial_tidy(const char *dir);

/* The parts of a trial, outside the generations (and trial.pending, an intent). */
static const char *const trial_files[] = { "trial", "confirmed", "current.rollback" };

/* Removes a generation directory and what is in it. */
static void remove_gen(const char *dir, const char *gen)
{
	static const char *const files[] = { "site.yaml", "keys.yaml", "state" };
	char *g = mc_asprintf("%s/%s", dir, gen);

	for (size_t i = 0; i < MC_ARRAY_SIZE(files); i++) {
		char *p = mc_asprintf("%s/%s", g, files[i]);
		(void)unlink(p);
		free(p);
	}
	(void)rmdir(g);
	free(g);
}

/* Points link (current, pending, confirmed, ...) at gen atomically: a new symlink renamed over
 * it. */
static int set_link(const char *dir, const char *link, const char *gen)
{
	char *tmp = mc_asprintf("%s/%s.new", dir, link), *p = mc_asprintf("%s/%s", dir, link);
	int r = 0;

	(void)unlink(tmp);
	if (symlink(gen, tmp) < 0 || rename(tmp, p) < 0)
		r = -errno;
	if (r)
		(void)unlink(tmp);
	free(tmp);
	free(p);
	return r ? r : mc_fsync_dir(dir);
}

static void unlink_in(const char *dir, const char *name)
{
	char *p = mc_asprintf("%s/%s", dir, name);
	(void)unlink(p);
	free(p);
}

/* What a commit of plan records besides the files: the flags and the rule names. */
static void fill_next(const struct mc_plan *plan, bool enabled, struct mc_state *next)
{
	next->enabled = enabled;
	next->committed = true;
	next->on_failure = plan->on_failure;
	next->default_name = mc_strdup(mc_default_str(plan->def));
	for (size_t i = 0; i < plan->nrules; i++) {
		const struct mc_rule *rule = &plan->rules[i];
		if (rule->kind != MC_RULE_USER)
			continue;
		mc_names_add(&next->names, rule->priority, rule->dir, rule->reqid, rule->name);
	}
	mc_names_index(&next->names);
}

/* The SHA-256 of a file, or "none" when it is not given. 0 or -errno. */
static int file_sum(const char *path, char sum[72])
{
	size_t len = 0;
	int r = 0;
	char *buf;

	if (!path) {
		strcpy(sum, "none");
		return 0;
	}
	buf = read_whole(path, &len, &r);
	if (!r)
		mc_sha256_hex(buf, len, sum);
	mc_wipe_free(buf, len);
	return r;
}

bool mc_state_same(const struct mc_state *st, const char *site_file, const char *keys_file,
		   const struct mc_plan *plan, bool enabled)
{
	struct mc_state cand = { 0 };
	struct mc_buf text = { 0 };
	char site_sum[72], *keys = NULL;
	size_t klen = 0;
	bool same = false;
	int r = 0;

	if (!st->committed || !st->gen)
		return false;
	fill_next(plan, enabled, &cand);
	if (keys_file)
		keys = read_whole(keys_file, &klen, &r);
	if (!r && file_sum(site_file, site_sum) == 0) {
		state_text(&cand, site_sum, &text);
		char *sp = path_in(st, "state"), *kp = path_in(st, "keys.yaml");
		same = mc_file_holds(sp, text.s, text.len) && mc_file_holds(kp, keys, klen);
		free(sp);
		free(kp);
	}
	mc_wipe_free(keys, klen);
	mc_buf_free(&text);
	mc_state_free(&cand);
	return same;
}

/* The number after the highest generation in dir: a new generation never reuses a number, not
 * even one a damaged `current` no longer names. */
static unsigned next_gen_number(const char *dir)
{
	unsigned highest;

	(void)scan_gens(dir, &highest);
	return highest + 1;
}

/* A generation is built as DIR/gen-N.new and renamed to gen-N only when complete, after
 * `pending` names it: so every gen-N is whole, and one that is neither current nor a trial's
 * way back is either the pending one of a killed writer or an old one, both safe to drop. */
static char *gen_dir(const char *dir, const char *gen, bool building)
{
	return mc_asprintf("%s/%s%s", dir, gen, building ? ".new" : "");
}

static void remove_building(const char *dir, const char *gen)
{
	char *b = mc_asprintf("%s.new", gen);
	remove_gen(dir, b);
	free(b);
}

/* Writes the generation next names, as DIR/gen-N.new renamed to gen-N only when whole: the site
 * and key files copied (0600), the state file with next's names and flags; next->site_sum is
 * set. 0 or -errno (what was built is removed). */
static int build_gen(struct mc_state *next, const char *site_file, const char *keys_file)
{
	char keys_sum[72];
	int r;
	char *g = gen_dir(next->dir, next->gen, true);
	remove_building(next->dir, next->gen);
	r = mkdir(g, 0700) < 0 ? -errno : 0;
	commit_step();
	char *p;
	if (!r) {
		p = mc_asprintf("%s/site.yaml", g);
		r = copy_file(site_file, p, 0600, next->site_sum);
		free(p);
		commit_step();
	}
	if (!r && keys_file) {
		p = mc_asprintf("%s/keys.yaml", g);
		r = copy_file(keys_file, p, 0600, keys_sum);
		free(p);
		commit_step();
	}
	if (!r) {
		struct mc_buf b = { 0 };
		state_text(next, next->site_sum, &b);
		p = mc_asprintf("%s/state", g);
		r = mc_file_write_new(p, b.s, b.len, 0600);
		free(p);
		mc_buf_free(&b);
	}
	if (!r)
		r = mc_fsync_dir(g);
	if (!r) {
		char *done = gen_dir(next->dir, next->gen, false);
		r = rename(g, done) < 0 ? -errno : mc_fsync_dir(next->dir);
		free(done);
	}
	if (r)
		remove_building(next->dir, next->gen);
	free(g);
	commit_step();
	return r;
}

int mc_state_prepare(const struct mc_state *st, const char *site_file, const char *keys_file,
		     const struct mc_plan *plan, bool enabled, struct mc_state *next)
{
	int r;

	memset(next, 0, sizeof(*next));
	if ((r = mkdir_private(st->dir)) < 0)
		return r;
	next->dir = mc_strdup(st->dir);
	next->gen = mc_asprintf("gen-%u", next_gen_number(st->dir));
	fill_next(plan, enabled, next);

	/* The intent first: a process killed from here on leaves `pending`, which the next holder
	 * of the lock drops with what it names (and then brings the kernel back to `current`). */
	if ((r = step("prepare")) < 0 || (r = set_link(st->dir, "pending", next->gen)) < 0)
		goto fail;
	commit_step();
	r = build_gen(next, site_file, keys_file);
	if (!r)
		return 0;
fail:
	mc_state_abandon(next);
	return r;
}

void mc_state_abandon(struct mc_state *next)
{
	if (next->dir && next->gen) {
		remove_building(next->dir, next->gen);
		remove_gen(next->dir, next->gen);
		unlink_in(next->dir, "pending");
		trial_tidy(next->dir);
	}
	mc_state_free(next);
}

int mc_state_switch(struct mc_state *st, struct mc_state *next)
{
	int r = step("switch");

	if (!r)
		r = set_link(st->dir, "current", next->gen);

	commit_step();
	if (r < 0)
		return r;
	trial_commit(st->dir, next->gen);
	commit_step();
	/* Committed. What follows only tidies up; a kill here leaves files the next lock removes. */
	unlink_in(st->dir, "pending");
	commit_step();
	/* The staged list, applied, is staged no more. */
	struct mc_state staged;
	if (next->site_sum[0] && mc_state_staged(st->dir, &staged, NULL) == 1 &&
	    !strcmp(staged.site_sum, next->site_sum))
		(void)mc_state_unstage(st->dir);
	mc_state_free(&staged);
	/* Outside the generations: enable reads it when they cannot be read. */
	const char *on_failure = next->on_failure == MC_ON_FAILURE_OPEN ? "open\n" : "lockdown\n";
	char *p = mc_asprintf("%s/on-failure", st->dir);
	(void)mc_file_write_atomic(p, on_failure, strlen(on_failure), 0600);
	free(p);
	char *confirmed = read_gen_link(st->dir, "confirmed");
	bool keep = confirmed && st->gen && !strcmp(confirmed, st->gen); /* a trial's way back */
	free(confirmed);
	if (st->gen) {
		if (!keep)
			remove_gen(st->dir, st->gen);
	} else {
		static const char *const legacy[] = { "site.yaml", "keys.yaml", "state" };
		for (size_t i = 0; i < MC_ARRAY_SIZE(legacy); i++)
			unlink_in(st->dir, legacy[i]);
	}
	mc_state_free(st);
	*st = *next;
	memset(next, 0, sizeof(*next));
	return 0;
}

int mc_state_commit(struct mc_state *st, const char *site_file, const char *keys_file,
		    const struct mc_plan *plan)
{
	struct mc_state next;
	int r = mc_state_prepare(st, site_file, keys_file, plan, plan->enabled, &next);

	if (r < 0)
		return r;
	if ((r = mc_state_switch(st, &next)) < 0)
		mc_state_abandon(&next);
	return r;
}


/*
 * Drops what a killed process left, with the lock held (so nobody is writing): a pending intent
 * and its generation, a trial that was never committed (or whose rollback or confirm a kill
 * interrupted), generations that are neither current nor a valid trial's way back, and
 * temporary files. Returns whether a change was interrupted (a pending intent was found): the
 * kernel may then hold part of it, and the caller must bring it to a generation. When `current`
 * names no valid generation (damage), no generation is removed: the next apply replaces the
 * directory, and until then what is there may still help whoever repairs it.
 */
static bool recover(const char *dir)
{
	char *cur = read_gen_link(dir, "current");
	char *pend = read_gen_link(dir, "pending");
	struct mc_trial trial;
	bool interrupted = pend || entry_exists(dir, "pending");
	DIR *d;

	trial_commit(dir, cur); /* a kill between `current` and the trial: finish it */
	trial_tidy(dir);
	bool in_trial = mc_state_trial_get(dir, &trial) == 1;

	/* The killed writer's generation was never committed: it goes, whatever else is there. */
	if (pend && !(cur && !strcmp(cur, pend))) {
		remove_building(dir, pend);
		remove_gen(dir, pend);
	}
	unlink_in(dir, "pending");
	bool cur_ok = cur && gen_exists(dir, cur);
	char *staged = read_staged_link(dir);
	if ((d = opendir(dir))) {
		for (struct dirent *e; (e = readdir(d));) {
			unsigned n;
			char extra[8];
			if (sscanf(e->d_name, "staged-%u%7s", &n, extra) >= 1 && !(staged && !strcmp(staged, e->d_name))) {
				/* A staged list the link does not name (a killed stage, or one replaced):
				 * never committed data, always safe to drop. */
				if (strstr(e->d_name, ".new")) {
					char *g = mc_strndup(e->d_name, strlen(e->d_name) - 4);
					remove_building(dir, g);
					free(g);
				} else
					remove_gen(dir, e->d_name);
			} else if (is_gen(e->d_name)) {
				bool keep = !cur_ok || !strcmp(cur, e->d_name) ||
					    (in_trial && !strcmp(trial.confirmed, e->d_name));
				if (!keep)
					remove_gen(dir, e->d_name);
			} else if (is_building(e->d_name)) {
				char *g = mc_strndup(e->d_name, strlen(e->d_name) - 4);
				remove_building(dir, g);
				free(g);
			} else if (!strcmp(e->d_name, "current.new") || !strcmp(e->d_name, "pending.new") ||
				   !strcmp(e->d_name, "confirmed.new") || !strcmp(e->d_name, "current.rollback.new") ||
				   !strcmp(e->d_name, "staged.new") ||
				   strstr(e->d_name, ".tmp.")) {
				unlink_in(dir, e->d_name);
			}
		}
		closedir(d);
	}
	free(staged);
	free(cur);
	free(pend);
	return interrupted;
}

/* ---- a staged list (mcpsec stage) ---- */


int mc_state_stage(const char *dir, const char *site_file, const char *keys_file, const char *source,
		   const struct mc_plan *plan, struct mc_state *ret)
{
	int r;

	memset(ret, 0, sizeof(*ret));
	if ((r = mkdir_private(dir)) < 0)
		return r;
	ret->dir = mc_strdup(dir);
	ret->gen = mc_asprintf("staged-%u", next_staged_number(dir));
	fill_next(plan, plan->enabled, ret);
	ret->committed = false;
	ret->staged_from = mc_strdup(source);
	for (char *c = ret->staged_from; *c; c++) /* one line, whatever the file's name holds */
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	char *old = read_staged_link(dir);
	/* Built whole first, then named by one atomic rename of `staged`: a kill before it leaves
	 * an unnamed generation that the next holder of the lock removes. */
	if (!(r = step("stage")) && !(r = build_gen(ret, site_file, keys_file)) && (r = set_link(dir, "staged", ret->gen)))
		remove_gen(dir, ret->gen);
	commit_step();
	if (!r && old && strcmp(old, ret->gen))
		remove_gen(dir, old);
	free(old);
	if (r)
		mc_state_free(ret);
	return r;
}

int mc_state_unstage(const char *dir)
{
	char *old = read_staged_link(dir);
	int r = 0;

	if (entry_exists(dir, "staged")) {
		unlink_in(dir, "staged");
		r = mc_fsync_dir(dir);
	}
	if (old)
		remove_gen(dir, old);
	free(old);
	return r;
}

int mc_state_staged(const char *dir, struct mc_state *ret, int64_t *since)
{
	char *p = mc_asprintf("%s/staged", dir);
	struct stat sb;
	int r = lstat(p, &sb);

	free(p);
	memset(ret, 0, sizeof(*ret));
	if (r < 0) {
		ret->dir = mc_strdup(dir);
		return errno == ENOENT ? 0 : -errno;
	}
	if (since)
		*since = (int64_t)sb.st_mtime;
	char *gen = read_staged_link(dir);
	if (!S_ISLNK(sb.st_mode) || !gen) {
		free(gen);
		ret->dir = mc_strdup(dir);
		return damaged(ret, "'staged' is not a link to a staged list (staged-N)");
	}
	r = mc_state_load_gen(dir, gen, ret);
	free(gen);
	ret->committed = false;
	return r < 0 ? r : 1;
}

/* ---- trials (apply --confirm) ---- */

int64_t mc_boottime(void)
{
	struct timespec ts;
	return clock_gettime(CLOCK_BOOTTIME, &ts) == 0 ? (int64_t)ts.tv_sec : 0;
}

/* Parses DIR/name as a trial file: 1, 0 (missing or not one), -errno. */
static int trial_parse(const char *dir, const char *name, struct mc_trial *ret)
{
	char *p = mc_asprintf("%s/%s", dir, name), *text = NULL;
	size_t len = 0;
	int fields = 0, r = mc_file_read(p, MC_READ_NOFOLLOW, 4096, &text, &len, NULL);

	free(p);
	memset(ret, 0, sizeof(*ret));
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		long long v;
		fields += sscanf(line, "gen %31s", ret->gen) == 1;
		fields += sscanf(line, "confirmed %31s", ret->confirmed) == 1;
		fields += sscanf(line, "boot %39s", ret->boot) == 1;
		fields += sscanf(line, "token %39s", ret->token) == 1;
		if (sscanf(line, "deadline %lld", &v) == 1) {
			ret->deadline = v;
			fields++;
		}
		if (sscanf(line, "deadline-boottime %lld", &v) == 1)
			ret->deadline_boot = v;
		if (sscanf(line, "started %lld", &v) == 1)
			ret->started = v;
	}
	free(text);
	if (fields != 5 || !is_gen(ret->gen) || !is_gen(ret->confirmed)) {
		memset(ret, 0, sizeof(*ret));
		return 0;
	}
	return 1;
}

int mc_state_trial_read(const char *dir, struct mc_trial *ret)
{
	int r = trial_parse(dir, "trial", ret);
	return r ? r : trial_parse(dir, "trial.pending", ret);
}

/* Whether the trial t is committed: `current` names its generation, and `confirmed` an
 * existing other one, its way back. */
static bool trial_valid(const char *dir, const struct mc_trial *t)
{
	char *link = read_gen_link(dir, "confirmed"), *cur = read_gen_link(dir, "current");
	bool valid = link && !strcmp(link, t->confirmed) && gen_exists(dir, t->confirmed) && cur &&
		     !strcmp(cur, t->gen) && strcmp(cur, t->confirmed);

	free(link);
	free(cur);
	return valid;
}

int mc_state_trial_get(const char *dir, struct mc_trial *ret)
{
	/* The trial file, or an intent whose generation `current` already names (a commit between
	 * its two steps: the intent is the trial, only not yet renamed). */
	static const char *const names[] = { "trial", "trial.pending" };
	int r = 0;

	for (size_t i = 0; i < MC_ARRAY_SIZE(names); i++) {
		if ((r = trial_parse(dir, names[i], ret)) < 0)
			return r;
		if (r == 1 && trial_valid(dir, ret))
			return 1;
	}
	memset(ret, 0, sizeof(*ret));
	return 0;
}

enum mc_trial_when mc_trial_when(const struct mc_trial *t, int64_t *left)
{
	char boot[40];

	mc_boot_id(boot, sizeof(boot));
	*left = 0;
	if (boot[0] && strcmp(boot, t->boot))
		return MC_TRIAL_OTHER_BOOT;
	/* The window on the clock that counts time this boot has run (suspend included), which
	 * setting the wall clock cannot move; trials from 1.0 have only the wall clock's deadline. */
	*left = t->deadline_boot ? t->deadline_boot - mc_boottime() : t->deadline - (int64_t)time(NULL);
	return *left > 0 ? MC_TRIAL_RUNNING : MC_TRIAL_EXPIRED;
}

static int write_trial(const char *dir, const char *name, const struct mc_trial *t)
{
	struct mc_buf b = { 0 };

	mc_buf_printf(&b, "# mcpsec trial: written by mcpsec, do not edit\ngen %s\nconfirmed %s\n"
		      "deadline %lld\ndeadline-boottime %lld\nstarted %lld\nboot %s\ntoken %s\n", t->gen,
		      t->confirmed, (long long)t->deadline, (long long)t->deadline_boot, (long long)t->started,
		      t->boot[0] ? t->boot : "-", t->token);
	char *p = mc_asprintf("%s/%s", dir, name);
	int r = mc_file_write_atomic(p, b.s, b.len, 0600);
	free(p);
	mc_buf_free(&b);
	return r ? r : mc_fsync_dir(dir);
}

int mc_state_trial_begin(const struct mc_state *st, const struct mc_state *next, int64_t seconds,
			 const char *token)
{
	struct mc_trial old, t = { 0 };
	int r;

	if (mc_state_trial_get(st->dir, &old) != 1) {
		if (!st->gen)
			return -ENOENT; /* nothing confirmed to go back to (a trial needs a committed base) */
		snprintf(old.confirmed, sizeof(old.confirmed), "%s", st->gen);
		if ((r = set_link(st->dir, "confirmed", st->gen)) < 0)
			return r;
	}
	/* Reserved now, while it can be: the rollback is then a rename, which needs no new inode or
	 * block, so that it works on a full disk too. */
	if ((r = set_link(st->dir, "current.rollback", old.confirmed)) < 0)
		return r;
	snprintf(t.gen, sizeof(t.gen), "%s", next->gen);
	snprintf(t.confirmed, sizeof(t.confirmed), "%s", old.confirmed);
	snprintf(t.token, sizeof(t.token), "%s", token);
	mc_boot_id(t.boot, sizeof(t.boot));
	t.started = (int64_t)time(NULL);
	t.deadline = t.started + seconds;
	t.deadline_boot = mc_boottime() + seconds;
	return write_trial(st->dir, "trial.pending", &t);
}

int mc_state_trial_arm(const char *dir, int64_t seconds)
{
	struct mc_trial t;
	int r = trial_parse(dir, "trial.pending", &t);

	if (r != 1)
		return r < 0 ? r : -ENOENT;
	t.deadline = (int64_t)time(NULL) + seconds;
	t.deadline_boot = mc_boottime() + seconds;
	return write_trial(dir, "trial.pending", &t);
}

/* A recorded trial intent is committed with its generation: once `current` names it, the
 * intent becomes the trial (a rename: no new inode). Whoever finds the two halfway (a kill
 * between them) finishes it the same way (recover). */
static void trial_commit(const char *dir, const char *current)
{
	struct mc_trial t;

	if (trial_parse(dir, "trial.pending", &t) != 1 || !current || strcmp(t.gen, current))
		return;
	char *from = mc_asprintf("%s/trial.pending", dir), *to = mc_asprintf("%s/trial", dir);
	if (rename(from, to) == 0)
		(void)mc_fsync_dir(dir);
	free(from);
	free(to);
}

/* Drops the parts of a trial that no valid trial owns: an intent never committed, and a
 * `confirmed` or reserved rollback link of a trial that is over. */
static void trial_tidy(const char *dir)
{
	struct mc_trial t;

	unlink_in(dir, "trial.pending");
	if (mc_state_trial_get(dir, &t) != 1)
		for (size_t i = 0; i < MC_ARRAY_SIZE(trial_files); i++)
			unlink_in(dir, trial_files[i]);
}

int mc_state_trial_end(const char *dir)
{
	/* The way back goes with the trial: the generation `confirmed` names, unless it is current. */
	char *back = read_gen_link(dir, "confirmed"), *cur = read_gen_link(dir, "current");
	char *p = mc_asprintf("%s/trial", dir);
	int r = unlink(p) < 0 && errno != ENOENT ? -errno : 0; /* the decision: nothing to go back to */

	free(p);
	if (!r) {
		unlink_in(dir, "trial.pending");
		(void)mc_fsync_dir(dir);
		unlink_in(dir, "confirmed");
		unlink_in(dir, "current.rollback");
		if (back && !(cur && !strcmp(cur, back)))
			remove_gen(dir, back);
	}
	free(back);
	free(cur);
	return r;
}

int mc_state_trial_revert(const char *dir)
{
	struct mc_trial t;
	char *cur = read_gen_link(dir, "current"), *back = read_gen_link(dir, "current.rollback");
	int r = mc_state_trial_get(dir, &t);

	if (r != 1) {
		free(cur);
		free(back);
		return r < 0 ? r : -ENOENT;
	}
	/* The one step: from here `current` is the confirmed generation, and the trial is over
	 * (recover() drops what is left of it if a kill comes next). The link reserved when the
	 * trial began is renamed into place; only a trial without one makes a new link. */
	char *from = mc_asprintf("%s/current.rollback", dir), *to = mc_asprintf("%s/current", dir);
	if (back && !strcmp(back, t.confirmed))
		r = rename(from, to) < 0 ? -errno : mc_fsync_dir(dir);
	else
		r = set_link(dir, "current", t.confirmed);
	free(from);
	free(to);
	free(back);
	if (r < 0) {
		free(cur);
		return r;
	}
	unlink_in(dir, "trial");
	unlink_in(dir, "confirmed");
	unlink_in(dir, "current.rollback");
	if (cur && strcmp(cur, t.confirmed))
		remove_gen(dir, cur);
	free(cur);
	return mc_fsync_dir(dir);
}

void mc_boot_id(char *buf, size_t len)
{
	char *text = NULL;
	size_t n = 0;

	buf[0] = '\0';
	if (mc_file_read("/proc/sys/kernel/random/boot_id", 0, 4096, &text, &n, NULL) == 0) {
		snprintf(buf, len, "%s", text);
		buf[strcspn(buf, "\n")] = '\0';
	}
	free(text);
}

void mc_random_token(char *buf, size_t len)
{
	unsigned char raw[16] = { 0 };
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		(void)!read(fd, raw, sizeof(raw));
		close(fd);
	}
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(raw) && 2 * i + 2 < len; i++)
		snprintf(buf + 2 * i, 3, "%02x", raw[i]);
	if (!raw[0] && !raw[1]) /* no /dev/urandom: time and pid still tell timers apart */
		snprintf(buf, len, "%lx%lx", (long)time(NULL), (long)getpid());
}

/* A small state file's first line (without the newline), or "" (missing, unreadable, not a
 * regular file). */
static void read_line(const char *dir, const char *name, char *buf, size_t len)
{
	char *p = mc_asprintf("%s/%s", dir, name), *text = NULL;
	size_t n = 0;

	buf[0] = '\0';
	if (mc_file_read(p, MC_READ_NOFOLLOW, 4096, &text, &n, NULL) == 0) {
		snprintf(buf, len, "%s", text);
		buf[strcspn(buf, "\n")] = '\0';
	}
	free(text);
	free(p);
}

enum mc_on_failure mc_state_on_failure(const char *dir)
{
	char line[32];

	read_line(dir, "on-failure", line, sizeof(line));
	return !strcmp(line, "open") ? MC_ON_FAILURE_OPEN : MC_ON_FAILURE_LOCKDOWN;
}

int mc_state_set_enforcement(const char *dir, const char *reason)
{
	char *p = mc_asprintf("%s/enforcement", dir);
	int r = 0;

	if (!reason) {
		if (unlink(p) < 0 && errno != ENOENT)
			r = -errno;
	} else {
		char *text = mc_asprintf("%s\n", reason);
		r = mc_file_write_atomic(p, text, strlen(text), 0644);
		free(text);
	}
	free(p);
	return r;
}

char *mc_state_default_dir(const char *netns)
{
	return netns ? mc_asprintf("/var/lib/mcpsec/netns/%s", netns) : mc_strdup("/var/lib/mcpsec");
}

int mc_state_get_enforcement(const char *dir, char *buf, size_t len)
{
	read_line(dir, "enforcement", buf, len);
	return buf[0] != '\0';
}

int mc_state_lock(const char *dir, bool wait, bool *interrupted)
{
	int r = mkdir_private(dir);

	if (interrupted)
		*interrupted = false;
	if (r < 0)
		return r;
	char *path = mc_asprintf("%s/lock", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
	free(path);
	if (fd < 0)
		return -errno;
	struct stat sb;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	if (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	bool cut = recover(dir);
	if (interrupted)
		*interrupted = cut;
	return fd;
}

int mc_state_daemon_lock(const char *dir)
{
	int r = mkdir_private(dir), fd;

	if (r < 0)
		return r;
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

void mc_state_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* closing releases the flock */
}
