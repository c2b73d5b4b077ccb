/* SPDX-License-Identifier: MIT */
/*
 * State directory I/O, crash-consistent at every point.
 *
 *   DIR/current  -> gen-N        the committed configuration (a relative symlink)
 *   DIR/gen-N/   site.yaml, keys.yaml (0600), state
 *   DIR/pending  -> gen-M        a change being applied to the kernel (the intent)
 *   DIR/lock                     flock: apply, enable, disable and mcpsecd's repair
 *
 * A commit writes a whole new generation (every file fsynced, then the directory), records the
 * intent, changes the kernel, and only then renames a new `current` link over the old one: the
 * single atomic step. A reader resolves `current` once and reads that generation, so it never
 * sees half of a commit. Whoever takes the lock next finds a `pending` left by a killed process
 * and drops it: the committed configuration stays the one `current` names, and the kernel is
 * then brought to it (enable, mcpsecd) or to a new one (apply).
 * A directory from mcpsec 0.1 (site.yaml, keys.yaml, state at the top) is read as it is and
 * replaced by a generation at the next commit.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>
#include <dirent.h>
#include <signal.h>

#include "compile.h"
#include "plan.h"
#include "state.h"
#include "util.h"

static int cmp_prio(const void *a, const void *b)
{
	const struct mc_state_name *x = a, *y = b;

	if (x->priority != y->priority)
		return x->priority < y->priority ? -1 : 1;
	return (int)x->dir - (int)y->dir;
}

/* status and apply map thousands of kernel policies to names: index them by priority once. */
static void index_by_prio(struct mc_state *st)
{
	free(st->by_prio);
	st->by_prio = mc_calloc(st->nnames + 1, sizeof(*st->by_prio));
	if (st->nnames)
		memcpy(st->by_prio, st->names, st->nnames * sizeof(*st->names));
	qsort(st->by_prio, st->nnames, sizeof(*st->by_prio), cmp_prio);
}

/* Test-only fault injection (the sanitizer build defines MC_FAULT_INJECTION), never compiled
 * into the release binary. MCPSEC_FAULT=commit-kill:K kills the process at step K of a commit,
 * to prove that no step leaves the directory half-written; prepare-fail and switch-fail make
 * those steps fail as a full disk or a broken directory would. */
#ifdef MC_FAULT_INJECTION
static void commit_step(void)
{
	static int step;
	const char *f = getenv("MCPSEC_FAULT");
	int k;

	if (f && sscanf(f, "commit-kill:%d", &k) == 1 && ++step == k)
		raise(SIGKILL);
}

static int injected(const char *what)
{
	const char *f = getenv("MCPSEC_FAULT");
	return f && !strcmp(f, what) ? -ENOSPC : 0;
}
#else
static void commit_step(void) {}
static int injected(const char *what)
{
	(void)what;
	return 0;
}
#endif

static char *path_in(const struct mc_state *st, const char *name)
{
	return st->gen ? mc_asprintf("%s/%s/%s", st->dir, st->gen, name) : mc_asprintf("%s/%s", st->dir, name);
}

/* Whether name is a generation directory's: "gen-N" and nothing more. */
static bool is_gen(const char *name)
{
	unsigned g;
	char extra;
	return sscanf(name, "gen-%u%c", &g, &extra) == 1;
}

/* The generation a link (current or pending) names, or NULL. */
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

/* Opens a state file for reading: a regular file only (a FIFO put there must not hang us). */
static FILE *open_regular(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
	struct stat st;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	return fdopen(fd, "re");
}

char *mc_state_site_path(const struct mc_state *st) { return path_in(st, "site.yaml"); }
char *mc_state_keys_path(const struct mc_state *st) { return path_in(st, "keys.yaml"); }

int mc_state_load(const char *dir, struct mc_state *ret)
{
	char *gen = read_gen_link(dir, "current"); /* NULL: nothing committed, or a 0.1 directory */
	char *cur = mc_asprintf("%s/current", dir);
	struct stat sb;
	/* A `current` that names no generation is damage, never "nothing committed". */
	bool broken = !gen && lstat(cur, &sb) == 0;
	int r = broken ? -EUCLEAN : mc_state_load_gen(dir, gen, ret);

	if (broken) {
		memset(ret, 0, sizeof(*ret));
		ret->dir = mc_strdup(dir);
	}
	free(cur);
	free(gen);
	return r;
}

