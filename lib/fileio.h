/* SPDX-License-Identifier: MIT */
/*
 * Every file mcpsec reads or writes whole goes through here: one reader and one atomic writer,
 * safe where mcpsec runs as root among other users' files. Nothing here follows a symbolic link
 * it was not asked to, blocks on a FIFO, trusts a file's size, or prints.
 */
#ifndef MCPSEC_FILEIO_H
#define MCPSEC_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

enum mc_read_flags {
	MC_READ_NOFOLLOW = 1 << 0, /* a symbolic link as the last component: -ELOOP */
	MC_READ_SECRET = 1 << 1,   /* key material: the buffer is wiped if reading fails half-way */
};

/* The largest file mcpsec reads whole (site, key, suite, import files; state files). */
#define MC_FILE_MAX (16u << 20)

/*
 * Reads the whole regular file at path (at most max bytes) into *ret, NUL-terminated, its
 * length in *len. Opened non-blocking, so a FIFO or device put in its place is refused at once
 * (-EINVAL: not a regular file), never waited on; -EFBIG past max; -ELOOP for a symbolic link
 * with MC_READ_NOFOLLOW; else -errno. st, when given, receives the opened file's own fstat (so
 * that checks on owner and mode are made on what was read, never on a name). The caller frees
 * *ret (mc_wipe_free for secrets).
 */
int mc_file_read(const char *path, unsigned flags, size_t max, char **ret, size_t *len, struct stat *st);

/*
 * Replaces path with data, atomically: a temporary file beside it with a name nobody can guess
 * (PATH.tmp.PID.RANDOM), created with O_EXCL|O_NOFOLLOW|O_NONBLOCK and mode (never readable by
 * others in between), every byte written (short writes, EINTR), fsynced, then renamed over
 * path. A FIFO or link planted at any name cannot make it block or write elsewhere. A symbolic
 * link at path itself is refused (-ELOOP), so that a link planted where the output goes is
 * never taken for the output. Temporary files of writers that were killed are removed first.
 * Returns 0 or -errno; on failure path is untouched and no temporary file is left.
 */
int mc_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode);

/* Writes a new file (it must not exist: -EEXIST) with mode, and fsyncs it. 0 or -errno. */
int mc_file_write_new(const char *path, const void *data, size_t len, unsigned mode);

/* fsyncs a directory, so that the names just created or renamed in it are durable. */
int mc_fsync_dir(const char *dir);

/* Whether path holds exactly len bytes of want (want NULL: path must not exist). */
bool mc_file_holds(const char *path, const void *want, size_t len);

#endif
