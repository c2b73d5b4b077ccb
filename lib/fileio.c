/* SPDX-License-Identifier: MIT */
/* Whole-file reads and atomic writes (see fileio.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "util.h"

int mc_file_read(const char *path, unsigned flags, size_t max, char **ret, size_t *len, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (flags & MC_READ_NOFOLLOW ? O_NOFOLLOW : 0));
	struct stat sb;
	size_t got = 0;
	int r = 0;

	*ret = NULL;
	*len = 0;
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if (!S_ISREG(sb.st_mode) || (size_t)sb.st_size > max) {
		close(fd);
		return S_ISREG(sb.st_mode) ? -EFBIG : -EINVAL;
	}
	/* The size is a hint, not a promise: the file may grow or shrink while it is read. */
	size_t cap = (size_t)sb.st_size + 1;
	char *buf = mc_malloc(cap + 1);
	for (;;) {
		if (got == cap) {
			if (cap > max) {
				r = -EFBIG;
				break;
			}
			char *more = mc_malloc(2 * cap + 1);
			memcpy(more, buf, got);
			if (flags & MC_READ_SECRET)
				mc_wipe(buf, got);
			free(buf);
			buf = more;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (!r && got > max)
		r = -EFBIG;
	if (r) {
		mc_wipe_free(buf, got);
		return r;
	}
	buf[got] = '\0';
	*ret = buf;
	*len = got;
	if (st)
		*st = sb;
	return 0;
}

/* The directory and base name of path (dir "." when there is no slash); caller frees *dir. */
static void split_path(const char *path, char **dir, const char **base)
{
	const char *slash = strrchr(path, '/');

	*dir = slash ? (slash == path ? mc_strdup("/") : mc_strndup(path, (size_t)(slash - path))) : mc_strdup(".");
	*base = slash ? slash + 1 : path;
}

/* Removes BASE.tmp.PID[.RANDOM] files of writers that are gone (a killed writer's leftovers:
 * a key file's hold keys). A live writer's file is left alone. */
static void remove_stale_tmp(const char *path)
{
	char *dir;
	const char *base;
	DIR *d;

	split_path(path, &dir, &base);
	size_t blen = strlen(base);
	if ((d = opendir(dir))) {
		for (struct dirent *e; (e = readdir(d));) {
			long pid;
			if (strncmp(e->d_name, base, blen) || strncmp(e->d_name + blen, ".tmp.", 5) ||
			    sscanf(e->d_name + blen + 5, "%ld", &pid) != 1 || pid <= 0)
				continue;
			if (kill((pid_t)pid, 0) < 0 && errno == ESRCH) {
				char *p = mc_asprintf("%s/%s", dir, e->d_name);
				(void)unlink(p);
				free(p);
			}
		}
		closedir(d);
	}
	free(dir);
}

static int write_all(int fd, const void *data, size_t len)
{
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, (const char *)data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -EIO;
		off += (size_t)w;
	}
	return 0;
}

/* Writes data to the new file fd (mode fixed whatever the umask), fsyncs and closes it. */
static int fill(int fd, const void *data, size_t len, mode_t mode)
{
	int r = write_all(fd, data, len);

	if (!r && (fchmod(fd, mode) < 0 || fsync(fd) < 0))
		r = -errno;
	if (close(fd) < 0 && !r)
		r = -errno;
	return r;
}

int mc_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode)
{
	struct stat sb;
	unsigned long long rnd = 0;
	int fd, r;

	if (lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode))
		return -ELOOP;
	/* Unguessable, so that nothing can be planted at the name first; O_EXCL would refuse it
	 * anyway, and O_NOFOLLOW | O_NONBLOCK keep a link or FIFO from redirecting or stalling us. */
	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
		rnd ^= (unsigned long long)time(NULL) << 20 ^ (unsigned long long)clock();
	remove_stale_tmp(path);
	char *tmp = mc_asprintf("%s.tmp.%ld.%016llx", path, (long)getpid(), rnd);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, (mode_t)mode);
	if (fd < 0) {
		r = -errno;
		free(tmp);
		return r;
	}
	if (!(r = fill(fd, data, len, (mode_t)mode)) && rename(tmp, path) < 0)
		r = -errno;
	if (r)
		(void)unlink(tmp);
	free(tmp);
	return r;
}

int mc_file_write_new(const char *path, const void *data, size_t len, unsigned mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, (mode_t)mode);

	if (fd < 0)
		return -errno;
	int r = fill(fd, data, len, (mode_t)mode);
	if (r)
		(void)unlink(path);
	return r;
}

int mc_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW), r = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

bool mc_file_holds(const char *path, const void *want, size_t len)
{
	char *buf = NULL;
	size_t n = 0;
	int r = mc_file_read(path, MC_READ_NOFOLLOW | MC_READ_SECRET, MC_FILE_MAX, &buf, &n, NULL);
	bool same = r == -ENOENT ? !want : !r && want && n == len && !memcmp(buf, want, len);

	mc_wipe_free(buf, n);
	return same;
}