int mc_state_load_gen(const char *dir, const char *gen, struct mc_state *ret)
{
	char *p;
	FILE *f;
	char line[512];

	memset(ret, 0, sizeof(*ret));
	ret->dir = mc_strdup(dir);
	ret->gen = gen ? mc_strdup(gen) : NULL;
	p = path_in(ret, "state");
	f = open_regular(p);
	free(p);
	if (!f) /* a generation without its state file is damage too */
		return errno == ENOENT && !gen ? 0 : errno == ENOENT ? -EUCLEAN : -errno;
	while (fgets(line, sizeof(line), f)) {
		char name[256], dirs[8];
		unsigned prio, reqid = 0;
		int got;

		line[strcspn(line, "\n")] = '\0';
		if (!strncmp(line, "enabled ", 8)) {
			ret->enabled = !strcmp(line + 8, "yes");
			ret->committed = true;
		} else if (!strncmp(line, "default ", 8)) {
			free(ret->default_name);
			ret->default_name = mc_strdup(line + 8);
		} else if ((got = sscanf(line, "rule %u %7s %255s reqid %u", &prio, dirs, name, &reqid)) >= 3) {
			struct mc_state_name *n = MC_PUSH(&ret->names, &ret->nnames, &ret->capnames);
			n->priority = prio;
			n->reqid = got == 4 ? reqid : 0;
			n->dir = !strcmp(dirs, "in") ? MC_DIR_IN : MC_DIR_OUT;
			n->name = mc_strdup(name);
		}
	}
	fclose(f);
	index_by_prio(ret);
	return 0;
}

void mc_state_free(struct mc_state *st)
{
	for (size_t i = 0; i < st->nnames; i++)
		free(st->names[i].name);
	free(st->names);
	free(st->by_prio);
	free(st->default_name);
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

/* Removes PATH.tmp.PID files whose process is gone: a killed writer's leftovers (a key file's
 * hold keys). A live writer's file is left alone. */
static void remove_stale_tmp(const char *path)
{
	char *copy = mc_strdup(path), *slash = strrchr(copy, '/');
	const char *dir = slash ? (slash == copy ? "/" : copy) : ".", *base = slash ? slash + 1 : copy;
	size_t blen = strlen(base);
	DIR *d;

	if (slash)
		*slash = '\0';
	if ((d = opendir(dir))) {
		for (struct dirent *e; (e = readdir(d));) {
			long pid;
			char extra;
			if (strncmp(e->d_name, base, blen) || strncmp(e->d_name + blen, ".tmp.", 5) ||
			    sscanf(e->d_name + blen + 5, "%ld%c", &pid, &extra) != 1 || pid <= 0)
				continue;
			if (kill((pid_t)pid, 0) < 0 && errno == ESRCH) {
				char *p = mc_asprintf("%s/%s", dir, e->d_name);
				(void)unlink(p);
				free(p);
			}
		}
		closedir(d);
	}
	free(copy);
}

int mc_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode)
{
	remove_stale_tmp(path);
	char *tmp = mc_asprintf("%s.tmp.%ld", path, (long)getpid());
	(void)unlink(tmp); /* left over by a crash: O_EXCL below must not fail on it */
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
	int r = 0;

	if (fd < 0) {
		r = -errno;
		free(tmp);
		return r;
	}
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, (const char *)data + off, len - off);
		if (w < 0) {
			r = -errno;
			break;
		}
		off += (size_t)w;
	}
	if (!r && (fchmod(fd, (mode_t)mode) < 0 || fsync(fd) < 0))
		r = -errno;
	close(fd);
	if (!r && rename(tmp, path) < 0)
		r = -errno;
	if (r)
		unlink(tmp);
	free(tmp);
	return r;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* Writes a new file (it must not exist) with mode, and fsyncs it. */
static int write_new(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	int r = 0;

	if (fd < 0)
		return -errno;
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, (const char *)data + off, len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		off += (size_t)w;
	}
	if (!r && (fchmod(fd, mode) < 0 || fsync(fd) < 0))
		r = -errno;
	close(fd);
	return r;
}

/* A regular file of at most 16 MiB, whole (the caller wipes and frees: it may be a key file).
 * Returns 0 or -errno. */
