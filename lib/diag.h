/* SPDX-License-Identifier: MIT */
/* Diagnostics: every config problem of a run, with its place, rendered by cmd/. */
#ifndef MCPSEC_DIAG_H
#define MCPSEC_DIAG_H

#include <stdbool.h>
#include <stddef.h>

struct mc_buf;

enum mc_severity { MC_WARNING, MC_ERROR };

/* A place in an input file; line and col are 1-based, 0 when unknown. */
struct mc_loc {
	const char *file; /* borrowed: owned by the mc_diags that interned it */
	int line, col;
};

static inline struct mc_loc mc_loc_file(const char *file)
{
	struct mc_loc l = { file, 0, 0 };
	return l;
}

struct mc_diag {
	enum mc_severity sev;
	struct mc_loc loc;
	char *msg;
	const char *code; /* static: which check, for --json ("shadowed"); NULL for plain errors */
	size_t seq;       /* insertion order, for a stable sort */
};

struct mc_diags {
	struct mc_diag *d;
	size_t n, cap;
	size_t errors, warnings;
	char **files; /* interned file names that locs point to */
	size_t nfiles, capfiles;
};

/* Returns a stable copy of name that mc_loc.file may point to until mc_diags_free(). */
const char *mc_diags_intern(struct mc_diags *ds, const char *name);
void mc_diag_add(struct mc_diags *ds, enum mc_severity sev, struct mc_loc loc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The same, naming the check that found it. */
void mc_diag_addc(struct mc_diags *ds, enum mc_severity sev, struct mc_loc loc, const char *code,
		  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
#define mc_err(ds, loc, ...) mc_diag_add((ds), MC_ERROR, (loc), __VA_ARGS__)
#define mc_warn(ds, loc, ...) mc_diag_add((ds), MC_WARNING, (loc), __VA_ARGS__)
#define mc_warnc(ds, loc, code, ...) mc_diag_addc((ds), MC_WARNING, (loc), (code), __VA_ARGS__)
/* Sorts by file, line, col (stable), so output follows the file. */
void mc_diags_sort(struct mc_diags *ds);
/* "file:line:col: error: msg" lines, one per diagnostic. */
void mc_diags_render(const struct mc_diags *ds, struct mc_buf *out);
void mc_diags_free(struct mc_diags *ds);
/* Drops the diagnostics added after the first n (a path that was retried another way). */
void mc_diags_truncate(struct mc_diags *ds, size_t n);

/* The first error from index from on, as "FILE: message" ("unknown error" when none). */
void mc_diags_first_error(const struct mc_diags *ds, size_t from, char *buf, size_t len);

#endif
