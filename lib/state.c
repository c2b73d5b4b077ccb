/* SPDX-License-Identifier: MIT */
/* State directory I/O. Every file is replaced atomically: temp file, fsync, rename. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

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

static char *path_in(const struct mc_state *st, const char *name)
{
	return mc_asprintf("%s/%s", st->dir, name);
}

char *mc_state_site_path(const struct mc_state *st) { return path_in(st, "site.yaml"); }
char *mc_state_keys_path(const struct mc_state *st) { return path_in(st, "keys.yaml"); }

int mc_state_load(const char *dir, struct mc_state *ret)
{
	char *p;
	FILE *f;
	char line[512];

	memset(ret, 0, sizeof(*ret));
	ret->dir = mc_strdup(dir);
	p = path_in(ret, "state");
	f = fopen(p, "re");
	free(p);
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (fgets(line, sizeof(line), f)) {
		char name[256], dirs[8];
		unsigned prio;

		line[strcspn(line, "\n")] = '\0';
		if (!strncmp(line, "enabled ", 8)) {
			ret->enabled = !strcmp(line + 8, "yes");
			ret->committed = true;
		} else if (!strncmp(line, "default ", 8)) {
			free(ret->default_name);
			ret->default_name = mc_strdup(line + 8);
		} else if (sscanf(line, "rule %u %7s %255s", &prio, dirs, name) == 3) {
			struct mc_state_name *n = MC_PUSH(&ret->names, &ret->nnames, &ret->capnames);
			n->priority = prio;
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
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (chmod(dir, 0700) < 0)
		return -errno;
	return 0;
}

int mc_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode)
{
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

static int copy_file(const char *from, const char *to, mode_t mode)
{
	int fd = open(from, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf;
	int r;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || st.st_size > (16 << 20)) {
		close(fd);
		return -EFBIG;
	}
	buf = mc_malloc((size_t)st.st_size + 1);
	ssize_t got = read(fd, buf, (size_t)st.st_size);
	close(fd);
	if (got != st.st_size) {
		mc_wipe(buf, (size_t)st.st_size);
		free(buf);
		return -EIO;
	}
	r = mc_file_write_atomic(to, buf, (size_t)got, mode);
	mc_wipe(buf, (size_t)st.st_size); /* may be a key file */
	free(buf);
	return r;
}

static int write_state(struct mc_state *st)
{
	struct mc_buf b = { 0 };
	char *p = path_in(st, "state");
	int r;

	mc_buf_printf(&b, "# mcpsec state: written by mcpsec, do not edit\n");
	mc_buf_printf(&b, "enabled %s\n", st->enabled ? "yes" : "no");
	if (st->default_name)
		mc_buf_printf(&b, "default %s\n", st->default_name);
	for (size_t i = 0; i < st->nnames; i++)
		mc_buf_printf(&b, "rule %u %s %s\n", st->names[i].priority, mc_dir_str(st->names[i].dir),
			      st->names[i].name);
	r = mc_file_write_atomic(p, b.s, b.len, 0600);
	free(p);
	mc_buf_free(&b);
	return r;
}

int mc_state_commit(struct mc_state *st, const char *site_file, const char *keys_file,
		    const struct mc_plan *plan)
{
	int r;
	char *p;

	if ((r = mkdir_private(st->dir)) < 0)
		return r;
	p = mc_state_site_path(st);
	r = copy_file(site_file, p, 0600);
	free(p);
	if (r < 0)
		return r;
	p = mc_state_keys_path(st);
	if (keys_file)
		r = copy_file(keys_file, p, 0600);
	else if (unlink(p) < 0 && errno != ENOENT)
		r = -errno;
	free(p);
	if (r < 0)
		return r;
	for (size_t i = 0; i < st->nnames; i++)
		free(st->names[i].name);
	st->nnames = 0;
	st->sorted = false;
	for (size_t i = 0; i < plan->nrules; i++) {
		const struct mc_rule *rule = &plan->rules[i];
		if (rule->kind != MC_RULE_USER)
			continue;
		struct mc_state_name *n = MC_PUSH(&st->names, &st->nnames, &st->capnames);
		n->priority = rule->priority;
		n->dir = rule->dir;
		n->name = mc_strdup(rule->name);
	}
	free(st->default_name);
	st->default_name = mc_strdup(mc_default_str(plan->def));
	st->enabled = plan->enabled;
	st->committed = true;
	index_by_prio(st);
	return write_state(st);
}

int mc_state_set_enabled(struct mc_state *st, bool enabled)
{
	int r = mkdir_private(st->dir);

	if (r < 0)
		return r;
	st->enabled = enabled;
	return write_state(st);
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

uint32_t mc_state_prev_priority(void *stp, const char *name, enum mc_dir dir)
{
	struct mc_state *st = stp;

	if (!name || !st || !st->nnames)
		return 0;
	/* Sorted once on first use: apply asks once per policy, 10 000 times. */
	if (!st->sorted) {
		qsort(st->names, st->nnames, sizeof(*st->names), cmp_name);
		st->sorted = true;
	}
	struct mc_state_name key = { .name = (char *)name, .dir = dir };
	const struct mc_state_name *hit = bsearch(&key, st->names, st->nnames, sizeof(*st->names), cmp_name);
	return hit ? hit->priority : 0;
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
	return fd;
}

void mc_state_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* closing releases the flock */
}