static int read_small(const char *path, char **ret, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	char *buf;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (16 << 20)) {
		close(fd);
		return S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
	}
	buf = mc_malloc((size_t)st.st_size + 1);
	ssize_t got = read(fd, buf, (size_t)st.st_size);
	close(fd);
	if (got != st.st_size) {
		mc_wipe_free(buf, (size_t)st.st_size);
		return -EIO;
	}
	*ret = buf;
	*len = (size_t)got;
	return 0;
}

static int copy_file(const char *from, const char *to, mode_t mode)
{
	char *buf;
	size_t len;
	int r = read_small(from, &buf, &len);

	if (r < 0)
		return r;
	r = write_new(to, buf, len, mode);
	mc_wipe_free(buf, len);
	return r;
}

/* Whether path holds exactly len bytes of want (path NULL or missing: want is NULL too). */
static bool file_holds(const char *path, const char *want, size_t len)
{
	char *buf = NULL;
	size_t n = 0;
	bool missing = !path || read_small(path, &buf, &n) == -ENOENT;
	bool same = missing ? !want : buf && want && n == len && !memcmp(buf, want, len);

	mc_wipe_free(buf, n);
	return same;
}

static void state_text(const struct mc_state *st, struct mc_buf *b)
{
	mc_buf_printf(b, "# mcpsec state: written by mcpsec, do not edit\n");
	mc_buf_printf(b, "enabled %s\n", st->enabled ? "yes" : "no");
	if (st->default_name)
		mc_buf_printf(b, "default %s\n", st->default_name);
	for (size_t i = 0; i < st->nnames; i++) {
		mc_buf_printf(b, "rule %u %s %s", st->names[i].priority, mc_dir_str(st->names[i].dir),
			      st->names[i].name);
		if (st->names[i].reqid)
			mc_buf_printf(b, " reqid %u", st->names[i].reqid);
		mc_buf_puts(b, "\n");
	}
}

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

/* Points link (current or pending) at gen atomically: a new symlink renamed over it. */
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
	return r ? r : fsync_dir(dir);
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
		struct mc_state_name *nm = MC_PUSH(&next->names, &next->nnames, &next->capnames);
		nm->priority = rule->priority;
		nm->reqid = rule->reqid;
		nm->dir = rule->dir;
		nm->name = mc_strdup(rule->name);
	}
	index_by_prio(next);
}

bool mc_state_same(const struct mc_state *st, const char *site_file, const char *keys_file,
		   const struct mc_plan *plan, bool enabled)
{
	struct mc_state cand = { 0 };
	struct mc_buf text = { 0 };
	char *site = NULL, *keys = NULL;
	size_t slen = 0, klen = 0;
	bool same = false;

	if (!st->committed || !st->gen)
		return false;
	fill_next(plan, enabled, &cand);
	state_text(&cand, &text);
	char *sp = path_in(st, "state"), *cs = path_in(st, "site.yaml"), *ck = path_in(st, "keys.yaml");
	if (read_small(site_file, &site, &slen) == 0 && (!keys_file || read_small(keys_file, &keys, &klen) == 0))
		same = file_holds(sp, text.s, text.len) && file_holds(cs, site, slen) && file_holds(ck, keys, klen);
	free(sp);
	free(cs);
	free(ck);
	mc_wipe_free(site, slen);
	mc_wipe_free(keys, klen);
	mc_buf_free(&text);
	mc_state_free(&cand);
	return same;
}

