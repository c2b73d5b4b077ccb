/* SPDX-License-Identifier: MIT */
/* Diagnostics list in gcc's file:line:col format. */
#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "util.h"

const char *mc_diags_intern(struct mc_diags *ds, const char *name)
{
	for (size_t i = 0; i < ds->nfiles; i++)
		if (!strcmp(ds->files[i], name))
			return ds->files[i];
	char **slot = MC_PUSH(&ds->files, &ds->nfiles, &ds->capfiles);
	*slot = mc_strdup(name);
	return *slot;
}

static void diag_vadd(struct mc_diags *ds, enum mc_severity sev, struct mc_loc loc, const char *code,
		      const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

static void diag_vadd(struct mc_diags *ds, enum mc_severity sev, struct mc_loc loc, const char *code,
		      const char *fmt, va_list ap)
{
	struct mc_buf b = { 0 };

	mc_buf_vprintf(&b, fmt, ap);
	struct mc_diag *d = MC_PUSH(&ds->d, &ds->n, &ds->cap);
	d->sev = sev;
	d->code = code;
	d->loc = loc;
	if (loc.file)
		d->loc.file = mc_diags_intern(ds, loc.file);
	d->msg = b.s ? b.s : mc_strdup("");
	d->seq = ds->n;
	if (sev == MC_ERROR)
		ds->errors++;
	else
		ds->warnings++;
}

void mc_diag_add(struct mc_diags *ds, enum mc_severity sev, struct mc_loc loc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_vadd(ds, sev, loc, NULL, fmt, ap);
	va_end(ap);
}

void mc_diag_addc(struct mc_diags *ds, enum mc_severity sev, struct mc_loc loc, const char *code,
		  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_vadd(ds, sev, loc, code, fmt, ap);
	va_end(ap);
}

static int cmp_diag(const void *a, const void *b)
{
	const struct mc_diag *x = a, *y = b;
	int c = strcmp(x->loc.file ? x->loc.file : "", y->loc.file ? y->loc.file : "");

	if (c)
		return c;
	if (x->loc.line != y->loc.line)
		return x->loc.line < y->loc.line ? -1 : 1;
	if (x->loc.col != y->loc.col)
		return x->loc.col < y->loc.col ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void mc_diags_sort(struct mc_diags *ds)
{
	if (ds->n > 1)
		qsort(ds->d, ds->n, sizeof(*ds->d), cmp_diag);
}

void mc_diags_render(const struct mc_diags *ds, struct mc_buf *out)
{
	for (size_t i = 0; i < ds->n; i++) {
		const struct mc_diag *d = &ds->d[i];
		const char *sev = d->sev == MC_ERROR ? "error" : "warning";

		if (d->loc.file && d->loc.line)
			mc_buf_printf(out, "%s:%d:%d: %s: %s\n", d->loc.file, d->loc.line, d->loc.col,
				      sev, d->msg);
		else if (d->loc.file)
			mc_buf_printf(out, "%s: %s: %s\n", d->loc.file, sev, d->msg);
		else
			mc_buf_printf(out, "%s: %s\n", sev, d->msg);
	}
}

void mc_diags_truncate(struct mc_diags *ds, size_t n)
{
	while (ds->n > n) {
		struct mc_diag *d = &ds->d[--ds->n];
		if (d->sev == MC_ERROR)
			ds->errors--;
		else
			ds->warnings--;
		free(d->msg);
	}
}

void mc_diags_free(struct mc_diags *ds)
{
	for (size_t i = 0; i < ds->n; i++)
		free(ds->d[i].msg);
	free(ds->d);
	for (size_t i = 0; i < ds->nfiles; i++)
		free(ds->files[i]);
	free(ds->files);
	*ds = (struct mc_diags){ 0 };
}

void mc_diags_first_error(const struct mc_diags *ds, size_t from, char *buf, size_t len)
{
	for (size_t i = from; i < ds->n; i++)
		if (ds->d[i].sev == MC_ERROR) {
			snprintf(buf, len, "%s%s%s", ds->d[i].loc.file ? ds->d[i].loc.file : "",
				 ds->d[i].loc.file ? ": " : "", ds->d[i].msg);
			return;
		}
	snprintf(buf, len, "unknown error");
}