int mc_state_prepare(const struct mc_state *st, const char *site_file, const char *keys_file,
		     const struct mc_plan *plan, bool enabled, struct mc_state *next)
{
	int r;
	unsigned n = 0;

	memset(next, 0, sizeof(*next));
	if ((r = mkdir_private(st->dir)) < 0)
		return r;
	if (st->gen)
		(void)sscanf(st->gen, "gen-%u", &n);
	next->dir = mc_strdup(st->dir);
	next->gen = mc_asprintf("gen-%u", n + 1);
	fill_next(plan, enabled, next);

	char *g = mc_asprintf("%s/%s", st->dir, next->gen);
	remove_gen(st->dir, next->gen); /* a leftover of a killed commit of the same number */
	if (mkdir(g, 0700) < 0) {
		r = -errno;
		free(g);
		goto fail;
	}
	free(g);
	commit_step();
	char *p = path_in(next, "site.yaml");
	r = copy_file(site_file, p, 0600);
	free(p);
	commit_step();
	if (!r && keys_file) {
		p = path_in(next, "keys.yaml");
		r = copy_file(keys_file, p, 0600);
		free(p);
		commit_step();
	}
	if (!r) {
		struct mc_buf b = { 0 };
		state_text(next, &b);
		p = path_in(next, "state");
		r = write_new(p, b.s, b.len, 0600);
		free(p);
		mc_buf_free(&b);
		commit_step();
	}
	if (!r) {
		g = mc_asprintf("%s/%s", st->dir, next->gen);
		r = fsync_dir(g);
		free(g);
	}
	if (!r)
		r = injected("prepare-fail");
	/* The intent: a process killed from here on leaves `pending`, which the next holder of the
	 * lock drops. */
	if (!r)
		r = set_link(st->dir, "pending", next->gen);
	commit_step();
	if (!r)
		return 0;
fail:
	mc_state_abandon(next);
	return r;
}

void mc_state_abandon(struct mc_state *next)
{
	if (next->dir && next->gen) {
		char *p = mc_asprintf("%s/pending", next->dir);
		(void)unlink(p);
		free(p);
		remove_gen(next->dir, next->gen);
	}
	mc_state_free(next);
}

int mc_state_switch(struct mc_state *st, struct mc_state *next)
{
	int r = injected("switch-fail");

	if (!r)
		r = set_link(st->dir, "current", next->gen);

	commit_step();
	if (r < 0)
		return r;
	/* Committed. What follows only tidies up; a kill here leaves files the next lock removes. */
	char *p = mc_asprintf("%s/pending", st->dir);
	(void)unlink(p);
	free(p);
	commit_step();
	/* Outside the generations: enable reads it when they cannot be read. */
	const char *on_failure = next->on_failure == MC_ON_FAILURE_OPEN ? "open\n" : "lockdown\n";
	p = mc_asprintf("%s/on-failure", st->dir);
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
		for (size_t i = 0; i < MC_ARRAY_SIZE(legacy); i++) {
			p = mc_asprintf("%s/%s", st->dir, legacy[i]);
			(void)unlink(p);
			free(p);
		}
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

/* Drops what a killed process left: a pending intent, generations that are neither current nor
 * pending, and temporary files. Called with the lock held, so nobody is writing. */
static void recover(const char *dir)
{
	char *cur = read_gen_link(dir, "current");
	char *pend = read_gen_link(dir, "pending");
	struct mc_trial trial;
	bool in_trial = mc_state_trial_get(dir, &trial) == 1;
	DIR *d;

	if (pend) {
		char *p = mc_asprintf("%s/pending", dir);
		(void)unlink(p);
		free(p);
	}
	if (!in_trial) {
		/* A confirm, rollback or trial that a kill interrupted: the generation `current`
		 * names is the committed one; the rest of the trial goes. */
		static const char *const leftovers[] = { "trial", "confirmed" };
		for (size_t i = 0; i < MC_ARRAY_SIZE(leftovers); i++) {
			char *p = mc_asprintf("%s/%s", dir, leftovers[i]);
			(void)unlink(p);
			free(p);
		}
	}
	if ((d = opendir(dir))) {
		for (struct dirent *e; (e = readdir(d));) {
			if (is_gen(e->d_name) && !(cur && !strcmp(cur, e->d_name)) &&
			    !(in_trial && !strcmp(trial.confirmed, e->d_name)))
				remove_gen(dir, e->d_name);
			else if (!strcmp(e->d_name, "current.new") || !strcmp(e->d_name, "pending.new") ||
				 !strcmp(e->d_name, "confirmed.new") ||
				 strstr(e->d_name, ".tmp.")) {
				char *p = mc_asprintf("%s/%s", dir, e->d_name);
				(void)unlink(p);
				free(p);
			}
		}
		closedir(d);
	}
	free(cur);
	free(pend);
}

/* ---- trials (apply --confirm) ---- */

static bool gen_exists(const char *dir, const char *gen)
{
	char *p = mc_asprintf("%s/%s/state", dir, gen);
	struct stat sb;
	bool ok = lstat(p, &sb) == 0 && S_ISREG(sb.st_mode);

	free(p);
	return ok;
}

int mc_state_trial_get(const char *dir, struct mc_trial *ret)
{
	char *p = mc_asprintf("%s/trial", dir), line[256];
	FILE *f = open_regular(p);
	int fields = 0;

	free(p);
	memset(ret, 0, sizeof(*ret));
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (fgets(line, sizeof(line), f)) {
		long long v;
		fields += sscanf(line, "gen %31s", ret->gen) == 1;
		fields += sscanf(line, "confirmed %31s", ret->confirmed) == 1;
		fields += sscanf(line, "boot %39s", ret->boot) == 1;
		fields += sscanf(line, "token %39s", ret->token) == 1;
		if (sscanf(line, "deadline %lld", &v) == 1) {
			ret->deadline = v;
			fields++;
		}
		if (sscanf(line, "started %lld", &v) == 1)
			ret->started = v;
	}
	fclose(f);
	/* Valid only while `confirmed` names that generation, it exists, and it is not current. */
	char *link = read_gen_link(dir, "confirmed"), *cur = read_gen_link(dir, "current");
	bool valid = fields == 5 && link && !strcmp(link, ret->confirmed) && is_gen(ret->confirmed) &&
		     gen_exists(dir, ret->confirmed) && !(cur && !strcmp(cur, ret->confirmed));
	free(link);
	free(cur);
	if (!valid)
		memset(ret, 0, sizeof(*ret));
	return valid ? 1 : 0;
}

int mc_state_trial_begin(const struct mc_state *st, const struct mc_state *next, int64_t deadline,
			 const char *token)
{
	struct mc_trial old;
	struct mc_buf b = { 0 };
	char boot[40];
	int r;

	if (mc_state_trial_get(st->dir, &old) != 1) {
		if (!st->gen)
			return -ENOENT; /* nothing confirmed to go back to (a trial needs a committed base) */
		snprintf(old.confirmed, sizeof(old.confirmed), "%s", st->gen);
		if ((r = set_link(st->dir, "confirmed", st->gen)) < 0)
			return r;
	}
	mc_boot_id(boot, sizeof(boot));
	mc_buf_printf(&b, "# mcpsec trial: written by mcpsec, do not edit\ngen %s\nconfirmed %s\n"
		      "deadline %lld\nstarted %lld\nboot %s\ntoken %s\n", next->gen, old.confirmed,
		      (long long)deadline, (long long)time(NULL), boot[0] ? boot : "-", token);
	char *p = mc_asprintf("%s/trial", st->dir);
	r = mc_file_write_atomic(p, b.s, b.len, 0600);
	free(p);
	mc_buf_free(&b);
	return r ? r : fsync_dir(st->dir);
}

int mc_state_trial_end(const char *dir)
{
	struct mc_trial t;
	int have = mc_state_trial_get(dir, &t);
	char *p = mc_asprintf("%s/trial", dir);
	int r = unlink(p) < 0 && errno != ENOENT ? -errno : 0; /* the decision: nothing to go back to */

	free(p);
	if (r)
		return r;
	(void)fsync_dir(dir);
	p = mc_asprintf("%s/confirmed", dir);
	(void)unlink(p);
	free(p);
	if (have == 1)
		remove_gen(dir, t.confirmed);
	return 0;
}

int mc_state_trial_revert(const char *dir)
{
	struct mc_trial t;
	char *cur = read_gen_link(dir, "current");
	int r = mc_state_trial_get(dir, &t);

	if (r != 1) {
		free(cur);
		return r < 0 ? r : -ENOENT;
	}
	/* The one step: from here `current` is the confirmed generation, and the trial is over
	 * (recover() drops what is left of it if a kill comes next). */
	if ((r = set_link(dir, "current", t.confirmed)) < 0) {
		free(cur);
		return r;
	}
	char *p = mc_asprintf("%s/trial", dir);
	(void)unlink(p);
	free(p);
	p = mc_asprintf("%s/confirmed", dir);
	(void)unlink(p);
	free(p);
	if (cur && strcmp(cur, t.confirmed))
		remove_gen(dir, cur);
	free(cur);
	return fsync_dir(dir);
}

void mc_boot_id(char *buf, size_t len)
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	buf[0] = '\0';
	if (f) {
		if (fgets(buf, (int)len, f))
			buf[strcspn(buf, "\n")] = '\0';
		fclose(f);
	}
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

enum mc_on_failure mc_state_on_failure(const char *dir)
{
	char *p = mc_asprintf("%s/on-failure", dir), line[32] = "";
	FILE *f = open_regular(p);

	free(p);
	if (f) {
		if (!fgets(line, sizeof(line), f))
			line[0] = '\0';
		fclose(f);
	}
	return !strcmp(line, "open\n") ? MC_ON_FAILURE_OPEN : MC_ON_FAILURE_LOCKDOWN;
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

int mc_state_get_enforcement(const char *dir, char *buf, size_t len)
{
	char *p = mc_asprintf("%s/enforcement", dir);
	FILE *f = open_regular(p);

	free(p);
	buf[0] = '\0';
	if (!f)
		return 0;
	if (!fgets(buf, (int)len, f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return buf[0] != '\0';
}

const char *mc_state_rule_name(const struct mc_state *st, uint32_t priority, enum mc_dir dir, int family)
{
	static const char *builtin[][2] = {
		{ "BUILTIN-LOOPBACK-IN", "BUILTIN-LOOPBACK-OUT" },
		{ "BUILTIN-OWN-ADDR-IN", "BUILTIN-OWN-ADDR-OUT" },
		{ "BUILTIN-ND-IN", "BUILTIN-ND-OUT" },
		{ "BUILTIN-MLD-IN", "BUILTIN-MLD-OUT" },
	};
	int d = dir == MC_DIR_OUT;

	if (priority == MC_PRIO_DEFAULT_BYPASS && family == AF_INET)
		return d ? "DEFAULT-BYPASS-OUT4" : "DEFAULT-BYPASS-IN4";
	if (priority == MC_PRIO_DEFAULT)
		return family == AF_INET ? (d ? "DEFAULT-DISCARD-OUT4" : "DEFAULT-DISCARD-IN4")
					 : (d ? "DEFAULT-DISCARD-OUT6" : "DEFAULT-DISCARD-IN6");
	if (priority >= MC_PRIO_BASE && priority < MC_PRIO_BASE + 4 * MC_PRIO_BUILTIN_STEP &&
	    (priority - MC_PRIO_BASE) % MC_PRIO_BUILTIN_STEP == 0 && dir <= MC_DIR_OUT)
		return builtin[(priority - MC_PRIO_BASE) / MC_PRIO_BUILTIN_STEP][d];
	if (!st || !st->nnames || !st->by_prio)
		return NULL;
	struct mc_state_name key = { .priority = priority, .dir = dir };
	const struct mc_state_name *hit = bsearch(&key, st->by_prio, st->nnames, sizeof(*st->by_prio), cmp_prio);
	return hit ? hit->name : NULL;
}

static int cmp_name(const void *a, const void *b)
{
	const struct mc_state_name *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : (int)x->dir - (int)y->dir;
}

static const struct mc_state_name *name_find(struct mc_state *st, const char *name, enum mc_dir dir)
{
	if (!name || !st || !st->nnames)
		return NULL;
	/* Sorted once on first use: apply asks once per policy, 10 000 times. */
	if (!st->sorted) {
		qsort(st->names, st->nnames, sizeof(*st->names), cmp_name);
		st->sorted = true;
	}
	struct mc_state_name key = { .name = (char *)name, .dir = dir };
	return bsearch(&key, st->names, st->nnames, sizeof(*st->names), cmp_name);
}

uint32_t mc_state_prev_priority(void *st, const char *name, enum mc_dir dir)
{
	const struct mc_state_name *hit = name_find(st, name, dir);
	return hit ? hit->priority : 0;
}

uint32_t mc_state_prev_reqid(void *st, const char *name, enum mc_dir dir)
{
	const struct mc_state_name *hit = name_find(st, name, dir);
	return hit ? hit->reqid : 0;
}

int mc_state_lock(const char *dir, bool wait)
{
	int r = mkdir_private(dir);
	if (r < 0)
		return r;
	char *path = mc_asprintf("%s/lock", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	free(path);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	recover(dir);
	return fd;
}

void mc_state_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* closing releases the flock */
}
